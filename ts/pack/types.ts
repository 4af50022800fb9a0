// What a pack indexer is: the interface ./native.ts fulfils over the core's indexer (native or
// WebAssembly) and the factory (./indexer.ts) hands out.

import type { ObjectType } from './object.js';

export interface IndexProgress {
  bytes: number;
  objectsTotal: number;
  objectsReceived: number;
  deltasTotal: number;
  deltasResolved: number;
}

export interface IndexResult {
  packPath: string;
  idxPath: string;
  revPath: string | null;
  packChecksum: string;
  objectCount: number;
  deltaCount: number;
  appendedBases: number;
}

export interface FinishOptions {
  idxPath: string;
  revPath: string | null;
  fixThin: boolean;
  /** zlib level of appended bases, -1..9 (default 1): the repository's, as git's (repo/compression.ts). */
  compressionLevel?: number;
}

export interface PackIndexer {
  /** Appends pack bytes; returns bytes queued but not yet parsed (pause input when large). */
  write(chunk: Buffer): number;
  progress(): IndexProgress;
  /** End of input: checks the trailer, resolves deltas; `missing` = REF_DELTA bases not in the pack. */
  resolve(): Promise<{ missing: string[] }>;
  /** For --fix-thin: a base object read from the repository. */
  addBase(oid: string, type: ObjectType, data: Buffer): void;
  finish(opts: FinishOptions): Promise<IndexResult>;
  /** Stop, remove the partial pack. */
  abort(): void;
}
