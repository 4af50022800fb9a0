// Bundle URIs on the client (git's bundle-uri design): before a clone's or fetch's pack, take
// what bundles carry from an HTTP server or CDN. The list comes from the server's v2
// `bundle-uri` command, from `--bundle-uri=URL` or from `fetch.bundleURI` (a bundle or a bundle
// list, http(s) or a file). Bundles are downloaded in parallel by the packfile-URI downloader
// (Range resume from the state in the download directory, retries, stall detection), checked
// (header, prerequisites present, pack trailer), indexed by the pack indexer, and their refs
// written under refs/bundles/ as git 2.55 writes them. The fetch that follows offers those refs
// as haves, so the server sends only the rest.
//
// The server stays the source of truth: a bundle that is missing, unreachable or wrong is
// skipped with one warning and the fetch brings what it would have carried. A bundle's refs
// are written only once its whole pack is indexed, so nothing half-applied is ever named.

import { createReadStream, existsSync, openSync, readSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MpgitError } from '../errors.js';
import { AGENT } from '../protocol/capabilities.js';
import { humanBytes, type ProgressSink } from '../progress.js';
import { BundleError, looksLikeBundle, readBundleHeader, type BundleRef } from '../bundle/format.js';
import { parseBundleListFile, parseBundleListLines, parseCreationToken, type BundleList, type BundleListEntry } from '../bundle/list.js';
import { ObjectDb } from '../repo/odb.js';
import { writeRef } from '../repo/refs.js';
import { setConfigValue } from '../repo/config-write.js';
import { resumeDir } from './resume.js';
import type { RemoteSession } from './session.js';
import { uriOptionsFromEnv, type ReceiveUrisOptions } from './uri-packs.js';
import type { DownloadProgress, DownloadedPack } from './download.js';
import { receivePack } from './receive.js';

export interface BundleOptions {
  progress: ProgressSink | null;
  say: ((line: string) => void) | null;
  verbose: ((line: string) => void) | null;
  /** Where downloads live until applied (a clone keeps them in its resume directory). */
  downloadDir: string;
  mptcp?: boolean;
  /** Only bundles with a creationToken above this (fetch.bundleCreationToken). */
  minToken?: bigint | null;
  download?: ReceiveUrisOptions['download'];
  /** zlib level of the bases a thin bundle's pack is completed with (the repository's: repo/compression.ts). */
  compressionLevel?: number;
  /** How deep in nested bundle lists this list is (0: the list given). */
  depth?: number;
}

export interface AppliedBundle {
  uri: string;
  creationToken: bigint | null;
  refs: BundleRef[];
  objects: number;
  bytes: number;
}

export interface BundlesResult {
  applied: AppliedBundle[];
  /** The list uses the creationToken heuristic (fetch.bundleURI is then worth keeping). */
  heuristic: boolean;
  /** The largest creationToken applied, null when none was. */
  maxToken: bigint | null;
  /** Why some or all bundles were not used (the one warning printed), or null. */
  failure: string | null;
}

/** Bound on a bundle list file. */
const MAX_LIST_BYTES = 1024 * 1024;
/** Nested lists followed at most this deep (git's max_bundle_uri_depth; lists may form cycles). */
const MAX_LIST_DEPTH = 4;
const PROBE_TIMEOUT_MS = 30_000;

/** Local path of a file:// URI or plain path; null for http(s). */
function localPath(uri: string): string | null {
  if (/^https?:\/\//i.test(uri)) return null;
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) throw new BundleError(`bundle URI ${uri}: only http, https and file are supported`);
  return uri;
}

/**
 * What a URI given by the user (`--bundle-uri`, `fetch.bundleURI`) holds: a bundle (a list of
 * that one) or a bundle list. Its first bytes decide, as in git.
 */
export async function listFromUri(uri: string, opts: { mptcp?: boolean } = {}): Promise<BundleList> {
  return (await probeList(uri, opts)) ?? { mode: 'all', heuristic: null, bundles: [{ id: 'bundle', uri, creationToken: null }] };
}

