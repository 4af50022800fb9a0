// The PackIndexer backed by the Rust addon (crates/node/src/pack.rs): parsing runs on a
// background thread as bytes arrive, delta resolution on `threads` threads.

import { rmSync } from 'node:fs';
import { MissingBaseError, MpgitError, PackError } from '../errors.js';
import { native, nativeLoadError, type NativeAddon, type NativeIndexResult, type PackHandle } from '../native.js';
import type { IndexProgress, IndexResult, PackIndexer } from './types.js';
import { typeCode, type ObjectType } from './object.js';

type PackSurface = Required<
  Pick<
    NativeAddon,
    'packIndexerNew' | 'packIndexerWrite' | 'packIndexerProgress' | 'packIndexerResolve' | 'packIndexerAddBase' | 'packIndexerFinish' | 'indexPackFile'
  >
>;

const FUNCTIONS = ['packIndexerNew', 'packIndexerWrite', 'packIndexerProgress', 'packIndexerResolve', 'packIndexerAddBase', 'packIndexerFinish', 'indexPackFile'] as const;

/** Why the native indexer is unavailable, or null when it is there. */
export function nativePackMissing(): string | null {
  if (!native) return nativeLoadError ?? 'the addon did not load';
  const absent = FUNCTIONS.filter((f) => typeof native![f] !== 'function');
  return absent.length ? `the addon lacks ${absent.join(', ')}` : null;
}

function surface(): PackSurface {
  const why = nativePackMissing();
  if (why) throw new MpgitError('MPGIT_NO_NATIVE', `native pack indexer not built: ${why}`, 'run `npm run build:native`, or use the TypeScript indexer (--impl js, or MPGIT_NO_NATIVE=1)');
  return native as PackSurface;
}

/** Native errors carry `code`; give them the typed classes the rest of mpgit catches. */
function typed(e: unknown): unknown {
  if (e instanceof MpgitError || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  if (code === 'MPGIT_BAD_PACK') return new PackError(e.message);
  if (code === 'MPGIT_MISSING_BASE') return new MissingBaseError(e.message);
  return e;
}

function result(packPath: string, idxPath: string, revPath: string | null, r: NativeIndexResult): IndexResult {
  return { packPath, idxPath, revPath, packChecksum: r.packChecksum, objectCount: r.objectCount, deltaCount: r.deltaCount, appendedBases: r.appendedBases };
}

export class NativeIndexer implements PackIndexer {
  readonly impl = 'native' as const;
  private readonly n: PackSurface;
  private readonly h: PackHandle;
  private done = false;

  constructor(
    readonly packPath: string,
    opts: { threads: number; maxCacheBytes?: number },
  ) {
    this.n = surface();
    try {
      this.h = this.n.packIndexerNew(packPath, opts.maxCacheBytes === undefined ? { threads: opts.threads } : { threads: opts.threads, maxCacheBytes: opts.maxCacheBytes });
    } catch (e) {
      throw typed(e);
    }
  }

  write(chunk: Buffer): number {
    try {
      return this.n.packIndexerWrite(this.h, chunk);
    } catch (e) {
      throw typed(e);
    }
  }

  progress(): IndexProgress {
    return this.n.packIndexerProgress(this.h);
  }

  async resolve(): Promise<{ missing: string[] }> {
    try {
      return await this.n.packIndexerResolve(this.h);
    } catch (e) {
      throw typed(e);
    }
  }

  addBase(oid: string, type: ObjectType, data: Buffer): void {
    try {
      this.n.packIndexerAddBase(this.h, oid, typeCode(type), data);
    } catch (e) {
      throw typed(e);
    }
  }

  async finish(opts: { idxPath: string; revPath: string | null; fixThin: boolean }): Promise<IndexResult> {
    try {
      const r = await this.n.packIndexerFinish(this.h, opts);
      this.done = true;
      return result(this.packPath, opts.idxPath, opts.revPath, r);
    } catch (e) {
      throw typed(e);
    }
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    // The handle's thread stops when the handle is collected; the partial pack goes now.
    rmSync(this.packPath, { force: true });
  }
}

/** Indexes a pack already on disk with the addon. */
export async function nativeIndexFile(packPath: string, opts: { threads: number; idxPath: string; revPath: string | null }): Promise<IndexResult> {
  const n = surface();
  try {
    return result(packPath, opts.idxPath, opts.revPath, await n.indexPackFile(packPath, opts));
  } catch (e) {
    throw typed(e);
  }
}
