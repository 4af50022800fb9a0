// Publishing packs for offload (`mpgit offload`): writes packs into a directory that any HTTP
// server (or CDN origin) serves, named by content (pack-<checksum>.pack: a name never changes
// meaning, so caches and resumed downloads stay valid), and records them in the repository's
// offload state.
//
// Blob mode: every reachable blob at or above the minimum size goes into a few packs (oldest
// first, so a fetch of recent history needs only the newest). Unlike git's blobPackfileUri this
// works on packed repositories: we choose the objects, pack-objects only packs them. Entries of
// an existing uploadpack.blobPackfileUri configuration are taken over as they are.
//
// Base-pack mode: one pack of everything reachable from a ref (a release tag, a nightly
// snapshot). A refresh publishes the ref's new target; older bases are retired (no longer named)
// but stay published for RETIRED_RETENTION_MS, for clients resuming a download named earlier.
//
// Both modes prepare the repository for the daemon's pack-objects runs: a reachability bitmap
// (written by `git repack -a -d --write-bitmap-index` when no bitmap covers the packs, as git
// hosting servers do routinely) makes its walks cheap, and the answer to a clone of the
// advertised refs is computed and cached ahead of the first clone (./warm.ts).

import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { humanBytes } from '../progress.js';
import { GitCommandError, gitLines, gitText, objectTypes, resolveGitDir, runGit, spawnGit } from '../git.js';
import { warmCloneCache, type WarmedAnswer } from './warm.js';
import { carryBundles, publishBundles, pruneBundles } from './bundles.js';
import { holdLock } from '../repo/lockfile.js';
import { fileSize } from '../file-size.js';
import { livePacks, readState, statePath, writeState, type BasePack, type BlobPack, type ConfigPack, type OffloadState, type PublishedBundle } from './state.js';
import { isOid, OID_PATTERN } from '../oid.js';

const BLOB_PACKFILE_URI = new RegExp(`^(${OID_PATTERN}) (${OID_PATTERN}) (\\S+)$`);

export interface OffloadOptions {
  repo: string;
  publishDir: string;
  baseUrl: string;
  /** Blob mode: the size at and above which blobs are offloaded. */
  minSize?: number;
  /** Base-pack mode: the ref or commit whose history is the base pack. */
  base?: string;
  /** Update an existing setup (publish what changed, retire what was replaced). */
  refresh?: boolean;
  /** Base-pack mode: publish bundles too (kept on by a later --refresh). */
  bundles?: boolean;
  log?: (line: string) => void;
}

export interface OffloadResult {
  gitDir: string;
  state: OffloadState;
  published: (BasePack | BlobPack)[];
  retired: (BasePack | BlobPack)[];
  removed: string[];
  /** The reachability bitmap: there already, written now, or could not be written. */
  bitmap: BitmapOutcome;
  /** Clone answers now in the cache. */
  warmed: WarmedAnswer[];
  /** Bundles written by this run. */
  bundles: PublishedBundle[];
}

export type BitmapOutcome = 'present' | 'written' | 'unavailable';

/** How long a retired pack stays published after it stopped being named. */
export const RETIRED_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** Blob packs aim at a quarter of what is published at once, within these bounds. */
const BLOB_PACK_MIN_TARGET = 256 * 1024;
const BLOB_PACK_MAX_TARGET = 2 * 1024 ** 3;
const BLOB_PACKS_PER_RUN = 4;

/** "512k", "10m", "1g" (1024-based, as git config sizes), or plain bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new ConfigError(`bad size ${JSON.stringify(text)}`, 'give bytes, or a number with k, m or g (e.g. 1m)');
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n) || n <= 0) throw new ConfigError(`size ${text} is out of range`, 'give a positive size');
  return n;
}

function checkBaseUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`--base-url ${JSON.stringify(url)} is not a URL`, 'give the http(s) URL under which the publish directory is served');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`--base-url must be http or https, not ${u.protocol}`, 'clients download packfile URIs over HTTP(S) only');
}

/**
 * Runs `git pack-objects --stdout` with `input` and publishes its pack under its checksum
 * (after `opts.header`, for a bundle; `opts.name` names the file from the checksum).
 * Returns the pack's hash, file name and size.
 */
