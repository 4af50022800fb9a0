// Packfile-URI download: the one place that fetches the packs a server names in its
// `packfile-uris` section. Downloads run in parallel (bounded), stream to disk, resume with
// HTTP Range from what is already on disk (across processes: the partial file and a small state
// file are the whole state), retry with capped exponential backoff on 5xx, resets, truncated
// bodies and stalls, and check that each pack's trailing checksum is the hash the server named
// (what git checks after `http-fetch`: index-pack's "keep\t<hash>" against the named hash).

import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, interceptors, request, type buildConnector, type Dispatcher } from 'undici';
import { connect } from '../net/socket.js';
import { MpgitError } from '../errors.js';
import { AGENT } from '../protocol/capabilities.js';
import { humanBytes } from '../progress.js';
import { PackStreamHash, type StreamCheck } from '../pack/stream-hash.js';
import { BundleStreamCheck } from '../bundle/format.js';

export interface PackfileUri {
  /** The pack's trailing SHA-1 checksum, as the server named it (for a bundle: an id of its URI). */
  hash: string;
  uri: string;
  /**
   * A bundle (header, then a pack) rather than a pack: the header is parsed as it arrives and
   * the pack's trailer checked against its content only (nobody named its hash).
   */
  bundle?: boolean;
}

export type UriState = 'queued' | 'downloading' | 'retrying' | 'verifying' | 'done' | 'failed';

export interface UriProgress {
  hash: string;
  uri: string;
  state: UriState;
  /** Bytes on disk (including those from an earlier, interrupted run). */
  received: number;
  /** Bytes fetched over the network by this run. */
  fetched: number;
  /** Full size, once a response told it. */
  total: number | null;
  /** Bytes per second over the last few seconds. */
  rate: number;
  attempts: number;
}

export interface DownloadProgress {
  uris: UriProgress[];
  received: number;
  fetched: number;
  /** Sum of the known totals (null while any is unknown). */
  total: number | null;
  rate: number;
  done: number;
}

export interface RetryEvent {
  hash: string;
  uri: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface DownloadOptions {
  /** Directory for partial and finished packs and their state (created if missing). */
  dir: string;
  /** Downloads at once (default 4). */
  concurrency?: number;
  /** Longest time without a byte of body before the attempt counts as stalled (default 30 s). */
  stallTimeoutMs?: number;
  /** Longest wait for connection and response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Failed attempts in a row (without progress) before a URI counts as failed (default 6). */
  retries?: number;
  /** Backoff: first delay and cap, in ms (default 500 ms doubling up to 15 s, with jitter). */
  backoff?: { baseMs: number; maxMs: number };
  /** Largest pack accepted from one URI (default 1 TiB). */
  maxPackBytes?: number;
  /** URI schemes accepted (default http, https). */
  protocols?: string[];
  /** Connect to the HTTP servers over Multipath TCP (falls back to TCP per connection). */
  mptcp?: boolean;
  onProgress?: (p: DownloadProgress) => void;
  onRetry?: (e: RetryEvent) => void;
  signal?: AbortSignal;
}

export interface DownloadedPack {
  hash: string;
  uri: string;
  /** The verified pack on disk (`<dir>/<hash>.pack`). */
  path: string;
  size: number;
  /** Bytes that were already on disk when this run started (resumed or finished before). */
  reused: number;
  /** Bytes fetched over the network by this run. */
  fetched: number;
}

/** A packfile URI that could not be fetched or served bad bytes. */
export class UriDownloadError extends MpgitError {
  readonly uri: string;
  readonly retryable: boolean;
  constructor(uri: string, message: string, hint: string, retryable = false, options?: { cause?: unknown }) {
    super('MPGIT_URI_DOWNLOAD', `${message} (${uri})`, hint, options);
    this.name = 'UriDownloadError';
    this.uri = uri;
    this.retryable = retryable;
  }
}

const DEFAULT_CONCURRENCY = 4;
const MAX_CONCURRENCY = 16;
const DEFAULT_STALL_MS = 30_000;
const DEFAULT_HEADERS_MS = 30_000;
const DEFAULT_RETRIES = 6;
const DEFAULT_BACKOFF = { baseMs: 500, maxMs: 15_000 };
const DEFAULT_MAX_PACK = 2 ** 40;
/** An attempt that brought at least this much counts as progress: the failure streak restarts. */
const PROGRESS_BYTES = 64 * 1024;
/** Hard bound on attempts per URI, however much each one progressed. */
const MAX_ATTEMPTS = 100;
const MAX_REDIRECTS = 5;
/** Progress callbacks at most this often (state changes always report). */
const PROGRESS_INTERVAL_MS = 100;
/** Window over which rates are measured. */
const RATE_WINDOW_MS = 3000;
const HASH_RE = /^[0-9a-f]{40}$/;

/** Error codes of the network and of undici that a new attempt may cure. */
const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH',
  'EHOSTDOWN', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_CLOSED',
]);

