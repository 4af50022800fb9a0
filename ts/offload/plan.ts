// What an offloaded repository sends for one fetch: which published packs to name as URIs, and
// what the inline pack (made by `git pack-objects`) holds. The inline pack never carries an
// object a named pack carries, nor a delta against one: stock git indexes the inline pack
// first (with --fix-thin), before any URI is downloaded, so such a delta would be unresolvable.
//
// Base mode: the base pack is named when the wants reach the base and the client lacks most of
// it (always on a clone); the inline pack is then `wants ^haves ^base`, not thin.
// Blob mode: `rev-list --objects` lists what the fetch needs; offloaded blobs are taken out of
// that list (and their packs named), the rest goes to pack-objects as an explicit list, so
// deltas can only be against objects in the list or, with thin-pack, the client's own.

import type { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { PackfileUri } from '../protocol/packfile-uris.js';
import { GitCommandError, gitText, runGit, spawnGit } from '../git.js';
import { livePacks, packUri, type BasePack, type OffloadState } from './state.js';

/** A fetch whose client lacks more than this share of the base's commits gets the base pack. */
export const BASE_MISSING_SHARE = 0.5;

export interface FetchPlanInput {
  gitDir: string;
  state: OffloadState | null;
  wants: string[];
  /** Haves the server has (the common commits). */
  common: string[];
  /** Schemes from the client's `packfile-uris` argument; null when it did not ask. */
  protocols: string[] | null;
  thin: boolean;
}

/** Starts `git pack-objects --stdout` with these extra arguments; returns its stdin. */
export type StartPack = (args: string[]) => Writable;

export interface InlinePack {
  /**
   * Starts pack-objects (through `start`, once), writes its input and ends it; resolves with
   * the URIs to name before the pack.
   */
  run(start: StartPack): Promise<PackfileUri[]>;
  /** What was decided, for the log. */
  describe: string;
}

function schemeOf(uri: string): string {
  return uri.slice(0, Math.max(0, uri.indexOf(':')));
}

/** Writes to pack-objects' input, waiting for it to drain; fails if pack-objects went away. */
function writeAll(stdin: Writable, data: string | Buffer): Promise<void> {
  if (stdin.destroyed) return Promise.reject(new Error('pack-objects closed its input'));
  if (stdin.write(data)) return Promise.resolve();
  return waitFor(stdin, 'drain');
}

function endInput(stdin: Writable): Promise<void> {
  if (stdin.destroyed) return Promise.reject(new Error('pack-objects closed its input'));
  stdin.end();
  return waitFor(stdin, 'finish');
}

function waitFor(stdin: Writable, event: 'drain' | 'finish'): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => {
      cleanup();
      resolve();
    };
    const gone = (e?: Error) => {
      cleanup();
      reject(e ?? new Error('pack-objects closed its input'));
    };
    const cleanup = () => {
      stdin.off(event, ok);
      stdin.off('error', gone);
      stdin.off('close', gone);
    };
    stdin.on(event, ok);
    stdin.on('error', gone);
    stdin.on('close', gone);
  });
}

/** Input for `pack-objects --revs` (which takes "--not", and ends at an empty line). */
function revsInput(wants: string[], not: string[]): string {
  return `${wants.join('\n')}\n--not\n${not.length ? `${not.join('\n')}\n` : ''}\n`;
}

/** Input for `rev-list --stdin` (git 2.39 takes no "--not" there: "^" marks each exclusion). */
function revListInput(wants: string[], not: string[]): string {
  return [...wants, ...not.map((n) => `^${n}`)].join('\n') + '\n';
}

/** The plain fetch: what `git upload-pack` would send. */
function plainPack(input: FetchPlanInput, why: string): InlinePack {
  return {
    run: async (start) => {
      const stdin = start(['--revs', ...(input.thin ? ['--thin'] : [])]);
      await writeAll(stdin, revsInput(input.wants, input.common));
      await endInput(stdin);
      return [];
    },
    describe: why,
  };
}

/** The live packs a client accepting `protocols` may be sent (none when it did not ask). */
export function eligiblePacks(state: OffloadState | null, protocols: string[] | null): ReturnType<typeof livePacks> {
  if (!state || !protocols) return [];
  return livePacks(state).filter((p) => protocols.includes(schemeOf(packUri(state, p))));
}

/** The schemes of the live packs' URIs (what a client must accept to be sent all of them). */
export function liveSchemes(state: OffloadState): string[] {
  return [...new Set(livePacks(state).map((p) => schemeOf(packUri(state, p))))].sort();
}

export async function planFetch(input: FetchPlanInput): Promise<InlinePack> {
  const { state, protocols } = input;
  if (!state) return plainPack(input, 'plain: no offload set up');
  if (!protocols) return plainPack(input, 'plain: the client did not ask for packfile URIs');
  const live = eligiblePacks(state, protocols);
  if (!live.length) return plainPack(input, `plain: no published pack has a scheme the client accepts (${protocols.join(',')})`);
  if (state.mode === 'base') {
    const base = live.find((p): p is BasePack => p.kind === 'base');
    if (!base) return plainPack(input, 'plain: no live base pack');
    return planBase(input, state, base);
  }
  return planBlobs(input, state, live);
}

