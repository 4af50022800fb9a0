// What an object database is: the interface ./odb.ts hands out (read by the core).

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
  /** The core's handle (for its checkout and connectivity check). */
  readonly handle: OdbHandle;
  read(oid: string): Promise<GitObject | null>;
  has(oid: string): Promise<boolean>;
  readSync(oid: string): GitObject | null;
  hasSync(oid: string): boolean;
  /** A commit's tree, parents and committer time; null when it is missing or not a commit. */
  readCommit(oid: string): CommitInfo | null;
  /** Makes a pack written after opening visible (fetch adds its new pack this way). */
  addPack(packPath: string, idxPath: string): void;
  /** Lets go of the packs now; closing twice is harmless. */
  close(): void;
}