async function publishPack(gitDir: string, publishDir: string, args: string[], input: string, opts: { header?: Buffer; name?: (hash: string) => string } = {}): Promise<{ hash: string; file: string; size: number }> {
  const tmp = join(publishDir, `.tmp-pack-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    if (opts.header) await fh.write(opts.header);
    const child = spawnGit(gitDir, ['pack-objects', '--stdout', '--delta-base-offset', '-q', ...args]);
    let err = '';
    child.stderr!.on('data', (c: Buffer) => {
      if (err.length < 65536) err += c.toString();
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
    const closed = new Promise<number | null>((res, rej) => {
      child.on('error', rej);
      child.on('close', (code) => res(code));
    });
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) await fh.write(chunk);
    const code = await closed;
    if (code !== 0) throw new GitCommandError(['pack-objects', ...args], err.trim() || `exit ${code}`);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  const size = (await stat(tmp)).size;
  const trailer = Buffer.alloc(20);
  const rh = await open(tmp, 'r');
  try {
    await rh.read(trailer, 0, 20, size - 20);
  } finally {
    await rh.close();
  }
  const hash = trailer.toString('hex');
  const file = opts.name ? opts.name(hash) : `pack-${hash}.pack`;
  await rename(tmp, join(publishDir, file));
  return { hash, file, size };
}

/** Reachable blobs at or above `minSize`, oldest-introduced first, with a path for delta hints. */
async function bigBlobs(gitDir: string, minSize: number): Promise<{ oid: string; size: number; path: string }[]> {
  const revList = spawnGit(gitDir, ['rev-list', '--objects', '--all']);
  const check = spawnGit(gitDir, ['cat-file', '--buffer', '--batch-check=%(objecttype) %(objectname) %(objectsize) %(rest)']);
  revList.stdout!.pipe(check.stdin!);
  check.stdin!.on('error', () => {});
  let err = '';
  for (const c of [revList, check]) c.stderr!.on('data', (d: Buffer) => err.length < 65536 && (err += d.toString()));
  const out: { oid: string; size: number; path: string }[] = [];
  const done = Promise.all(
    [revList, check].map(
      (c) =>
        new Promise<number | null>((res, rej) => {
          c.on('error', rej);
          c.on('close', (code) => res(code));
        }),
    ),
  );
  for await (const line of createInterface({ input: check.stdout!, crlfDelay: Infinity })) {
    if (!line.startsWith('blob ')) continue;
    const sp1 = line.indexOf(' ', 5);
    const sp2 = line.indexOf(' ', sp1 + 1);
    const size = Number(line.slice(sp1 + 1, sp2 < 0 ? undefined : sp2));
    if (size >= minSize) out.push({ oid: line.slice(5, sp1), size, path: sp2 < 0 ? '' : line.slice(sp2 + 1) });
  }
  const codes = await done;
  if (codes.some((c) => c !== 0)) throw new GitCommandError(['rev-list', '--objects', '--all'], err.trim() || `exit ${codes.join(',')}`);
  // rev-list walks from the tips: reversed, older blobs come first.
  return out.reverse();
}

/** Entries of git's uploadpack.blobPackfileUri ("<object> <pack-hash> <uri>"), one per pack. */
async function configPacks(gitDir: string): Promise<ConfigPack[]> {
  const values = await gitLines(gitDir, ['config', '--get-all', 'uploadpack.blobpackfileuri'], { okCodes: [1] });
  const byHash = new Map<string, ConfigPack>();
  for (const v of values) {
    const m = BLOB_PACKFILE_URI.exec(v.trim());
    if (!m) throw new ConfigError(`uploadpack.blobPackfileUri ${JSON.stringify(v)} is not "<object> <pack-hash> <uri>"`, 'fix or remove that configuration entry');
    checkBaseUrl(m[3]!);
    const known = byHash.get(m[2]!);
    // A pack is named once per response, under the first URI configured for it.
    if (known) known.blobs.push(m[1]!);
    else byHash.set(m[2]!, { kind: 'config', hash: m[2]!, uri: m[3]!, blobs: [m[1]!] });
  }
  return [...byHash.values()];
}

/** Takes the repository's offload lock; the returned function releases it. */
function lock(gitDir: string): () => void {
  const path = `${statePath(gitDir)}.lock`;
  return holdLock(path, { message: `another \`mpgit offload\` is running on this repository (${path} exists)`, hint: `wait for it, or remove ${path} if no such process is left` });
}