/** State kept next to a partial pack so another process can resume it safely. */
interface PartState {
  hash: string;
  uri: string;
  /** Strong ETag or Last-Modified of the response the partial bytes came from (for If-Range). */
  validator: string | null;
  total: number | null;
}

class Rate {
  private samples: { t: number; bytes: number }[] = [];
  add(bytes: number): void {
    const t = Date.now();
    this.samples.push({ t, bytes });
    while (this.samples.length && t - this.samples[0]!.t > RATE_WINDOW_MS) this.samples.shift();
  }
  get(): number {
    const now = Date.now();
    const live = this.samples.filter((s) => now - s.t <= RATE_WINDOW_MS);
    if (!live.length) return 0;
    const span = Math.max(250, now - live[0]!.t);
    return (live.reduce((a, s) => a + s.bytes, 0) * 1000) / span;
  }
}

interface Job {
  hash: string;
  /** Every URI that named this pack (the first is tried first; others are fallbacks). */
  uris: string[];
  progress: UriProgress;
  rate: Rate;
  part: string;
  stateFile: string;
  final: string;
  reused: number;
  bundle: boolean;
}

/** `<dir>/<hash>.pack` once verified; where partial bytes and their state live meanwhile. */
export function downloadPaths(dir: string, hash: string, bundle = false): { final: string; part: string; state: string } {
  const ext = bundle ? 'bundle' : 'pack';
  return { final: join(dir, `${hash}.${ext}`), part: join(dir, `${hash}.${ext}.part`), state: join(dir, `${hash}.part.json`) };
}

/** Checks one `<hash> <uri>` entry: hash form and an accepted scheme. */
export function checkPackfileUri(p: PackfileUri, protocols: string[] = ['http', 'https']): void {
  if (!HASH_RE.test(p.hash)) throw new UriDownloadError(p.uri, `bad pack hash ${JSON.stringify(p.hash)} for a packfile URI`, 'the server sent a malformed packfile-uris line; report it to the server operator');
  let url: URL;
  try {
    url = new URL(p.uri);
  } catch {
    throw new UriDownloadError(p.uri, 'malformed packfile URI', 'the server sent a malformed packfile-uris line; report it to the server operator');
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!protocols.includes(scheme)) {
    throw new UriDownloadError(p.uri, `packfile URI scheme ${scheme} was not asked for (accepted: ${protocols.join(', ')})`, 'the server ignored the protocols the client asked for; fetch with --no-packfile-uris');
  }
}

/**
 * Downloads every pack (deduplicated by hash), `concurrency` at a time. Packs already finished
 * in `dir` are skipped; partial ones continue where they stopped. Resolves with the verified
 * packs in the order given, or rejects with the first failure (others stop; their partial bytes
 * stay on disk for the next run).
 */
