// The client side of packfile URIs, for clone and fetch: download every pack a server named
// (./download.ts: parallel, verified, resumable) and index each with the pack indexer into
// objects/pack (../repo/connectivity.ts then checks that the new refs are complete). Partial
// downloads live in <git-dir>/mpgit-packfile-uris/ until done, so an interrupted run continues
// where it stopped (./resume.ts keeps an interrupted clone's record next to them).

import { chmodSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MpgitError, PackError } from '../errors.js';
import { indexPackFile } from '../pack/indexer.js';
import type { ProgressSink } from '../progress.js';
// Types only: the downloader (and undici under it) loads when a server names URIs, not at
// every start of clone or fetch.
import type { DownloadOptions } from './download.js';
import type { PackfileUri } from '../protocol/packfile-uris.js';

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
