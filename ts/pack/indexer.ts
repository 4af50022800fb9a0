// The pack indexer: a pack in (streamed, or a file), its .idx v2 (and .rev) out, with the
// bases of a thin pack appended from the repository when asked (--fix-thin). The core's
// indexer (Rust: native or WebAssembly, ts/core) writes the same bytes as git.

import { availableParallelism } from 'node:os';
import { MpgitError } from '../errors.js';
import type { ObjectReader } from './object.js';
import type { IndexProgress, IndexResult, PackIndexer } from './types.js';
import { addThinBases, feedIndexer } from './feed.js';
import { NativeIndexer, nativeIndexFile } from './native.js';

export type { IndexProgress, IndexResult, PackIndexer } from './types.js';

/** Queued-but-unparsed bytes above which indexStream stops reading its source. */
const MAX_QUEUED_BYTES = 32 << 20;
/** How often indexStream reports progress. */
const PROGRESS_EVERY_MS = 100;

export function defaultThreads(): number {
  return availableParallelism();
}

/** An indexer that writes the pack it is fed to `packPath` (which must not exist). */
export function createIndexer(packPath: string, opts: { threads?: number; maxCacheBytes?: number } = {}): PackIndexer {
  return new NativeIndexer(packPath, { threads: opts.threads ?? defaultThreads(), maxCacheBytes: opts.maxCacheBytes });
}

/** `packPath` minus ".pack" plus `ext` (git's naming of the files next to a pack). */
export function siblingPath(packPath: string, ext: '.idx' | '.rev'): string {
  if (!packPath.endsWith('.pack')) throw new MpgitError('MPGIT_USAGE', `pack file name '${packPath}' does not end with '.pack'`, 'name the pack *.pack or give the index name with -o');
  return packPath.slice(0, -'.pack'.length) + ext;
}

/**
 * Streams a pack from `src` into `packPath` and indexes it. With `fixThin`, bases missing from
 * a thin pack are read from that repository and appended. On any failure the partial pack is
 * removed and no index is left behind.
 */
export async function indexStream(
  src: AsyncIterable<Buffer>,
  packPath: string,
  opts: {
    threads?: number;
    fixThin?: ObjectReader;
    /** zlib level of the bases appended with fixThin (the repository's: repo/compression.ts). */
    compressionLevel?: number;
    idxPath?: string;
    revPath?: string | null;
    onProgress?: (p: IndexProgress) => void;
  } = {},
): Promise<IndexResult> {
  const ix = createIndexer(packPath, { threads: opts.threads });
  let last = 0;
  const report = (force = false) => {
    if (!opts.onProgress) return;
    const now = Date.now();
    if (!force && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    opts.onProgress(ix.progress());
  };
  const timer = opts.onProgress ? setInterval(() => report(), PROGRESS_EVERY_MS) : null;
  try {
    await feedIndexer(ix, src, { maxQueuedBytes: MAX_QUEUED_BYTES, onChunk: () => report() });
    report(true);
    const { missing } = await ix.resolve();
    if (missing.length && opts.fixThin) await addThinBases(ix, missing, opts.fixThin);
    const result = await ix.finish({
      idxPath: opts.idxPath ?? siblingPath(packPath, '.idx'),
      revPath: opts.revPath ?? null,
      fixThin: !!opts.fixThin,
      compressionLevel: opts.compressionLevel,
    });
    report(true);
    return result;
  } catch (e) {
    ix.abort();
    throw e;
  } finally {
    if (timer) clearInterval(timer);
  }
}

/** Indexes a pack already on disk (no --fix-thin: git allows that only with --stdin). */
export async function indexPackFile(
  packPath: string,
  opts: { threads?: number; idxPath?: string; revPath?: string | null } = {},
): Promise<IndexResult> {
  const idxPath = opts.idxPath ?? siblingPath(packPath, '.idx');
  return nativeIndexFile(packPath, { threads: opts.threads ?? defaultThreads(), idxPath, revPath: opts.revPath ?? null });
}
