// The object database of a repository: loose objects, every pack under objects/pack (through
// its .idx v2) and the object directories named in objects/info/alternates. Read by the Rust
// core (./odb-native.ts) when the core has it; by ./odb-js.ts otherwise.

import { MpgitError } from '../errors.js';
import { core, coreMissing } from '../core/index.js';
import { JsObjectDb, type JsOdbOptions } from './odb-js.js';
import { NativeObjectDb } from './odb-native.js';
import type { ObjectDb as Db } from './odb-types.js';

export type { ObjectReader, ObjectType } from '../pack/object.js';
export type { CommitInfo, GitObject } from './odb-types.js';

export type ObjectDb = Db;

/** Opening an object database: the one place that picks its implementation. */
export const ObjectDb = {
  async open(gitDir: string): Promise<ObjectDb> {
    return ObjectDb.openSync(gitDir);
  },

  /**
   * `impl` defaults to native when the core has the object database. The cache sizes apply to
   * the TypeScript reader (the native one keeps a bounded delta base cache of its own).
   */
  openSync(gitDir: string, opts: { impl?: 'native' | 'js' } & JsOdbOptions = {}): ObjectDb {
    const n = opts.impl === 'js' ? null : core.odb;
    if (opts.impl === 'native' && !n) throw new MpgitError('MPGIT_NO_NATIVE', `the native object database is not built: ${coreMissing('odb')}`, 'run `npm run build:native`');
    return n ? new NativeObjectDb(gitDir, n) : new JsObjectDb(gitDir, opts);
  },
};
