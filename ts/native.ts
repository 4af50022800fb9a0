// The Rust addon, loaded once. Everything that needs it goes through here; where it cannot be
// loaded, `native` is null and `nativeLoadError` says why (callers take their pure-JS path or
// fail with that reason).

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

export interface NativeAddon {
  listenSocket(ip: string, port: number, mptcp: boolean, backlog?: number): MadeSocket;
  connectSocket(ip: string, port: number, mptcp: boolean, timeoutMs: number): Promise<MadeSocket>;
  connInfo(fd: number): ConnInfo;
  kernelMptcp(): string | null;
  // The pack indexer (crates/node/src/pack.rs); optional until the addon is built with it.
  packIndexerNew?(packPath: string, opts: { threads: number; maxCacheBytes?: number }): PackHandle;
  packIndexerWrite?(h: PackHandle, chunk: Buffer): number;
  packIndexerProgress?(h: PackHandle): NativeIndexProgress;
  packIndexerResolve?(h: PackHandle): Promise<{ missing: string[] }>;
  packIndexerAddBase?(h: PackHandle, oid: string, type: number, data: Buffer): void;
  packIndexerFinish?(h: PackHandle, opts: { idxPath: string; revPath: string | null; fixThin: boolean }): Promise<NativeIndexResult>;
  indexPackFile?(packPath: string, opts: { threads: number; idxPath: string; revPath: string | null }): Promise<NativeIndexResult>;
  // The object database, checkout and connectivity check (crates/node/src/odb.rs).
  odbOpen?(gitDir: string, opts?: { cacheBytes?: number }): OdbHandle;
  odbAddPack?(h: OdbHandle, packPath: string, idxPath: string): void;
  odbClose?(h: OdbHandle): void;
  odbHas?(h: OdbHandle, oid: string): boolean;
  odbRead?(h: OdbHandle, oid: string): { type: number; data: Buffer } | null;
  odbReadCommit?(h: OdbHandle, oid: string): { tree: string; parents: string[]; time: number } | null;
  checkoutNew?(h: OdbHandle, treeOrCommit: string, workTree: string, opts: { threads: number; indexPath: string | null }): CheckoutHandle;
  checkoutRun?(c: CheckoutHandle): Promise<{ entries: number; directories: number; bytes: number }>;
  checkoutProgress?(c: CheckoutHandle): { done: number; total: number };
  connectivityCheck?(h: OdbHandle, tips: string[], shallow: string[], before: OdbHandle | null): Promise<{ objects: number }>;
  [name: string]: unknown;
}

/** An indexer's state inside the addon (an N-API external). */
export type PackHandle = { readonly __brand: 'PackHandle' };
/** An open object database inside the addon. */
export type OdbHandle = { readonly __brand: 'OdbHandle' };
/** A checkout set up by checkoutNew. */
export type CheckoutHandle = { readonly __brand: 'CheckoutHandle' };

export interface NativeIndexProgress {
  bytes: number;
  objectsTotal: number;
  objectsReceived: number;
  deltasTotal: number;
  deltasResolved: number;
}

export interface NativeIndexResult {
  packChecksum: string;
  objectCount: number;
  deltaCount: number;
  appendedBases: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const fileName = `mpgit.${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : ''}.node`;

function load(): { addon: NativeAddon | null; error: string | null } {
  if (process.env.MPGIT_NO_NATIVE) return { addon: null, error: 'disabled by MPGIT_NO_NATIVE' };
  const path = join(root, fileName);
  if (!existsSync(path)) return { addon: null, error: `${path} is missing: run \`npm run build:native\`` };
  try {
    return { addon: createRequire(import.meta.url)(path) as NativeAddon, error: null };
  } catch (e) {
    return { addon: null, error: `${path} failed to load: ${(e as Error).message}` };
  }
}

const loaded = load();
export const native: NativeAddon | null = loaded.addon;
export const nativeLoadError: string | null = loaded.error;

/** The addon, or an error naming why it is missing (for features with no pure-JS path). */
export function requireNative(feature: string): NativeAddon {
  if (native) return native;
  throw Object.assign(new Error(`${feature} needs the native addon: ${nativeLoadError}`), { code: 'MPGIT_NO_NATIVE' });
}