/** The bundle list at `uri`, or null when it holds a bundle. */
async function probeList(uri: string, opts: { mptcp?: boolean }): Promise<BundleList | null> {
  const single = () => null;
  const path = localPath(uri);
  if (path !== null) {
    const head = Buffer.alloc(16);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 16, 0);
    } finally {
      closeSync(fd);
    }
    if (looksLikeBundle(head)) return single();
    const text = readFileSync(path);
    if (text.length > MAX_LIST_BYTES) throw new BundleError(`${uri} is neither a bundle nor a bundle list of at most ${MAX_LIST_BYTES} bytes`);
    return parseBundleListFile(text.toString('utf8'), new URL(`file://${path}`).toString());
  }
  const { request } = await import('undici');
  const res = await request(uri, { method: 'GET', headersTimeout: PROBE_TIMEOUT_MS, bodyTimeout: PROBE_TIMEOUT_MS, headers: { 'accept-encoding': 'identity', 'user-agent': AGENT } });
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => {});
    throw new BundleError(`HTTP ${res.statusCode} for ${uri}`, 'the bundle URI is unreachable; the server sends everything');
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    chunks.push(c);
    bytes += c.length;
    if (bytes >= 16 && looksLikeBundle(Buffer.concat(chunks).subarray(0, 16))) {
      // A bundle: the downloader fetches it (resumably); stop this request here.
      res.body.destroy();
      return single();
    }
    if (bytes > MAX_LIST_BYTES) {
      res.body.destroy();
      throw new BundleError(`${uri} is neither a bundle nor a bundle list of at most ${MAX_LIST_BYTES} bytes`);
    }
  }
  return parseBundleListFile(Buffer.concat(chunks).toString('utf8'), uri);
}

/** The server's advertised list (v2 `bundle-uri` lines). */
export function listFromLines(lines: string[]): BundleList {
  return parseBundleListLines(lines);
}

/** An id for a bundle's download (its state files are named by it): the URI's SHA-1. */
function downloadId(uri: string): string {
  return createHash('sha1').update(uri).digest('hex');
}

/**
 * Downloads, checks, indexes and applies the bundles of `list` into `gitDir`. Never throws for
 * a bundle's fault: what could not be used is reported in `failure` (said once, as a warning).
 */
export async function applyBundleList(gitDir: string, list: BundleList, opts: BundleOptions): Promise<BundlesResult> {
  const heuristic = list.heuristic === 'creationToken';
  const result: BundlesResult = { applied: [], heuristic, maxToken: null, failure: null };
  let todo = list.bundles;
  if (heuristic && opts.minToken != null) todo = todo.filter((b) => b.creationToken !== null && b.creationToken > opts.minToken!);
  if (!todo.length) return result;
  // Oldest first: an increment needs what the ones before it bring.
  todo = [...todo].sort((a, b) => {
    const [x, y] = [a.creationToken ?? 0n, b.creationToken ?? 0n];
    return x < y ? -1 : x > y ? 1 : 0;
  });
  const failures: string[] = [];
  const files = new Map<BundleListEntry, string>();
  /** Takes what `bundles` bring: their files, or (an entry that is a bundle list) the list's bundles applied. */
  const take = async (bundles: BundleListEntry[]): Promise<boolean> => {
    const got = await fetchBundles(bundles, opts);
    for (const [k, v] of got.files) files.set(k, v);
    let any = got.files.size > 0;
    for (const [b, why] of got.failed) if (await followList(gitDir, b, why, opts, result, failures)) any = true;
    return any;
  };
  if (list.mode === 'any') {
    // Any one will do (mirrors in different places): the first that comes, in list order.
    for (const b of list.bundles) {
      if (await take([b])) {
        todo = files.has(b) ? [b] : [];
        break;
      }
    }
  } else await take(todo);

  const db = ObjectDb.openSync(gitDir);
  try {
    // Apply in rounds, as git does: a bundle whose prerequisites another one brings waits for it.
    let pending = todo.filter((b) => files.has(b));
    for (let progress = true; progress && pending.length; ) {
      progress = false;
      const next: BundleListEntry[] = [];
      for (const b of pending) {
        const file = files.get(b)!;
        try {
          const header = await readBundleHeader(file);
          const missing = header.prerequisites.filter((p) => !db.hasSync(p.oid));
          if (missing.length) {
            next.push(b);
            continue;
          }
          const started = Date.now();
          const pack = await receivePack(createReadStream(file, { start: header.length, highWaterMark: 1 << 20 }), gitDir, { fixThin: db, compressionLevel: opts.compressionLevel, progress: opts.progress });
          db.addPack(pack.packPath, pack.idxPath);
          const absent = header.refs.find((r) => !db.hasSync(r.oid));
          if (absent) throw new BundleError(`bundle ${b.uri} names ${absent.oid} (${absent.name}) but does not carry it`);
          // As git 2.55: refs/<x> of the bundle becomes refs/bundles/<x>.
          for (const r of header.refs) if (r.name.startsWith('refs/')) writeRef(gitDir, `refs/bundles/${r.name.slice('refs/'.length)}`, r.oid);
          result.applied.push({ uri: b.uri, creationToken: b.creationToken, refs: header.refs, objects: pack.objectCount, bytes: pack.bytes });
          if (b.creationToken !== null && (result.maxToken === null || b.creationToken > result.maxToken)) result.maxToken = b.creationToken;
          opts.verbose?.(`Bundle ${b.uri}: ${pack.objectCount} objects (${humanBytes(pack.bytes)}) indexed in ${((Date.now() - started) / 1000).toFixed(2)} s, ${header.refs.length} ref${header.refs.length === 1 ? '' : 's'}`);
          progress = true;
        } catch (e) {
          failures.push(`${b.uri}: ${(e as Error).message}`);
        }
      }
      pending = next;
    }
    for (const b of pending) failures.push(`${b.uri}: its prerequisites are not in the repository`);
  } finally {
    db.close();
  }
  // Downloads that failed part-way stay for the next run to resume; all used, none is needed.
  if (!failures.length) rmSync(opts.downloadDir, { recursive: true, force: true });
  if (failures.length) {
    result.failure = failures[0]! + (failures.length > 1 ? ` (and ${failures.length - 1} more)` : '');
    opts.say?.(`warning: ${result.applied.length ? 'some bundles were skipped' : 'bundles not used'}: ${result.failure}; the server sends what they would have carried`);
  }
  return result;
}

