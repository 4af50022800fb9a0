// What an object database is, apart from which one: the interface both implementations
// (./odb-native.ts, the Rust core's; ./odb-js.ts, TypeScript) fulfil and ./odb.ts hands out.

import type { OdbHandle } from '../core/index.js';
import type { ObjectReader, ObjectType } from '../pack/object.js';

export interface GitObject {
  type: ObjectType;
  data: Buffer;
}

export interface CommitInfo {
  tree: string;
  parents: string[];
  /** Committer time, seconds since the epoch. */
  time: number;
}

export interface ObjectDb extends ObjectReader {
  readonly gitDir: string;
  /** Which implementation reads the objects. */
  readonly impl: 'native' | 'js';
  /** The core's handle (for its checkout and connectivity check), or null for the TypeScript reader. */
  readonly handle: OdbHandle | null;
  read(oid: string): Promise<GitObject | null>;
  has(oid: string): Promise<boolean>;
  readSync(oid: string): GitObject | null;
  hasSync(oid: string): boolean;
  /** A commit's tree, parents and committer time; null when it is missing or not a commit. */
  readCommit(oid: string): CommitInfo | null;
  /** Makes a pack written after opening visible (fetch adds its new pack this way). */
  addPack(packPath: string, idxPath: string): void;
  /** Lets go of cached pack windows and delta bases (reading goes on). */
  releaseCaches(): void;
  /** Lets go of the packs now; closing twice is harmless. */
  close(): void;
}
