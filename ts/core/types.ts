// The Rust core as TypeScript sees it, whichever build provides it: one interface per area
// (sockets, pack indexer, object database, checkout, connectivity check). An implementation
// offers an area whole or not at all (null), so a consumer asks once, not function by function.
// The N-API addon (./native.ts) offers every area; the WebAssembly build of the same crates
// (./wasm.ts) offers the indexer, the object database, checkout and the connectivity check
// (./wasm-odb.ts: its file operations are node's, ./wasm-host.ts), not sockets nor info.

/** Which core is in use (mpgit does not run without one: ./index.ts). */
export type CoreKind = 'native' | 'wasm';

/** An indexer's state inside the core (an N-API external). */
export type PackHandle = { readonly __brand: 'PackHandle' };
/** An open object database inside the core. */
export type OdbHandle = { readonly __brand: 'OdbHandle' };
/** A checkout set up by checkoutNew. */
export type CheckoutHandle = { readonly __brand: 'CheckoutHandle' };

export interface MadeSocket {
  fd: number;
  mptcp: boolean;
  /** errno name with which the kernel refused MPTCP, when we fell back to TCP */
  fallback: string | null;
}

export interface ConnInfo {
  mptcp: boolean;
  subflows: number;
  subflowsUsed: number;
  bytesSent: number;
  bytesReceived: number;
  /** Acknowledged by the peer (absent from addons built before it was added). */
  bytesAcked?: number;
  perSubflow: { bytesSent: number; bytesReceived: number }[];
}

/** MPTCP/TCP sockets and their counters (crates/node/src/net.rs). */
export interface NetCore {
  listenSocket(ip: string, port: number, mptcp: boolean, backlog?: number): MadeSocket;
  connectSocket(ip: string, port: number, mptcp: boolean, timeoutMs: number): Promise<MadeSocket>;
  connInfo(fd: number): ConnInfo;
  kernelMptcp(): string | null;
}

export interface CoreIndexProgress {
  bytes: number;
  objectsTotal: number;
  objectsReceived: number;
  deltasTotal: number;
  deltasResolved: number;
}

export interface CoreIndexResult {
  packChecksum: string;
  objectCount: number;
  deltaCount: number;
  appendedBases: number;
}

/** The pack indexer (crates/node/src/pack.rs; docs/ARCHITECTURE.md has the contract). */
export interface IndexerCore {
  packIndexerNew(packPath: string, opts: { threads: number; maxCacheBytes?: number }): PackHandle;
  packIndexerWrite(h: PackHandle, chunk: Buffer): number;
  packIndexerProgress(h: PackHandle): CoreIndexProgress;
  packIndexerResolve(h: PackHandle): Promise<{ missing: string[] }>;
  packIndexerAddBase(h: PackHandle, oid: string, type: number, data: Buffer): void;
  packIndexerFinish(h: PackHandle, opts: { idxPath: string; revPath: string | null; fixThin: boolean; compressionLevel?: number }): Promise<CoreIndexResult>;
  indexPackFile(packPath: string, opts: { threads: number; idxPath: string; revPath: string | null; maxCacheBytes?: number }): Promise<CoreIndexResult>;
}

/** Reading a repository's objects (crates/node/src/odb.rs; crates/wasm/src/odb_abi.rs). */
export interface OdbCore {
  odbOpen(gitDir: string, opts?: { cacheBytes?: number }): OdbHandle;
  odbAddPack(h: OdbHandle, packPath: string, idxPath: string): void;
  odbClose(h: OdbHandle): void;
  odbHas(h: OdbHandle, oid: string): boolean;
  odbRead(h: OdbHandle, oid: string): { type: number; data: Buffer } | null;
  odbReadCommit(h: OdbHandle, oid: string): { tree: string; parents: string[]; time: number } | null;
}

/** A tree into an empty work tree, and its index (the wasm core: on one thread, `threads` aside, in steps). */
export interface CheckoutCore {
  checkoutNew(h: OdbHandle, treeOrCommit: string, workTree: string, opts: { threads: number; indexPath: string | null }): CheckoutHandle;
  checkoutRun(c: CheckoutHandle): Promise<{ entries: number; directories: number; bytes: number }>;
  checkoutProgress(c: CheckoutHandle): { done: number; total: number };
}

/** git's check_connected, walked in the core (the wasm core walks synchronously, inside the call). */
export interface ConnectivityCore {
  connectivityCheck(h: OdbHandle, tips: string[], shallow: string[], before: OdbHandle | null): Promise<{ objects: number }>;
}

/** The SHA-1 backends of the collision-detecting hasher, portable first. */
export const SHA1_BACKENDS = ['portable', 'shani', 'shani-avx512'] as const;
export type Sha1Backend = (typeof SHA1_BACKENDS)[number];

export interface CoreInfo {
  sha1: {
    /** Null when MPGIT_SHA1_BACKEND asks for one that cannot run (`error` says why). */
    backend: Sha1Backend | null;
    forced: boolean;
    error: string | null;
    sampleBytes: number | null;
    backends: { name: Sha1Backend; supported: boolean; missingFlags: string[]; mbPerSec: number | null }[];
  };
  /** The CPU flags the core sees (MPGIT_HIDE_CPU_FLAGS hides some). */
  cpuFlags: Record<'sha_ni' | 'ssse3' | 'sse4_1' | 'avx2' | 'avx512f', boolean>;
  inflate: { whole: string; streaming: string };
}

/** What the core runs on this CPU (crates/node/src/info.rs). */
export interface InfoCore {
  coreInfo(): CoreInfo;
  sha1Hash(data: Buffer, backend: string, objectBytes: number): string;
}

export interface Core {
  readonly kind: CoreKind;
  /** Where the compiled core is (or would be) loaded from. */
  readonly path: string;
  /** Why an area is missing (an addon older than this code); null when all is there. */
  readonly loadError: string | null;
  readonly net: NetCore | null;
  readonly indexer: IndexerCore | null;
  readonly odb: OdbCore | null;
  readonly checkout: CheckoutCore | null;
  readonly connectivity: ConnectivityCore | null;
  readonly info: InfoCore | null;
}
