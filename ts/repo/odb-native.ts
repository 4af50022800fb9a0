// The object database read by the Rust core (crates/core/src/odb): packs through their .idx,
// loose objects, alternates, with a bounded delta base cache of its own.

import { coreCall, type OdbCore, type OdbHandle } from '../core/index.js';
import { isOid } from '../oid.js';
import { typeName } from '../pack/object.js';
import type { CommitInfo, GitObject, ObjectDb } from './odb-types.js';

export class NativeObjectDb implements ObjectDb {
  readonly impl = 'native' as const;
  readonly handle: OdbHandle;
  private closed = false;

  constructor(
    readonly gitDir: string,
    private readonly n: OdbCore,
  ) {
    this.handle = coreCall(() => n.odbOpen(gitDir));
  }

  addPack(packPath: string, idxPath: string): void {
    coreCall(() => this.n.odbAddPack(this.handle, packPath, idxPath));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.n.odbClose(this.handle);
  }

  /** The core keeps its caches bounded by itself. */
  releaseCaches(): void {}

  async read(oid: string): Promise<GitObject | null> {
    return this.readSync(oid);
  }

  async has(oid: string): Promise<boolean> {
    return this.hasSync(oid);
  }

  hasSync(oid: string): boolean {
    if (!isOid(oid)) return false;
    return coreCall(() => this.n.odbHas(this.handle, oid));
  }

  readSync(oid: string): GitObject | null {
    if (!isOid(oid)) return null;
    const o = coreCall(() => this.n.odbRead(this.handle, oid));
    return o ? { type: typeName(o.type), data: o.data } : null;
  }

  readCommit(oid: string): CommitInfo | null {
    if (!isOid(oid)) return null;
    return coreCall(() => this.n.odbReadCommit(this.handle, oid));
  }
}
