// A checkout thread (see checkout.ts): opens the repository's objects itself, then decodes and
// writes the slices of the tree it is handed, answering with the stats for the index.

import { parentPort, workerData } from 'node:worker_threads';
import { ObjectDb } from './odb.js';
import { writeEntry, type SliceAnswer, type SliceRequest } from './checkout.js';
import { MpgitError } from '../errors.js';

/** Bytes of pack windows and of delta bases each checkout thread keeps. */
const WORKER_WINDOW_CACHE_BYTES = 96 << 20;
const WORKER_BASE_CACHE_BYTES = 32 << 20;

const { gitDir, workTree } = workerData as { gitDir: string; workTree: string };
// Each thread keeps its own windows of the packs: a share of what one reader would keep.
const db = ObjectDb.openSync(gitDir, { windowCacheBytes: WORKER_WINDOW_CACHE_BYTES, baseCacheBytes: WORKER_BASE_CACHE_BYTES });

parentPort!.on('message', (req: SliceRequest) => {
  let answer: SliceAnswer;
  try {
    answer = { start: req.start, stats: req.items.map((item) => writeEntry(db, item, workTree)) };
  } catch (e) {
    const err = e as Error & { code?: string };
    answer = { error: { message: err.message, code: err.code, hint: e instanceof MpgitError ? e.hint : undefined, name: err.name } };
  }
  parentPort!.postMessage(answer);
});
