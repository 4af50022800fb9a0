// One HTTP request for a pack: ranged from what is on disk (If-Range on the validator kept
// with it), appended to the partial file and hashed as it arrives; status and Content-Range
// decide whether the bytes continue the partial, replace it, or the attempt is retried.

import { open, rm, type FileHandle } from 'node:fs/promises';
import { request, type Dispatcher } from 'undici';
import { MpgitError } from '../errors.js';
import { AGENT } from '../protocol/capabilities.js';
import type { Rate, UriProgress } from './download-progress.js';
import { newCheck, writePartState, type PartState, type StreamCheck } from './partial-pack.js';

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

/** One pack to download. */
export interface Job {
  hash: string;
  /** Every URI that named this pack (the first is tried first; others are fallbacks). */
  uris: string[];
  progress: UriProgress;
  rate: Rate;
  part: string;
  stateFile: string;
  final: string;
  reused: number;
  /** A bundle: its header is checked, and its pack's trailer against its content only. */
  bundle: boolean;
}

/** How messages name a download: a pack by its hash, a bundle by its URI (in the message). */
export function label(job: Job): string {
  return job.bundle ? 'bundle' : `pack ${job.hash}`;
}

export interface AttemptLimits {
  maxPackBytes: number;
  headersTimeoutMs: number;
  stallTimeoutMs: number;
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
export async function attempt(
  job: Job,
  uri: string,
  onDisk: number,
  state: PartState | null,
  ctx: { hasher: StreamCheck | null },
  limits: AttemptLimits,
  dispatcher: Dispatcher,
  signal: AbortSignal,
  report: (force: boolean) => void,
): Promise<{ outcome: 'complete' | 'restart'; state: PartState | null }> {
  const p = job.progress;
  const maxBytes = limits.maxPackBytes;
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
    headersTimeout: limits.headersTimeoutMs,
    bodyTimeout: limits.stallTimeoutMs,
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
    if (onDisk === 0) {
      // Nothing was asked for but the whole file: no partial to drop and start again from.
      await res.body.dump().catch(() => {});
      throw new UriDownloadError(uri, `HTTP 416 for pack ${job.hash}, asked for without a range`, 'the URI server refuses to serve the pack; report it to the server operator, or fetch with --no-packfile-uris');
    }
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
  await writePartState(job.stateFile, newState);
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