/** Prepares (or refreshes) offload for a repository and publishes its packs. */
export async function prepareOffload(opts: OffloadOptions): Promise<OffloadResult> {
  const log = opts.log ?? (() => {});
  if ((opts.minSize === undefined) === (opts.base === undefined)) {
    throw new ConfigError('give exactly one of --min-size (blob mode) and --base (base-pack mode)');
  }
  checkBaseUrl(opts.baseUrl);
  const gitDir = await resolveGitDir(opts.repo);
  const publishDir = resolve(opts.publishDir);
  await mkdir(publishDir, { recursive: true });
  const mode = opts.minSize !== undefined ? 'blob' : 'base';
  const unlock = lock(gitDir);
  try {
    const old = await readState(gitDir);
    if (opts.refresh && !old) throw new ConfigError(`offload is not set up in ${opts.repo}`, 'run `mpgit offload` without --refresh first');
    if (opts.refresh && old && old.mode !== mode) {
      throw new ConfigError(`${opts.repo} is set up in ${old.mode} mode`, `run without --refresh to switch to ${mode} mode`);
    }
    const now = new Date();
    const state: OffloadState = {
      version: 1,
      mode,
      publishDir,
      baseUrl: opts.baseUrl,
      minSize: opts.minSize ?? null,
      packs: [],
      bundlesOn: !!opts.bundles || (!!opts.refresh && !!old?.bundlesOn),
      bundles: await carryBundles(old, publishDir, log),
    };
    if (state.bundlesOn && mode !== 'base') throw new ConfigError('--bundles needs base-pack mode', 'give --base REF with --bundles');
    const retired: (BasePack | BlobPack)[] = [];
    const removed: string[] = [];
    // Carry over published packs: those of the other mode are retired; a pack whose file is
    // gone from the publish directory (and from the old one) is dropped and republished below.
    for (const p of old?.packs ?? []) {
      if (p.kind === 'config') continue;
      let here = await fileSize(join(publishDir, p.file));
      if (here === null && old && old.publishDir !== publishDir && (await fileSize(join(old.publishDir, p.file))) !== null) {
        await copyFile(join(old.publishDir, p.file), join(publishDir, p.file));
        here = p.size;
      }
      if (here === null) {
        log(`${p.file} is missing from ${publishDir}: dropped`);
        continue;
      }
      if (p.retiredAt === null && p.kind !== mode) {
        p.retiredAt = now.toISOString();
        retired.push(p);
      }
      state.packs.push(p);
    }
    const bitmap = await ensureBitmap(gitDir, log);
    const published = mode === 'blob' ? await publishBlobs(gitDir, publishDir, state, opts.minSize!, now, log) : await publishBase(gitDir, publishDir, state, opts.base!, now, log, retired);
    if (mode === 'blob') state.packs.push(...(await configPacks(gitDir)));
    const bundles = state.bundlesOn ? await publishBundles(gitDir, publishDir, state, opts.base!, now, log, publishPack) : [];
    removed.push(...(await pruneBundles(state, publishDir, now, RETIRED_RETENTION_MS, log)));
    // Retired packs past their retention are no longer named by any response: remove them.
    state.packs = (
      await Promise.all(
        state.packs.map(async (p) => {
          if (p.kind === 'config' || p.retiredAt === null) return p;
          if (now.getTime() - Date.parse(p.retiredAt) < RETIRED_RETENTION_MS) return p;
          await rm(join(publishDir, p.file), { force: true });
          removed.push(p.file);
          log(`removed ${p.file} (retired ${p.retiredAt})`);
          return null;
        }),
      )
    ).filter((p): p is NonNullable<typeof p> => p !== null);
    await writeState(gitDir, state);
    const warmed = livePacks(state).length ? await warmCloneCache(gitDir, state, log) : [];
    return { gitDir, state, published, retired, removed, bitmap, warmed, bundles };
  } finally {
    unlock();
  }
}

/**
 * Makes sure a reachability bitmap covers the repository's packs, so pack-objects (ours and
 * git upload-pack's) finds what a fetch needs without walking the history. A bitmap covers the
 * pack it was written with (or a multi-pack index's packs): when other packs came since (a
 * push), everything is repacked into one pack with a new bitmap. Deltas are reused, and git
 * removes the old packs only once the new one is in place, so a live repository keeps serving.
 * Where git cannot write one (alternates, .keep packs) offload goes on without it.
 */
