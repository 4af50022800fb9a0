// The client side of packfile URIs, for clone and fetch: download every pack a server named
// (./download.ts: parallel, verified, resumable), index each with the pack indexer into
// objects/pack, then check that everything the new refs reach is present. Partial downloads
// live in <git-dir>/mpgit-packfile-uris/ until done, so an interrupted run continues where it
// stopped; the record of an interrupted clone (what to finish without asking the server
// again) lives next to it.

import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MpgitError, PackError } from '../errors.js';
import { native } from '../native.js';
import { indexPackFile } from '../pack/indexer.js';
import { ObjectDb, typedOdbError } from '../repo/odb.js';
import { parseCommit, parseTag, parseTree, MODE_GITLINK, MODE_TREE } from '../repo/objects.js';
import { readShallow } from '../repo/shallow.js';
import type { ProgressSink } from '../progress.js';
// Types only: the downloader (and undici under it) loads when a server names URIs, not at
// every start of clone or fetch.
import type { DownloadOptions, PackfileUri } from './download.js';

/** The URI schemes a client asks for (`packfile-uris http,https`). */
export const PACKFILE_URI_PROTOCOLS = ['http', 'https'];
/** Under the git dir: partial and finished downloads, kept until the packs are indexed. */
export const DOWNLOAD_DIR = 'mpgit-packfile-uris';

export interface ReceiveUrisOptions {
  progress: ProgressSink | null;
  /** Where partial downloads live (default <git-dir>/mpgit-packfile-uris; a clone keeps them in its target). */
  downloadDir?: string;
  /** Informational lines (retries), or null. */
  say?: ((line: string) => void) | null;
  /** Overrides of the downloader's bounds (tests use short ones; see uriOptionsFromEnv). */
  download?: Partial<Pick<DownloadOptions, 'concurrency' | 'stallTimeoutMs' | 'headersTimeoutMs' | 'retries' | 'backoff' | 'maxPackBytes'>>;
  signal?: AbortSignal;
  /** Download over Multipath TCP (the clone's --mptcp / GIT_ENABLE_MPTCP). */
  mptcp?: boolean;
}

export interface ReceivedUriPack {
  hash: string;
  uri: string;
  packPath: string;
  idxPath: string;
  objectCount: number;
  size: number;
  /** Bytes fetched over the network by this run (less than size when resumed). */
  fetched: number;
}

/**
 * Downloader bounds from the environment (MPGIT_URI_CONCURRENCY, MPGIT_URI_STALL_TIMEOUT_MS,
 * MPGIT_URI_RETRIES, MPGIT_URI_BACKOFF_MS): for operators on odd networks, and for tests.
 */
export function uriOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ReceiveUrisOptions['download'] {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new MpgitError('MPGIT_CONFIG', `${name}=${v} is not a number`, `unset ${name} or give a number`);
    return n;
  };
  const out: NonNullable<ReceiveUrisOptions['download']> = {};
  const c = num('MPGIT_URI_CONCURRENCY');
  if (c !== undefined) out.concurrency = c;
  const s = num('MPGIT_URI_STALL_TIMEOUT_MS');
  if (s !== undefined) out.stallTimeoutMs = s;
  const r = num('MPGIT_URI_RETRIES');
  if (r !== undefined) out.retries = r;
  const b = num('MPGIT_URI_BACKOFF_MS');
  if (b !== undefined) out.backoff = { baseMs: b, maxMs: Math.max(b, b * 8) };
  return out;
}

/**
 * Downloads, verifies and indexes the packs `uris` name into `gitDir`'s objects/pack. Packs
 * already indexed there are skipped. On failure, what was downloaded stays for the next run.
 */
