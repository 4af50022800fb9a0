// The object database of a repository: loose objects, every pack under objects/pack (through
// its .idx v2) and the object directories named in objects/info/alternates, read by the core
// (crates/core/src/odb, native or WebAssembly) with a bounded delta base cache of its own.

import { MpgitError } from '../errors.js';
import { core, coreCall, coreMissing, type OdbCore, type OdbHandle } from '../core/index.js';
import { isOid } from '../oid.js';
import { typeName } from '../pack/object.js';
import type { CommitInfo, GitObject, ObjectDb as Db } from './odb-types.js';

export type { ObjectReader, ObjectType } from '../pack/object.js';
export type { CommitInfo, GitObject } from './odb-types.js';

export type ObjectDb = Db;

/** Opening an object database. */
export const ObjectDb = {
  async open(gitDir: string): Promise<ObjectDb> {
    return ObjectDb.openSync(gitDir);
  },

  openSync(gitDir: string): ObjectDb {
    if (!core.odb) throw new MpgitError('MPGIT_NO_CORE', `the ${core.kind} core cannot read objects: ${coreMissing('odb')}`, 'run `npm run build:native`, or reinstall mpgit');
    return new CoreObjectDb(gitDir, core.odb);
  },
};

class CoreObjectDb implements Db {
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
