// Feeding a pack stream into an indexer, for every reader of one (a fetch's socket, index-pack's
// stdin): the one back-pressure loop (the indexer parses on its own thread; while it is behind,
// nothing more is pulled from the source, which then pauses), and the bases of a thin pack.

import type { ObjectReader } from './object.js';
import type { PackIndexer } from './types.js';

/** How often a full queue is looked at again. */
const QUEUE_POLL_MS = 2;

/**
 * Writes every chunk of `src` to `ix`, waiting while more than `maxQueuedBytes` are queued but
 * not yet parsed (each is a resident copy). `onChunk` sees each chunk as it arrives.
 */
export async function feedIndexer(ix: PackIndexer, src: AsyncIterable<Buffer>, opts: { maxQueuedBytes: number; onChunk?: (chunk: Buffer) => void }): Promise<void> {
  for await (const chunk of src) {
    opts.onChunk?.(chunk);
    let queued = ix.write(chunk);
    while (queued > opts.maxQueuedBytes) {
      await new Promise((r) => setTimeout(r, QUEUE_POLL_MS));
      queued = ix.write(Buffer.alloc(0));
    }
  }
}

/** --fix-thin: hands the indexer each base it lacks that `repo` has (what resolve() said is `missing`). */
export async function addThinBases(ix: PackIndexer, missing: string[], repo: ObjectReader): Promise<void> {
  for (const oid of missing) {
    const obj = await repo.read(oid);
    if (obj) ix.addBase(oid, obj.type, obj.data);
  }
}