export async function downloadPacks(list: PackfileUri[], opts: DownloadOptions): Promise<DownloadedPack[]> {
  const protocols = opts.protocols ?? ['http', 'https'];
  const byHash = new Map<string, Job>();
  await mkdir(opts.dir, { recursive: true });
  for (const p of list) {
    checkPackfileUri(p, protocols);
    const known = byHash.get(p.hash);
    if (known) {
      if (!known.uris.includes(p.uri)) known.uris.push(p.uri);
      continue;
    }
    const paths = downloadPaths(opts.dir, p.hash, !!p.bundle);
    byHash.set(p.hash, {
      hash: p.hash,
      uris: [p.uri],
      progress: { hash: p.hash, uri: p.uri, state: 'queued', received: 0, fetched: 0, total: null, rate: 0, attempts: 0 },
      rate: new Rate(),
      part: paths.part,
      stateFile: paths.state,
      final: paths.final,
      reused: 0,
      bundle: !!p.bundle,
    });
  }
  const jobs = [...byHash.values()];
  const concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, opts.concurrency ?? DEFAULT_CONCURRENCY));
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const connectTimeout = opts.headersTimeoutMs ?? DEFAULT_HEADERS_MS;
  const dispatcher = new Agent({
    connections: concurrency,
    connectTimeout,
    ...(opts.mptcp ? { connect: mptcpConnector(connectTimeout) } : {}),
  }).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));

  let lastReport = 0;
  const report = (force: boolean) => {
    if (!opts.onProgress) return;
    const now = Date.now();
    if (!force && now - lastReport < PROGRESS_INTERVAL_MS) return;
    lastReport = now;
    for (const j of jobs) j.progress.rate = j.progress.state === 'downloading' ? j.rate.get() : 0;
    const uris = jobs.map((j) => ({ ...j.progress }));
    const totals = uris.map((u) => u.total);
    opts.onProgress({
      uris,
      received: uris.reduce((a, u) => a + u.received, 0),
      fetched: uris.reduce((a, u) => a + u.fetched, 0),
      total: totals.every((t) => t !== null) ? (totals as number[]).reduce((a, t) => a + t, 0) : null,
      rate: uris.reduce((a, u) => a + u.rate, 0),
      done: uris.filter((u) => u.state === 'done').length,
    });
  };

  const results = new Map<string, DownloadedPack>();
  let failure: unknown = null;
  let next = 0;
  const worker = async () => {
    while (!failure && next < jobs.length) {
      const job = jobs[next++]!;
      try {
        results.set(job.hash, await downloadOne(job, opts, dispatcher, abort.signal, report));
      } catch (e) {
        job.progress.state = 'failed';
        report(true);
        if (!failure) failure = e;
        abort.abort(e);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
    await dispatcher.close().catch(() => {});
  }
  if (failure) throw failure;
  report(true);
  return jobs.map((j) => results.get(j.hash)!);
}

/**
 * An undici connector whose sockets are MPTCP (made in Rust, see net/socket.ts): the bulk of a
 * clone then rides every link, as the git:// connection does. TLS goes on top for https.
 */
function mptcpConnector(timeoutMs: number): buildConnector.connector {
  return (o, callback) => {
    const port = Number(o.port) || (o.protocol === 'https:' ? 443 : 80);
    connect(o.hostname, port, { mptcp: true, timeoutMs }).then(
      ({ socket }) => {
        socket.setNoDelay(true);
        if (o.protocol !== 'https:') return callback(null, socket);
        const servername = o.servername ?? (net.isIP(o.hostname.replace(/^\[|\]$/g, '')) ? undefined : o.hostname);
        const secure = tls.connect({ socket, servername, ALPNProtocols: ['http/1.1'] });
        const fail = (e: Error) => {
          secure.destroy();
          callback(e, null);
        };
        const timer = setTimeout(() => fail(new Error(`TLS handshake with ${o.hostname}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
        secure.once('error', (e) => {
          clearTimeout(timer);
          fail(e);
        });
        secure.once('secureConnect', () => {
          clearTimeout(timer);
          secure.removeAllListeners('error');
          callback(null, secure);
        });
      },
      (e: Error) => callback(e, null),
    );
  };
}

async function exists(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function readState(file: string, hash: string): Promise<PartState | null> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as PartState;
    return s && s.hash === hash ? s : null;
  } catch {
    return null;
  }
}

async function writeState(file: string, s: PartState): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(s));
  await rename(tmp, file);
}

/** How messages name a download: a pack by its hash, a bundle by its URI (in the message). */
function label(job: Job): string {
  return job.bundle ? 'bundle' : `pack ${job.hash}`;
}

function newCheck(bundle: boolean): StreamCheck {
  return bundle ? new BundleStreamCheck() : new PackStreamHash();
}

/** Feeds the first `bytes` of `path` to a fresh hash (after a restart, or after a failed write). */
async function hashPrefix(path: string, bytes: number, bundle: boolean): Promise<StreamCheck> {
  const h = newCheck(bundle);
  if (bytes === 0) return h;
  for await (const c of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h;
}

function backoffDelay(failures: number, b: { baseMs: number; maxMs: number }): number {
  const raw = Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, failures - 1));
  // Jitter keeps a fleet of clients from retrying against a CDN in lockstep.
  return Math.round(raw * (0.75 + Math.random() * 0.5));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function errorCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function describeCause(e: unknown): string {
  const code = errorCode(e);
  if (code === 'UND_ERR_BODY_TIMEOUT') return 'stalled: no data for the stall timeout';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'no response within the timeout';
  const msg = e instanceof Error ? e.message : String(e);
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}

async function downloadOne(
  job: Job,
  opts: DownloadOptions,
  dispatcher: Dispatcher,
  signal: AbortSignal,
  report: (force: boolean) => void,
): Promise<DownloadedPack> {
  const p = job.progress;
  const done = await exists(job.final);
  if (done !== null) {
    // Renamed into place only after verification: a finished pack from an earlier run.
    Object.assign(p, { state: 'done', received: done, total: done });
    job.reused = done;
    report(true);
    return { hash: job.hash, uri: p.uri, path: job.final, size: done, reused: done, fetched: 0 };
  }
  const retries = opts.retries ?? DEFAULT_RETRIES;
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  let state = await readState(job.stateFile, job.hash);
  let onDisk = (await exists(job.part)) ?? 0;
  if (onDisk > 0 && !state) {
    // Bytes without their validator cannot be trusted to belong to this response.
    await rm(job.part, { force: true });
    onDisk = 0;
  }
  job.reused = onDisk;
  p.received = onDisk;
  p.total = state?.total ?? null;
  const ctx: { hasher: StreamCheck | null } = { hasher: null };
  let streak = 0;
  let restartedAfterMismatch = false;

  for (;;) {
    if (signal.aborted) throw signal.reason;
    p.attempts++;
    const uri = job.uris[(p.attempts - 1) % job.uris.length]!;
    p.uri = uri;
    p.state = 'downloading';
    report(true);
    const before = p.fetched;
    let outcome: 'complete' | 'restart';
    try {
      onDisk = (await exists(job.part)) ?? 0;
      state = await readState(job.stateFile, job.hash);
      // Re-read from disk whenever the hash is not in step with the file (a new process, a
      // failed write, a dropped partial).
      if (!ctx.hasher || ctx.hasher.bytes !== onDisk) ctx.hasher = await hashPrefix(job.part, onDisk, job.bundle);
      p.received = onDisk;
      const r = await attempt(job, uri, onDisk, state, ctx, opts, dispatcher, signal, report);
      state = r.state;
      outcome = r.outcome;
    } catch (e) {
      if (signal.aborted) throw signal.reason ?? e;
      const retryable = e instanceof UriDownloadError ? e.retryable : RETRYABLE_CODES.has(errorCode(e) ?? '') || /^HPE_/.test(errorCode(e) ?? '');
      const failure =
        e instanceof UriDownloadError
          ? e
          : new UriDownloadError(uri, `downloading ${label(job)}: ${describeCause(e)}`, 'the URI server failed; run the same command again to resume', retryable, { cause: e });
      if (!retryable) throw failure;
      streak = p.fetched - before >= PROGRESS_BYTES ? 1 : streak + 1;
      if (streak > retries || p.attempts >= MAX_ATTEMPTS) {
        throw new UriDownloadError(
          uri,
          `giving up on ${label(job)} after ${p.attempts} attempts: ${failure.message.replace(/ \([^()]*\)$/, '')}`,
          'the URI server keeps failing; what was downloaded is kept: run the same command again (or `mpgit clone --resume DIR`) to continue',
          false,
          { cause: e },
        );
      }
      const delayMs = backoffDelay(streak, backoff);
      p.state = 'retrying';
      report(true);
      opts.onRetry?.({ hash: job.hash, uri, attempt: p.attempts, delayMs, reason: describeCause(e) });
      await sleep(delayMs, signal);
      continue;
    }
    if (outcome === 'restart') {
      ctx.hasher = null;
      continue;
    }
    // The whole pack is on disk: check it.
    p.state = 'verifying';
    report(true);
    let sums: { computed: string; trailer: string };
    try {
      sums = ctx.hasher!.finish();
    } catch (e) {
      throw new UriDownloadError(uri, `${label(job)} is not a pack: ${(e as Error).message}`, 'the URI serves something else than the pack; report it to the server operator');
    }
    if (sums.computed !== sums.trailer || (!job.bundle && sums.trailer !== job.hash)) {
      await rm(job.part, { force: true });
      await rm(job.stateFile, { force: true });
      // Bytes kept from an earlier run may have come from a different file behind the same
      // URI: one fresh download settles it.
      if (job.reused > 0 && !restartedAfterMismatch) {
        restartedAfterMismatch = true;
        job.reused = 0;
        p.received = 0;
        state = null;
        ctx.hasher = null;
        continue;
      }
      const what = sums.computed !== sums.trailer ? `is corrupt (its checksum ${sums.trailer} does not match its content, ${sums.computed})` : `does not match expected hash ${job.hash} (it is ${sums.trailer})`;
      throw new UriDownloadError(uri, `pack downloaded ${what}`, 'the URI serves wrong bytes; nothing was kept. Report it to the server operator, or fetch with --no-packfile-uris');
    }
    const fh = await open(job.part, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(job.part, job.final);
    await rm(job.stateFile, { force: true });
    p.state = 'done';
    p.total = p.received;
    report(true);
    return { hash: job.hash, uri, path: job.final, size: p.received, reused: job.reused, fetched: p.fetched };
  }
}

function parseContentRange(v: string | undefined): { start: number; end: number; total: number | null } | { unsatisfied: number } | null {
  if (!v) return null;
  let m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim());
  if (m) return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
  m = /^bytes \*\/(\d+)$/.exec(v.trim());
  if (m) return { unsatisfied: Number(m[1]) };
  return null;
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** One HTTP request: appends to the partial file; 'restart' when the partial must be dropped. */
async function attempt(
  job: Job,
  uri: string,
  onDisk: number,
  state: PartState | null,
  ctx: { hasher: StreamCheck | null },
  opts: DownloadOptions,
  dispatcher: Dispatcher,
  signal: AbortSignal,
  report: (force: boolean) => void,
): Promise<{ outcome: 'complete' | 'restart'; state: PartState | null }> {
  const p = job.progress;
  const maxBytes = opts.maxPackBytes ?? DEFAULT_MAX_PACK;
  const headers: Record<string, string> = { 'user-agent': AGENT, 'accept-encoding': 'identity' };
  if (onDisk > 0) {
    headers.range = `bytes=${onDisk}-`;
    if (state?.validator) headers['if-range'] = state.validator;
  }
  const res = await request(uri, {
    method: 'GET',
    headers,
    dispatcher,
    signal,
    headersTimeout: opts.headersTimeoutMs ?? DEFAULT_HEADERS_MS,
    bodyTimeout: opts.stallTimeoutMs ?? DEFAULT_STALL_MS,
  });
  const restart = async () => {
    await res.body.dump().catch(() => {});
    await rm(job.part, { force: true });
    p.received = 0;
    return { outcome: 'restart' as const, state: null };
  };
  const status = res.statusCode;
  const cr = parseContentRange(header(res.headers, 'content-range'));
  if (status === 416) {
    if (cr && 'unsatisfied' in cr && cr.unsatisfied === onDisk && onDisk > 0) {
      await res.body.dump().catch(() => {});
      return { outcome: 'complete', state };
    }
    return restart();
  }
  if (status >= 500 || status === 408 || status === 429) {
    await res.body.dump().catch(() => {});
    throw new UriDownloadError(uri, `HTTP ${status} for ${label(job)}`, 'the URI server failed; run the same command again to resume', true);
  }
  if (status !== 200 && status !== 206) {
    await res.body.dump().catch(() => {});
    throw new UriDownloadError(uri, `HTTP ${status} for ${label(job)}`, status === 404 ? 'the server named a pack its URI server does not have; report it to the server operator, or fetch with --no-packfile-uris' : 'the URI server refused the download; report it to the server operator, or fetch with --no-packfile-uris');
  }
  let offset = 0;
  let total: number | null = null;
  const length = Number(header(res.headers, 'content-length') ?? NaN);
  if (status === 206) {
    if (!cr || 'unsatisfied' in cr || cr.start !== onDisk) return restart();
    offset = onDisk;
    total = cr.total;
  } else {
    if (onDisk > 0) {
      // The server ignored the range (or the file changed, per If-Range): start over.
      await rm(job.part, { force: true });
      p.received = 0;
      ctx.hasher = newCheck(job.bundle);
      job.reused = 0;
    }
    total = Number.isFinite(length) ? length : null;
  }
  if (total !== null && total > maxBytes) {
    await res.body.dump().catch(() => {});
    throw new UriDownloadError(uri, `${label(job)} is ${total} bytes, over the limit of ${maxBytes}`, 'raise the download size limit if this pack is expected');
  }
  const etag = header(res.headers, 'etag');
  const validator = etag && !etag.startsWith('W/') ? etag : (header(res.headers, 'last-modified') ?? null);
  const newState: PartState = { hash: job.hash, uri, validator, total };
  await writeState(job.stateFile, newState);
  p.total = total;
  const expectEnd = status === 206 && Number.isFinite(length) ? offset + length : total;

  const hasher = ctx.hasher!;
  let fh: FileHandle | null = null;
  try {
    fh = await open(job.part, offset === 0 ? 'w' : 'a');
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (p.received + chunk.length > maxBytes) throw new UriDownloadError(uri, `${label(job)} exceeds the limit of ${maxBytes} bytes`, 'raise the download size limit if this pack is expected');
      try {
        hasher.update(chunk);
      } catch (e) {
        await fh.close();
        fh = null;
        await rm(job.part, { force: true });
        await rm(job.stateFile, { force: true });
        throw new UriDownloadError(uri, `${label(job)}: ${(e as Error).message}`, 'the URI serves something else than a pack; report it to the server operator, or fetch with --no-packfile-uris');
      }
      await fh.write(chunk);
      p.received += chunk.length;
      p.fetched += chunk.length;
      job.rate.add(chunk.length);
      report(false);
    }
  } finally {
    await fh?.close();
  }
  if (expectEnd !== null && p.received !== expectEnd) {
    throw new UriDownloadError(uri, `${label(job)}: body ended at ${p.received} of ${expectEnd} bytes`, 'the connection was cut; run the same command again to resume', true);
  }
  return { outcome: 'complete', state: newState };
}

/**
 * Renders download progress on stderr: one line rewritten in place on a terminal (total, rate,
 * per-URI shares), and a line per finished pack.
 */
export class DownloadProgressPrinter {
  private announced = new Set<string>();
  private lastLine = '';
  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
  ) {}

  update(p: DownloadProgress): void {
    for (const u of p.uris) {
      if (u.state === 'done' && !this.announced.has(u.hash)) {
        this.announced.add(u.hash);
        const how = u.fetched === 0 ? 'already downloaded' : u.fetched < u.received ? `resumed, fetched ${humanBytes(u.fetched)}` : 'downloaded';
        this.clear();
        this.write(`Pack ${u.hash.slice(0, 12)}: ${humanBytes(u.received)} ${how} from ${u.uri}\n`);
      }
    }
    if (!this.tty) return;
    const total = p.total !== null ? ` / ${humanBytes(p.total)}` : '';
    const parts = p.uris
      .filter((u) => u.state === 'downloading' || u.state === 'retrying')
      .map((u) => `${u.hash.slice(0, 7)} ${u.total ? Math.floor((u.received * 100) / u.total) : 0}%${u.state === 'retrying' ? ' (retrying)' : ''}`);
    const line = `Downloading packs: ${p.done}/${p.uris.length}, ${humanBytes(p.received)}${total} | ${humanBytes(p.rate)}/s${parts.length ? ` [${parts.join(', ')}]` : ''}`;
    this.lastLine = line;
    this.write(`\r${line}\x1b[K`);
  }

  private clear(): void {
    if (this.tty && this.lastLine) this.write('\r\x1b[K');
  }

  /** Final summary line. */
  finish(packs: DownloadedPack[], ms: number): void {
    this.clear();
    const bytes = packs.reduce((a, p) => a + p.size, 0);
    const fetched = packs.reduce((a, p) => a + p.fetched, 0);
    const rate = ms > 0 ? (fetched * 1000) / ms : 0;
    this.write(`Downloaded ${packs.length} pack${packs.length === 1 ? '' : 's'} from packfile URIs: ${humanBytes(bytes)} (${humanBytes(fetched)} fetched now, ${humanBytes(rate)}/s)\n`);
  }
}
