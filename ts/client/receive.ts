// Receiving a pack into a repository: the streamed pack bytes go straight into the indexer
// (which writes the .pack as it parses), thin packs are completed from the local objects,
// and the result is renamed to objects/pack/pack-<checksum>.{pack,idx} as git names it.

import { chmodSync, existsSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { addThinBases, feedIndexer } from '../pack/feed.js';
import { createIndexer } from '../pack/indexer.js';
import type { ObjectReader } from '../pack/object.js';
import { Progress, type ProgressSink } from '../progress.js';

export interface ReceivedPack {
  packPath: string;
  idxPath: string;
  checksum: string;
  objectCount: number;
  bytes: number;
  /** Bases of a thin pack appended from local objects. */
  appendedBases: number;
  /** Milliseconds until the last byte came, and until the pack was indexed. */
  receiveMs: number;
  indexMs: number;
}

export interface ReceiveOptions {
  /** Local objects to complete a thin pack with (fetch); none for clone. */
  fixThin?: ObjectReader;
  /** zlib level of the bases appended to a thin pack (the repository's: repo/compression.ts). */
  compressionLevel?: number;
  /** Progress meters go here (null: quiet). */
  progress: ProgressSink | null;
}

/**
 * Queued-but-unparsed bytes above which we stop reading the socket (it then pauses). Every
 * queued byte is a resident copy; the parser outruns a network, so a few MiB absorb its pauses.
 */
const MAX_QUEUED_BYTES = 8 << 20;
/** How often the meters are redrawn from the indexer's counters. */
const PROGRESS_POLL_MS = 100;

/** Streams `src` into objects/pack of `gitDir`. Leaves nothing behind on failure. */
export async function receivePack(src: AsyncIterable<Buffer>, gitDir: string, opts: ReceiveOptions): Promise<ReceivedPack> {
  const packDir = join(gitDir, 'objects', 'pack');
  const tag = randomBytes(6).toString('hex');
  const tmpPack = join(packDir, `tmp_pack_${tag}`);
  const tmpIdx = join(packDir, `tmp_idx_${tag}`);
  const receiving = new Progress(opts.progress, 'Receiving objects', 0, { throughput: true });
  const resolving = new Progress(opts.progress, 'Resolving deltas', 0);
  let bytes = 0;
  let phase: 'receiving' | 'resolving' = 'receiving';
  let inputEnded = false;
  const started = Date.now();
  let receiveMs = 0;
  const ix = createIndexer(tmpPack);
  // "Receiving" ends once every byte is in and parsed; then deltas are being resolved.
  const endReceiving = () => {
    const p = ix.progress();
    receiving.setTotal(p.objectsTotal);
    receiving.done(p.objectsReceived, bytes);
    phase = 'resolving';
  };
  const draw = () => {
    const p = ix.progress();
    if (phase === 'receiving') {
      if (!p.objectsTotal) return;
      if (inputEnded && p.objectsReceived >= p.objectsTotal) return endReceiving();
      receiving.setTotal(p.objectsTotal);
      receiving.update(p.objectsReceived, bytes);
    } else if (p.deltasTotal) {
      resolving.setTotal(p.deltasTotal);
      resolving.update(p.deltasResolved);
    }
  };
  const timer = opts.progress ? setInterval(draw, PROGRESS_POLL_MS) : null;
  try {
    await feedIndexer(ix, src, { maxQueuedBytes: MAX_QUEUED_BYTES, onChunk: (chunk) => (bytes += chunk.length) });
    inputEnded = true;
    receiveMs = Date.now() - started;
    const { missing } = await ix.resolve();
    if (phase === 'receiving') endReceiving();
    if (missing.length && opts.fixThin) await addThinBases(ix, missing, opts.fixThin);
    const r = await ix.finish({ idxPath: tmpIdx, revPath: null, fixThin: !!opts.fixThin, compressionLevel: opts.compressionLevel });
    if (r.deltaCount) {
      resolving.setTotal(r.deltaCount);
      resolving.done(r.deltaCount);
    }
    const packPath = join(packDir, `pack-${r.packChecksum}.pack`);
    const idxPath = join(packDir, `pack-${r.packChecksum}.idx`);
    if (existsSync(idxPath) && existsSync(packPath)) {
      // The same pack is here already (same checksum, same bytes): keep the old one.
      rmSync(r.packPath, { force: true });
      rmSync(r.idxPath, { force: true });
    } else {
      // Read-only, as git leaves packs; the .idx last: a reader that sees it can rely on the
      // .pack being there.
      chmodSync(r.packPath, 0o444);
      chmodSync(r.idxPath, 0o444);
      renameSync(r.packPath, packPath);
      renameSync(r.idxPath, idxPath);
    }
    return { packPath, idxPath, checksum: r.packChecksum, objectCount: r.objectCount, bytes, appendedBases: r.appendedBases, receiveMs, indexMs: Date.now() - started };
  } catch (e) {
    receiving.abort();
    resolving.abort();
    ix.abort();
    rmSync(tmpPack, { force: true });
    rmSync(tmpIdx, { force: true });
    throw e;
  } finally {
    if (timer) clearInterval(timer);
  }
}
