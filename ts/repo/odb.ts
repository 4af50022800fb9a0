// The object database of a repository: loose objects, every pack under objects/pack (through
// its .idx v2) and the object directories named in objects/info/alternates. Read by the Rust
// core (crates/core/src/odb) when the addon loads; by ./odb-js.ts otherwise.

import { MpgitError, PackError } from '../errors.js';
import { native, type NativeAddon, type OdbHandle } from '../native.js';
import { typeName, type ObjectReader } from '../pack/object.js';
import { JsObjectDb, type GitObject, type JsOdbOptions } from './odb-js.js';
import { parseCommit } from './objects.js';

export type { ObjectReader, ObjectType } from '../pack/object.js';
export type { GitObject } from './odb-js.js';

export interface CommitInfo {
  tree: string;
  parents: string[];
  /** Committer time, seconds since the epoch. */
  time: number;
}

type OdbSurface = Required<Pick<NativeAddon, 'odbOpen' | 'odbAddPack' | 'odbClose' | 'odbHas' | 'odbRead' | 'odbReadCommit'>>;

/** The addon's object database, or null (no addon, or one built without it). */
export function nativeOdb(): OdbSurface | null {
  const n = native;
  if (!n || typeof n.odbOpen !== 'function' || typeof n.odbReadCommit !== 'function') return null;
  return n as OdbSurface;
}

/** Native errors carry `code`; give the ones about objects the typed classes mpgit catches. */
export function typedOdbError(e: unknown): unknown {
  if (e instanceof MpgitError || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  if (code === 'MPGIT_BAD_PACK') return new PackError(e.message);
  if (code === 'MPGIT_MISSING_OBJECTS') return new MpgitError('MPGIT_MISSING_OBJECTS', e.message, 'the repository is incomplete: fetch again, or run `git fsck`');
  if (code === 'MPGIT_NOT_A_REPO') return new MpgitError('MPGIT_NOT_A_REPO', e.message, 'run this inside a git repository');
  if (code === 'MPGIT_LOCKED') return new MpgitError('MPGIT_LOCKED', e.message, 'if no other git process is running, remove the .lock file');
  return e;
}

function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw typedOdbError(e);
  }
}

export class ObjectDb implements ObjectReader {
  private closed = false;

  private constructor(
    readonly gitDir: string,
    private readonly n: OdbSurface | null,
    private readonly h: OdbHandle | null,
    private readonly js: JsObjectDb | null,
  ) {}

  static async open(gitDir: string): Promise<ObjectDb> {
    return ObjectDb.openSync(gitDir);
  }

  /**
   * `impl` defaults to native when the addon has the object database. The cache sizes apply to
   * the TypeScript reader (the native one keeps a bounded delta base cache of its own).
   */
  static openSync(gitDir: string, opts: { impl?: 'native' | 'js' } & JsOdbOptions = {}): ObjectDb {
    const n = opts.impl === 'js' ? null : nativeOdb();
    if (opts.impl === 'native' && !n) throw new MpgitError('MPGIT_NO_NATIVE', 'the native object database is not built', 'run `npm run build:native`');
    if (n) return new ObjectDb(gitDir, n, call(() => n.odbOpen(gitDir)), null);
    return new ObjectDb(gitDir, null, null, new JsObjectDb(gitDir, opts));
  }

  get impl(): 'native' | 'js' {
    return this.h ? 'native' : 'js';
  }

  /** The addon's handle (for native checkout and the connectivity check), or null. */
  get handle(): OdbHandle | null {
    return this.h;
  }

  /** Makes a pack written after opening visible (fetch adds its new pack this way). */
  addPack(packPath: string, idxPath: string): void {
    if (this.n) call(() => this.n!.odbAddPack(this.h!, packPath, idxPath));
    else this.js!.addPack(packPath, idxPath);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.n) this.n.odbClose(this.h!);
    else this.js!.close();
  }

  /** Lets go of cached pack windows and delta bases (the TypeScript reader's; reading goes on). */
  releaseCaches(): void {
    this.js?.releaseCaches();
  }

  async read(oid: string): Promise<GitObject | null> {
    return this.readSync(oid);
  }

  async has(oid: string): Promise<boolean> {
    return this.hasSync(oid);
  }

  hasSync(oid: string): boolean {
    if (!/^[0-9a-f]{40}$/.test(oid)) return false;
    if (this.n) return call(() => this.n!.odbHas(this.h!, oid));
    return this.js!.hasSync(oid);
  }

  readSync(oid: string): GitObject | null {
    if (!/^[0-9a-f]{40}$/.test(oid)) return null;
    if (this.n) {
      const o = call(() => this.n!.odbRead(this.h!, oid));
      return o ? { type: typeName(o.type), data: o.data } : null;
    }
    return this.js!.readSync(oid);
  }

  /** A commit's tree, parents and committer time; null when it is missing or not a commit. */
  readCommit(oid: string): CommitInfo | null {
    if (!/^[0-9a-f]{40}$/.test(oid)) return null;
    if (this.n) return call(() => this.n!.odbReadCommit(this.h!, oid));
    const o = this.js!.readSync(oid);
    return o && o.type === 'commit' ? parseCommit(o.data, oid) : null;
  }
}
