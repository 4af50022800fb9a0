// Packfile-URI download: the one place that fetches the packs a server names in its
// `packfile-uris` section. Downloads run in parallel (bounded), stream to disk, resume with
// HTTP Range from what is already on disk (across processes: the partial file and a small state
// file are the whole state), retry with capped exponential backoff on 5xx, resets, truncated
// bodies and stalls, and check that each pack's trailing checksum is the hash the server named
// (what git checks after `http-fetch`: index-pack's "keep\t<hash>" against the named hash).

import { mkdir, open, rename, rm } from 'node:fs/promises';
import { Agent, interceptors, type Dispatcher } from 'undici';
import { mptcpConnector } from '../net/mptcp-connector.js';
import { PACKFILE_URI_PROTOCOLS, type PackfileUri } from '../protocol/packfile-uris.js';
import { Rate, type DownloadProgress } from './download-progress.js';
import { attempt, label, UriDownloadError, type Job } from './pack-request.js';
import { downloadPaths, hashPrefix, readPartState, type StreamCheck } from './partial-pack.js';
import { fileSize } from '../file-size.js';
import { isOid } from '../oid.js';

export type { DownloadProgress, UriProgress, UriState } from './download-progress.js';
export { DownloadProgressPrinter } from './download-progress.js';
export { UriDownloadError } from './pack-request.js';
export { downloadPaths, PackStreamHash } from './partial-pack.js';

/** One download: a named pack, or a bundle (`hash` is then an id of its URI, nothing is named). */
export interface UriDownload extends PackfileUri {
  bundle?: boolean;
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

/** What the options default to, by the options' own names. */
const DEFAULTS = {
  concurrency: 4,
  stallTimeoutMs: 30_000,
  headersTimeoutMs: 30_000,
  retries: 6,
  backoff: { baseMs: 500, maxMs: 15_000 },
  maxPackBytes: 2 ** 40,
} satisfies Partial<DownloadOptions>;
const MAX_CONCURRENCY = 16;
/** An attempt that brought at least this much counts as progress: the failure streak restarts. */
const PROGRESS_BYTES = 64 * 1024;
/** Hard bound on attempts per URI, however much each one progressed. */
const MAX_ATTEMPTS = 100;
const MAX_REDIRECTS = 5;
/** Progress callbacks at most this often (state changes always report). */
const PROGRESS_INTERVAL_MS = 100;

/** Error codes of the network and of undici that a new attempt may cure. */
const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH',
  'EHOSTDOWN', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_CLOSED',
]);

/** Checks one `<hash> <uri>` entry: hash form and an accepted scheme. */
export function checkPackfileUri(p: PackfileUri, protocols: string[] = PACKFILE_URI_PROTOCOLS): void {
  if (!isOid(p.hash)) throw new UriDownloadError(p.uri, `bad pack hash ${JSON.stringify(p.hash)} for a packfile URI`, 'the server sent a malformed packfile-uris line; report it to the server operator');
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
export async function downloadPacks(list: UriDownload[], opts: DownloadOptions): Promise<DownloadedPack[]> {
  const protocols = opts.protocols ?? PACKFILE_URI_PROTOCOLS;
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
  const concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, opts.concurrency ?? DEFAULTS.concurrency));
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const connectTimeout = opts.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs;
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
  const done = await fileSize(job.final);
  if (done !== null) {
    // Renamed into place only after verification: a finished pack from an earlier run.
    Object.assign(p, { state: 'done', received: done, total: done });
    job.reused = done;
    report(true);
    return { hash: job.hash, uri: p.uri, path: job.final, size: done, reused: done, fetched: 0 };
  }
  const retries = opts.retries ?? DEFAULTS.retries;
  const backoff = opts.backoff ?? DEFAULTS.backoff;
  let state = await readPartState(job.stateFile, job.hash);
  let onDisk = (await fileSize(job.part)) ?? 0;
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
      onDisk = (await fileSize(job.part)) ?? 0;
      state = await readPartState(job.stateFile, job.hash);
      // Re-read from disk whenever the hash is not in step with the file (a new process, a
      // failed write, a dropped partial).
      if (!ctx.hasher || ctx.hasher.bytes !== onDisk) ctx.hasher = await hashPrefix(job.part, onDisk, job.bundle);
      p.received = onDisk;
      const limits = { maxPackBytes: opts.maxPackBytes ?? DEFAULTS.maxPackBytes, headersTimeoutMs: opts.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs, stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs };
      const r = await attempt(job, uri, onDisk, state, ctx, limits, dispatcher, signal, report);
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
      // Each restart drops the partial: bounded like failures, or a server that always
      // answers that way keeps us in a loop.
      ctx.hasher = null;
      streak++;
      if (streak > retries || p.attempts >= MAX_ATTEMPTS) {
        throw new UriDownloadError(uri, `giving up on pack ${job.hash} after ${p.attempts} attempts: the server keeps answering the partial download with a different or unsatisfiable range`, 'report it to the server operator, or fetch with --no-packfile-uris', false);
      }
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

