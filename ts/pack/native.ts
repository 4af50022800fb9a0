// The PackIndexer backed by the Rust core's indexer (crates/node/src/pack.rs, or the
// WebAssembly core's: ts/core/wasm-indexer.ts): parsing runs as bytes arrive, delta
// resolution on `threads` threads.

import { rmSync } from 'node:fs';
import { MpgitError } from '../errors.js';
import { core, coreCall, coreMissing, type CoreIndexResult, type IndexerCore, type PackHandle } from '../core/index.js';
import type { FinishOptions, IndexProgress, IndexResult, PackIndexer } from './types.js';
import { typeCode, type ObjectType } from './object.js';

function surface(): IndexerCore {
  if (core.indexer) return core.indexer;
  throw new MpgitError('MPGIT_NO_CORE', `the ${core.kind} core has no pack indexer: ${coreMissing('indexer')}`, 'run `npm run build:native`, or reinstall mpgit');
}

function result(packPath: string, idxPath: string, revPath: string | null, r: CoreIndexResult): IndexResult {
  return { packPath, idxPath, revPath, packChecksum: r.packChecksum, objectCount: r.objectCount, deltaCount: r.deltaCount, appendedBases: r.appendedBases };
}

export class NativeIndexer implements PackIndexer {
  private readonly n: IndexerCore;
  private readonly h: PackHandle;
  private done = false;

  constructor(
    readonly packPath: string,
    opts: { threads: number; maxCacheBytes?: number },
  ) {
    const n = (this.n = surface());
    this.h = coreCall(() => n.packIndexerNew(packPath, opts.maxCacheBytes === undefined ? { threads: opts.threads } : { threads: opts.threads, maxCacheBytes: opts.maxCacheBytes }));
  }

  write(chunk: Buffer): number {
    return coreCall(() => this.n.packIndexerWrite(this.h, chunk));
  }

  progress(): IndexProgress {
    return this.n.packIndexerProgress(this.h);
  }

  async resolve(): Promise<{ missing: string[] }> {
    return coreCall(() => this.n.packIndexerResolve(this.h));
  }

  addBase(oid: string, type: ObjectType, data: Buffer): void {
    coreCall(() => this.n.packIndexerAddBase(this.h, oid, typeCode(type), data));
  }

  async finish(opts: FinishOptions): Promise<IndexResult> {
    const r = await coreCall(() => this.n.packIndexerFinish(this.h, opts));
    this.done = true;
    return result(this.packPath, opts.idxPath, opts.revPath, r);
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    // The handle's thread stops when the handle is collected; the partial pack goes now.
    rmSync(this.packPath, { force: true });
  }
}

/** Indexes a pack already on disk with the core. */
export async function nativeIndexFile(packPath: string, opts: { threads: number; idxPath: string; revPath: string | null }): Promise<IndexResult> {
  const n = surface();
  return result(packPath, opts.idxPath, opts.revPath, await coreCall(() => n.indexPackFile(packPath, opts)));
}
