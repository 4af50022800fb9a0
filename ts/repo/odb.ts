// The object database of a repository: loose objects, every pack under objects/pack (through
// its .idx v2) and the object directories named in objects/info/alternates. Read by the Rust
// core (./odb-native.ts) when the core has it; under the WebAssembly core, by ./odb-js.ts with
// that core's inflate and delta application.

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

  /** The cache sizes apply to the TypeScript reader (the core's keeps a bounded delta base cache of its own). */
  openSync(gitDir: string, opts: JsOdbOptions = {}): ObjectDb {
    if (core.odb) return new NativeObjectDb(gitDir, core.odb);
    if (!core.codec) throw new MpgitError('MPGIT_NO_CORE', `the ${core.kind} core cannot read objects: ${coreMissing('odb')}`, 'run `npm run build:native`, or reinstall mpgit');
    return new JsObjectDb(gitDir, core.codec, opts);
  },
};