/**
 * Gets the bundles onto disk: local ones are used where they are, http(s) ones downloaded in
 * parallel (each on its own, so one failing does not stop the others). `failed` holds why each
 * other one did not arrive as a bundle (it may be a bundle list: the caller looks).
 */
async function fetchBundles(bundles: BundleListEntry[], opts: BundleOptions): Promise<{ files: Map<BundleListEntry, string>; failed: Map<BundleListEntry, string> }> {
  const out = new Map<BundleListEntry, string>();
  const failed = new Map<BundleListEntry, string>();
  const remote: BundleListEntry[] = [];
  for (const b of bundles) {
    try {
      const path = localPath(b.uri);
      if (path === null) remote.push(b);
      else if (!existsSync(path)) failed.set(b, `${b.uri}: no such file`);
      else if (!isBundleFile(path)) failed.set(b, `${b.uri}: not a bundle`);
      else out.set(b, path);
    } catch (e) {
      failed.set(b, (e as Error).message);
    }
  }
  if (!remote.length) return { files: out, failed };
  const { DownloadProgressPrinter, downloadPacks } = await import('./download.js');
  const printer = opts.progress ? new DownloadProgressPrinter(opts.progress.write, opts.progress.tty, 'bundle') : null;
  const bounds = { ...uriOptionsFromEnv(), ...opts.download };
  const latest = new Map<string, DownloadProgress>();
  const draw = () => printer?.update(mergeProgress([...latest.values()]));
  const started = Date.now();
  const done: DownloadedPack[] = [];
  let next = 0;
  const worker = async () => {
    while (next < remote.length) {
      const b = remote[next++]!;
      const id = downloadId(b.uri);
      try {
        const [d] = await downloadPacks([{ hash: id, uri: b.uri, bundle: true }], {
          dir: opts.downloadDir,
          ...bounds,
          // A bundle only spares work the fetch would do: a bundle server that cannot be reached
          // is given up on after one retry (git does not retry), one that makes progress resumes.
          retries: opts.download?.retries ?? 1,
          concurrency: 1,
          mptcp: opts.mptcp,
          onProgress: printer
            ? (p) => {
                latest.set(id, p);
                draw();
              }
            : undefined,
          onRetry: (e) => opts.say?.(`warning: ${e.uri}: ${e.reason}; retrying in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt + 1})`),
        });
        done.push(d!);
        out.set(b, d!.path);
      } catch (e) {
        failed.set(b, e instanceof MpgitError ? e.message : `${b.uri}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(bounds.concurrency ?? 4, remote.length) }, worker));
  printer?.finish(done, Date.now() - started);
  return { files: out, failed };
}

function isBundleFile(path: string): boolean {
  const head = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  try {
    return looksLikeBundle(head.subarray(0, readSync(fd, head, 0, 16, 0)));
  } finally {
    closeSync(fd);
  }
}

/**
 * An entry that did not arrive as a bundle may be a bundle list (a "list of lists", which git
 * follows up to depth 4): its bundles are applied into `result`. True when some were; else the
 * entry's failure (or the list's) joins `failures`.
 */
async function followList(gitDir: string, b: BundleListEntry, why: string, opts: BundleOptions, result: BundlesResult, failures: string[]): Promise<boolean> {
  const nested = await probeList(b.uri, { mptcp: opts.mptcp }).catch(() => null);
  if (!nested) {
    failures.push(why);
    return false;
  }
  const depth = (opts.depth ?? 0) + 1;
  if (depth >= MAX_LIST_DEPTH) {
    failures.push(`${b.uri}: exceeded bundle URI recursion limit (${MAX_LIST_DEPTH})`);
    return false;
  }
  opts.verbose?.(`Bundle list ${b.uri}: ${nested.bundles.length} entr${nested.bundles.length === 1 ? 'y' : 'ies'} (nested, depth ${depth})`);
  const r = await applyBundleList(gitDir, nested, { ...opts, say: null, depth, downloadDir: join(opts.downloadDir, `list-${downloadId(b.uri)}`) });
  result.applied.push(...r.applied);
  if (r.maxToken !== null && (result.maxToken === null || r.maxToken > result.maxToken)) result.maxToken = r.maxToken;
  if (r.failure) failures.push(r.failure);
  return r.applied.length > 0;
}

function mergeProgress(all: DownloadProgress[]): DownloadProgress {
  const uris = all.flatMap((p) => p.uris);
  const totals = all.map((p) => p.total);
  return {
    uris,
    received: all.reduce((a, p) => a + p.received, 0),
    fetched: all.reduce((a, p) => a + p.fetched, 0),
    total: totals.every((t) => t !== null) ? (totals as number[]).reduce((a, t) => a + t, 0) : null,
    rate: all.reduce((a, p) => a + p.rate, 0),
    done: all.reduce((a, p) => a + p.done, 0),
  };
}

/** The tips a fetch after bundles offers as haves: every ref the bundles brought. */
export function bundleTips(r: BundlesResult): string[] {
  return [...new Set(r.applied.flatMap((b) => b.refs.map((x) => x.oid)))];
}


/**
 * The bundle step of a clone: the list from --bundle-uri, or the one the server advertises
 * (unless `bundleUris` is false: --no-bundle-uri, transfer.bundleURI=false), applied into `gitDir`. `starting` runs
 * before the first download (the clone records that it may be resumed). As git does, a list
 * with the creationToken heuristic is remembered for later fetches (fetch.bundleURI,
 * fetch.bundleCreationToken).
 */
export async function seedFromBundles(
  gitDir: string,
  target: string,
  session: RemoteSession,
  opts: { bundleUri?: string; bundleUris?: boolean; mptcp?: boolean } & Pick<BundleOptions, 'progress' | 'say' | 'verbose' | 'compressionLevel'>,
  starting: () => void,
): Promise<BundlesResult> {
  const none: BundlesResult = { applied: [], heuristic: false, maxToken: null, failure: null };
  let list: BundleList;
  if (!opts.bundleUri) {
    if (opts.bundleUris === false || !session.offersBundles) return none;
    // A failure on the wire is the session's: it goes up like any other.
    const lines = await session.bundleUri();
    try {
      list = listFromLines(lines);
    } catch (e) {
      opts.say?.(`warning: the server's bundle list is not usable (${(e as Error).message}); cloning without bundles`);
      return { ...none, failure: (e as Error).message };
    }
  } else {
    try {
      list = await listFromUri(opts.bundleUri, { mptcp: opts.mptcp });
    } catch (e) {
      opts.say?.(`warning: failed to fetch objects from bundle URI '${opts.bundleUri}': ${(e as Error).message}`);
      return { ...none, failure: (e as Error).message };
    }
  }
  if (!list.bundles.length) return none;
  starting();
  const r = await applyBundleList(gitDir, list, { ...opts, downloadDir: join(resumeDir(target), 'bundles') });
  const config = join(gitDir, 'config');
  if (r.heuristic && r.applied.length) {
    if (opts.bundleUri) setConfigValue(config, 'fetch.bundleURI', opts.bundleUri);
    if (r.maxToken !== null) setConfigValue(config, 'fetch.bundleCreationToken', String(r.maxToken));
  }
  return r;
}

/** Under the git dir: a fetch's bundle downloads, kept until applied (an interrupted fetch resumes them). */
export const FETCH_BUNDLE_DIR = 'mpgit-bundles';

/**
 * The bundle step of a fetch (fetch.bundleURI): with the creationToken heuristic only bundles
 * newer than fetch.bundleCreationToken are downloaded, and the token is raised after.
 */
export async function seedFetchFromBundles(gitDir: string, uri: string, token: string | undefined, opts: { mptcp?: boolean } & Pick<BundleOptions, 'progress' | 'say' | 'verbose' | 'compressionLevel'>): Promise<BundlesResult> {
  let list: BundleList;
  try {
    list = await listFromUri(uri, { mptcp: opts.mptcp });
  } catch (e) {
    opts.say?.(`warning: failed to fetch bundles from '${uri}': ${(e as Error).message}`);
    return { applied: [], heuristic: false, maxToken: null, failure: (e as Error).message };
  }
  const minToken = parseCreationToken(token);
  const r = await applyBundleList(gitDir, list, { ...opts, minToken, downloadDir: join(gitDir, FETCH_BUNDLE_DIR) });
  if (r.heuristic && r.maxToken !== null && r.maxToken > (minToken ?? 0n)) setConfigValue(join(gitDir, 'config'), 'fetch.bundleCreationToken', String(r.maxToken));
  return r;
}