export async function receivePackfileUris(gitDir: string, uris: PackfileUri[], opts: ReceiveUrisOptions): Promise<ReceivedUriPack[]> {
  if (!uris.length) return [];
  const packDir = join(gitDir, 'objects', 'pack');
  const dir = opts.downloadDir ?? join(gitDir, DOWNLOAD_DIR);
  const { DownloadProgressPrinter, downloadPacks } = await import('./download.js');
  const printer = opts.progress ? new DownloadProgressPrinter(opts.progress.write, opts.progress.tty) : null;
  const todo = uris.filter((u) => !existsSync(join(packDir, `pack-${u.hash}.idx`)));
  const started = Date.now();
  const downloaded = await downloadPacks(todo, {
    dir,
    ...uriOptionsFromEnv(),
    ...opts.download,
    signal: opts.signal,
    mptcp: opts.mptcp,
    onProgress: printer ? (p) => printer.update(p) : undefined,
    onRetry: (e) => opts.say?.(`warning: ${e.uri}: ${e.reason}; retrying in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt + 1})`),
  });
  printer?.finish(downloaded, Date.now() - started);
  const out: ReceivedUriPack[] = [];
  for (const d of downloaded) {
    const packPath = join(packDir, `pack-${d.hash}.pack`);
    const idxPath = join(packDir, `pack-${d.hash}.idx`);
    const tmpIdx = join(packDir, `tmp_idx_${d.hash}`);
    try {
      const r = await indexPackFile(d.path, { idxPath: tmpIdx, revPath: null });
      // The downloader checked the trailer; the indexer re-derives it from what it parsed.
      if (r.packChecksum !== d.hash) throw new PackError(`pack from ${d.uri} indexes as ${r.packChecksum}, not ${d.hash}`);
      if (!existsSync(packPath)) renameSync(d.path, packPath);
      else rmSync(d.path, { force: true });
      chmodSync(packPath, 0o444);
      renameSync(tmpIdx, idxPath);
      chmodSync(idxPath, 0o444);
      out.push({ hash: d.hash, uri: d.uri, packPath, idxPath, objectCount: r.objectCount, size: d.size, fetched: d.fetched });
    } catch (e) {
      rmSync(tmpIdx, { force: true });
      // A pack the indexer rejects is useless to keep: the next run fetches it again.
      rmSync(d.path, { force: true });
      throw e;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** What to do about a connectivity failure. */
const MISSING_HINT = 'the server sent an incomplete answer; fetch again (with --no-packfile-uris if its URIs are at fault)';

/**
 * Checks that every object reachable from `tips` is in the repository (what git's
 * check_connected does after a fetch): with packfile URIs the inline pack alone is not
 * complete, and a clone or fetch must not count as done until the URI packs fill it.
 * `before` is the object database as it was before the fetch: what it had was complete, so
 * the walk stops there (with git, the refs play that part: `--not --all`). `shallow` commits
 * (and those of the repository's shallow file) have no parents here by design. Walked by the Rust core on libuv's pool when the addon
 * loads, else in process by `walkConnected`. Returns the objects reached.
 */
export async function checkConnected(gitDir: string, tips: string[], opts: { shallow?: Iterable<string>; before?: ObjectDb | null } = {}): Promise<{ objects: number }> {
  const before = opts.before ?? null;
  // The repository's shallow file counts, as it does for git.
  const shallow = [...new Set([...readShallow(gitDir), ...(opts.shallow ?? [])])];
  if (native?.connectivityCheck && (!before || before.handle)) {
    const db = ObjectDb.openSync(gitDir);
    try {
      if (db.handle) return await native.connectivityCheck(db.handle, tips, shallow, before?.handle ?? null);
    } catch (e) {
      const t = typedOdbError(e);
      throw t instanceof MpgitError && t.code === 'MPGIT_MISSING_OBJECTS' ? new MpgitError(t.code, t.message, MISSING_HINT) : t;
    } finally {
      db.close();
    }
  }
  return walkConnected(gitDir, tips, { shallow, before });
}

/** The TypeScript walk (without the addon). */
export function walkConnected(gitDir: string, tips: string[], opts: { shallow?: Iterable<string>; before?: ObjectDb | null } = {}): { objects: number } {
  const cut = new Set(opts.shallow ?? []);
  const before = opts.before ?? null;
  const db = ObjectDb.openSync(gitDir, { impl: 'js' });
  // Who referred to an object, for the error message only (kept as ids, made text on failure).
  const referrer = new Map<string, string>();
  const missing = (oid: string) => {
    const from = referrer.get(oid);
    return new MpgitError('MPGIT_MISSING_OBJECTS', `object ${oid} (reached from ${from ? `object ${from}` : 'a ref'}) is missing: the fetched packs are incomplete`, MISSING_HINT);
  };
  try {
    const seen = new Set<string>();
    const stack: string[] = [];
    const push = (oid: string, from: string | null) => {
      if (seen.has(oid)) return;
      seen.add(oid);
      if (from) referrer.set(oid, from);
      stack.push(oid);
    };
    for (const t of tips) push(t, null);
    // Trees wait until the commits are walked, then go newest first: packs keep recent objects
    // whole and older ones as deltas against them, so this order resolves each delta once.
    const trees: string[] = [];
    let t = 0;
    while (stack.length || t < trees.length) {
      const oid = stack.length ? stack.pop()! : trees[t++]!;
      if (before?.hasSync(oid)) continue;
      const obj = db.readSync(oid);
      if (!obj) throw missing(oid);
      if (obj.type === 'commit') {
        const c = parseCommit(obj.data, oid);
        if (!seen.has(c.tree)) {
          seen.add(c.tree);
          referrer.set(c.tree, oid);
          trees.push(c.tree);
        }
        if (!cut.has(oid)) for (const p of c.parents) push(p, oid);
      } else if (obj.type === 'tree') {
        for (const e of parseTree(obj.data, oid)) {
          if (e.mode === MODE_GITLINK || seen.has(e.oid)) continue;
          if (e.mode === MODE_TREE) push(e.oid, oid);
          else {
            // A blob needs only to be there: no need to read it.
            seen.add(e.oid);
            if (!db.hasSync(e.oid)) {
              referrer.set(e.oid, oid);
              throw missing(e.oid);
            }
          }
        }
      } else if (obj.type === 'tag') {
        push(parseTag(obj.data, oid).object, oid);
      }
    }
    return { objects: seen.size };
  } finally {
    db.close();
  }
}

/**
 * An interrupted clone keeps, in its target directory, what it needs to finish without asking
 * the server again: the record (refs, what to check out: the clone's own data), the inline
 * pack it already received, and the partial URI downloads.
 */
export const RESUME_DIR = '.mpgit-clone-resume';

export interface ResumeRecord<T = unknown> {
  version: 1;
  url: string;
  uris: PackfileUri[];
  /** The inline pack's checksum (pack-<checksum>.pack/.idx are kept next to the record). */
  inlinePack: string | null;
  /** What the clone needs to finish (its plan, the refs it saw): opaque here. */
  clone: T;
}

export function resumeDir(target: string): string {
  return join(target, RESUME_DIR);
}

/**
 * Records a clone that is about to download packfile URIs, so it can be resumed: the record
 * and a copy (hard link where possible) of the inline pack go to `<target>/.mpgit-clone-resume`.
 */
export function saveResumeRecord<T>(target: string, rec: ResumeRecord<T>, inline: { packPath: string; idxPath: string } | null): void {
  const dir = resumeDir(target);
  mkdirSync(join(dir, 'downloads'), { recursive: true });
  if (inline && rec.inlinePack) {
    for (const [from, ext] of [[inline.packPath, 'pack'], [inline.idxPath, 'idx']] as const) {
      const to = join(dir, `pack-${rec.inlinePack}.${ext}`);
      if (existsSync(to)) continue;
      try {
        linkSync(from, to);
      } catch {
        copyFileSync(from, to);
      }
    }
  }
  const file = join(dir, 'record.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(rec));
  renameSync(`${file}.tmp`, file);
}

/** The record of an interrupted clone in `target`, or null when there is none. */
export function readResumeRecord<T>(target: string): ResumeRecord<T> | null {
  const file = join(resumeDir(target), 'record.json');
  if (!existsSync(file)) return null;
  let r: ResumeRecord<T>;
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as ResumeRecord<T>;
  } catch (e) {
    throw new MpgitError('MPGIT_RESUME', `${file} is unreadable: ${(e as Error).message}`, `remove ${resumeDir(target)} and clone again`);
  }
  if (!r || r.version !== 1 || typeof r.url !== 'string' || !Array.isArray(r.uris)) {
    throw new MpgitError('MPGIT_RESUME', `${file} is not a clone record this mpgit understands`, `remove ${resumeDir(target)} and clone again`);
  }
  return r;
}

/** Puts the saved inline pack of an interrupted clone into `gitDir`'s objects/pack. */
export function restoreInlinePack(target: string, gitDir: string, checksum: string): void {
  const packDir = join(gitDir, 'objects', 'pack');
  mkdirSync(packDir, { recursive: true });
  // The .idx last: a pack is visible once its index is.
  for (const ext of ['pack', 'idx']) {
    const from = join(resumeDir(target), `pack-${checksum}.${ext}`);
    const to = join(packDir, `pack-${checksum}.${ext}`);
    if (!existsSync(from)) throw new MpgitError('MPGIT_RESUME', `${from} is missing`, `remove ${resumeDir(target)} and clone again`);
    if (!existsSync(to)) copyFileSync(from, to);
  }
}

export function clearResume(target: string): void {
  rmSync(resumeDir(target), { recursive: true, force: true });
}