async function planBase(input: FetchPlanInput, state: OffloadState, base: BasePack): Promise<InlinePack> {
  const { gitDir, wants, common } = input;
  // One git run for two questions: is the base still here (a ref moved and gc ran: then it
  // cannot be excluded; rev-list fails on it), and do the wants reach it (it lists nothing).
  const reach = await runGit(gitDir, ['rev-list', '--stdin', '--max-count=1'], { input: revListInput([base.object], wants), okCodes: [128] });
  if (reach.code !== 0) {
    if (/bad (object|revision)/.test(reach.stderr)) return plainPack(input, `plain: base ${base.object} is gone from the repository`);
    throw new GitCommandError(['rev-list', '--stdin'], reach.stderr.trim() || `exit ${reach.code}`);
  }
  if (reach.stdout.length) return plainPack(input, 'plain: the wants do not reach the base');
  if (common.length) {
    const missing = Number(await gitText(gitDir, ['rev-list', '--stdin', '--count'], { input: revListInput([base.commit], common) }));
    if (missing <= base.commits * BASE_MISSING_SHARE) return plainPack(input, `plain: the client has most of the base (lacks ${missing} of ${base.commits} commits)`);
  }
  return {
    run: async (start) => {
      // Not thin: the client indexes this pack before it has the base.
      const stdin = start(['--revs']);
      await writeAll(stdin, revsInput(wants, [...common, base.object]));
      await endInput(stdin);
      return [{ hash: base.hash, uri: packUri(state, base) }];
    },
    describe: `base pack ${base.hash.slice(0, 12)} (${base.ref}) + inline wants ^base`,
  };
}

/** Bytes of object list held in memory before the rest goes to a temporary file. */
const SPOOL_MEMORY = 64 * 1024 * 1024;

/** An object list kept until we know what to do with it: memory first, then a temp file. */
class Spool {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private file: { path: string; fh: FileHandle } | null = null;

  async add(text: string): Promise<void> {
    const b = Buffer.from(text);
    if (!this.file && this.bytes + b.length <= SPOOL_MEMORY) {
      this.chunks.push(b);
      this.bytes += b.length;
      return;
    }
    if (!this.file) {
      const path = join(tmpdir(), `mpgit-objects-${process.pid}-${randomBytes(6).toString('hex')}`);
      this.file = { path, fh: await open(path, 'w+', 0o600) };
      await this.file.fh.write(Buffer.concat(this.chunks));
      this.chunks = [];
    }
    await this.file.fh.write(b);
  }

  async pipeTo(stdin: Writable): Promise<void> {
    if (!this.file) {
      for (const c of this.chunks) await writeAll(stdin, c);
      return;
    }
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; ) {
      const { bytesRead } = await this.file.fh.read(buf, 0, buf.length, pos);
      if (!bytesRead) break;
      pos += bytesRead;
      await writeAll(stdin, Buffer.from(buf.subarray(0, bytesRead)));
    }
  }

  async dispose(): Promise<void> {
    this.chunks = [];
    if (this.file) {
      await this.file.fh.close().catch(() => {});
      await rm(this.file.path, { force: true });
      this.file = null;
    }
  }
}

async function planBlobs(input: FetchPlanInput, state: OffloadState, live: ReturnType<typeof livePacks>): Promise<InlinePack> {
  const owner = new Map<string, PackfileUri>();
  for (const p of live) {
    if (p.kind === 'base') continue;
    const ref = { hash: p.hash, uri: packUri(state, p) };
    for (const b of p.blobs) if (!owner.has(b)) owner.set(b, ref);
  }
  if (!owner.size) return plainPack(input, 'plain: no offloaded blobs');
  const { gitDir, wants, common, thin } = input;
  // pack-objects makes thin packs only from its own walk, which cannot leave blobs out: a
  // fetch that wants thin deltas (it has commons) is walked first; if it needs no offloaded
  // blob it gets the plain thin pack, else an explicit list without thin deltas.
  const decideLater = thin && common.length > 0;
  let describe = 'blob packs for the offloaded blobs + inline pack of the rest';
  const plan: InlinePack = {
    describe,
    run: async (start) => {
      const revList = spawnGit(gitDir, ['rev-list', '--objects', '--stdin']);
      let err = '';
      revList.stderr!.on('data', (c: Buffer) => err.length < 65536 && (err += c.toString()));
      revList.stdin!.on('error', () => {});
      revList.stdin!.end(revListInput(wants, common));
      const exited = new Promise<number | null>((resolve, reject) => {
        revList.on('error', reject);
        revList.on('close', (code) => resolve(code));
      });
      const named = new Map<string, PackfileUri>();
      const spool = new Spool();
      const stdin = decideLater ? null : start([]);
      let pending: string[] = [];
      let pendingBytes = 0;
      const flushPending = async () => {
        if (!pending.length) return;
        const text = pending.join('');
        pending = [];
        pendingBytes = 0;
        if (stdin) await writeAll(stdin, text);
        else await spool.add(text);
      };
      try {
        for await (const line of createInterface({ input: revList.stdout!, crlfDelay: Infinity })) {
          if (!line) continue;
          const pack = owner.get(line.slice(0, 40));
          if (pack) {
            named.set(pack.hash, pack);
            continue;
          }
          pending.push(`${line}\n`);
          pendingBytes += line.length + 1;
          if (pendingBytes >= 1 << 16) await flushPending();
        }
        await flushPending();
        const code = await exited;
        if (code !== 0) throw new GitCommandError(['rev-list', '--objects'], err.trim() || `exit ${code}`);
        if (stdin) {
          await endInput(stdin);
        } else if (!named.size) {
          plan.describe = describe = 'plain thin pack: the fetch needs no offloaded blob';
          const s = start(['--revs', '--thin']);
          await writeAll(s, revsInput(wants, common));
          await endInput(s);
        } else {
          plan.describe = `${describe} (not thin)`;
          const s = start([]);
          await spool.pipeTo(s);
          await endInput(s);
        }
      } catch (e) {
        revList.kill('SIGKILL');
        throw e;
      } finally {
        await spool.dispose();
      }
      return [...named.values()];
    },
  };
  return plan;
}