async function ensureBitmap(gitDir: string, log: (l: string) => void): Promise<BitmapOutcome> {
  if (await bitmapCovers(gitDir)) return 'present';
  const started = Date.now();
  let why: string;
  try {
    why = (await runGit(gitDir, ['repack', '-a', '-d', '-q', '--write-bitmap-index'])).stderr.trim();
  } catch (e) {
    why = (e as Error).message;
  }
  if (await bitmapCovers(gitDir)) {
    log(`wrote a reachability bitmap (git repack -a -d --write-bitmap-index, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return 'written';
  }
  log(`no reachability bitmap: git repack did not write one${why ? ` (${why.split('\n')[0]})` : ''}; clones are served without it`);
  return 'unavailable';
}

/**
 * Whether a bitmap covers every object: no loose objects (pushes and fast-import leave small
 * ones loose, which pack-objects must compress again for every clone) and every pack under the
 * bitmap (the single pack's own, or a multi-pack index's).
 */
async function bitmapCovers(gitDir: string): Promise<boolean> {
  const loose = /^count: (\d+)$/m.exec(await gitText(gitDir, ['count-objects', '-v']));
  if (!loose || Number(loose[1]) > 0) return false;
  const names = await readdir(join(gitDir, 'objects', 'pack')).catch(() => [] as string[]);
  if (names.some((n) => /^multi-pack-index-[0-9a-f]+\.bitmap$/.test(n))) return true;
  const packs = names.filter((n) => n.endsWith('.pack') && !n.startsWith('.'));
  return packs.length === 1 && names.includes(packs[0]!.replace(/\.pack$/, '.bitmap'));
}

async function publishBlobs(gitDir: string, publishDir: string, state: OffloadState, minSize: number, now: Date, log: (l: string) => void): Promise<BlobPack[]> {
  const done = new Set<string>();
  for (const p of livePacks(state)) if (p.kind === 'blob') for (const b of p.blobs) done.add(b);
  for (const p of await configPacks(gitDir)) for (const b of p.blobs) done.add(b);
  const todo = (await bigBlobs(gitDir, minSize)).filter((b) => !done.has(b.oid));
  const seen = new Set<string>();
  const unique = todo.filter((b) => !seen.has(b.oid) && seen.add(b.oid));
  if (!unique.length) {
    log(`no new blobs of ${humanBytes(minSize)} or more to publish`);
    return [];
  }
  const total = unique.reduce((a, b) => a + b.size, 0);
  const target = Math.min(BLOB_PACK_MAX_TARGET, Math.max(BLOB_PACK_MIN_TARGET, Math.ceil(total / BLOB_PACKS_PER_RUN)));
  const groups: (typeof unique)[] = [];
  let cur: typeof unique = [];
  let curSize = 0;
  for (const b of unique) {
    cur.push(b);
    curSize += b.size;
    if (curSize >= target) {
      groups.push(cur);
      cur = [];
      curSize = 0;
    }
  }
  if (cur.length) groups.push(cur);
  const out: BlobPack[] = [];
  for (const g of groups) {
    const { hash, file, size } = await publishPack(gitDir, publishDir, [], g.map((b) => (b.path ? `${b.oid} ${b.path}` : b.oid)).join('\n') + '\n');
    const pack: BlobPack = { kind: 'blob', hash, file, size, createdAt: now.toISOString(), retiredAt: null, blobs: g.map((b) => b.oid) };
    // The same blobs packed again give the same pack: a retired entry of it comes back to life.
    state.packs = state.packs.filter((p) => !(p.kind === 'blob' && p.hash === hash));
    state.packs.push(pack);
    out.push(pack);
    log(`published ${file}: ${g.length} blob${g.length === 1 ? '' : 's'}, ${humanBytes(size)}`);
  }
  return out;
}

async function publishBase(gitDir: string, publishDir: string, state: OffloadState, ref: string, now: Date, log: (l: string) => void, retired: (BasePack | BlobPack)[]): Promise<BasePack[]> {
  if (ref.startsWith('-')) throw new ConfigError(`--base ${JSON.stringify(ref)} is not a ref`);
  const object = await gitText(gitDir, ['rev-parse', '--verify', '-q', `${ref}^{object}`], { okCodes: [1] });
  if (!isOid(object)) throw new ConfigError(`--base ${ref}: no such ref or commit in the repository`, 'give a branch, a tag or a commit id');
  const commit = await gitText(gitDir, ['rev-parse', '--verify', '-q', `${ref}^{commit}`], { okCodes: [1] });
  if (!isOid(commit)) throw new ConfigError(`--base ${ref} does not name a commit`, 'give a branch, a tag or a commit id');
  const current = state.packs.find((p): p is BasePack => p.kind === 'base' && p.retiredAt === null);
  if (current && current.object === object) {
    log(`base ${ref} is still ${object.slice(0, 12)}: ${current.file} stays`);
    return [];
  }
  const types = await objectTypes(gitDir, [object]);
  const { hash, file, size } = await publishPack(gitDir, publishDir, ['--revs'], `${object}\n`);
  const commits = Number(await gitText(gitDir, ['rev-list', '--count', commit]));
  for (const p of state.packs) {
    if (p.kind === 'base' && p.retiredAt === null) {
      p.retiredAt = now.toISOString();
      retired.push(p);
      log(`retired ${p.file} (base ${p.ref} was ${p.object.slice(0, 12)}); it stays published for ${RETIRED_RETENTION_MS / 86400000} days`);
    }
  }
  const pack: BasePack = { kind: 'base', hash, file, size, createdAt: now.toISOString(), retiredAt: null, ref, object, commit, commits };
  state.packs = state.packs.filter((p) => !(p.kind === 'base' && p.hash === hash));
  state.packs.push(pack);
  log(`published ${file}: base ${ref} (${types.get(object)?.type ?? 'object'} ${object.slice(0, 12)}, ${commits} commits), ${humanBytes(size)}`);
  return [pack];
}
