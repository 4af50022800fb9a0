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
  // What the core runs on this CPU (crates/node/src/info.rs).
  coreInfo?(): NativeCoreInfo;
  sha1Hash?(data: Buffer, backend: string, objectBytes: number): string;
  [name: string]: unknown;
}

/** The SHA-1 backends of the collision-detecting hasher, portable first. */
export const SHA1_BACKENDS = ['portable', 'shani', 'shani-avx512'] as const;
export type Sha1Backend = (typeof SHA1_BACKENDS)[number];

export interface NativeCoreInfo {
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

/** napi-rs's name for this platform: linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc. */
export function platformName(): string {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return `linux-${arch}-${header?.glibcVersionRuntime ? 'gnu' : 'musl'}`;
  }
  return platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`;
}

const fileName = `mpgit.${platformName()}.node`;

/**
 * The directory of the installed platform package (`mpgit-<platform>`, an optional dependency
 * holding the addon and mpgit-pack-hook), or null when npm did not install one.
 */
export function platformPackageDir(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve(`mpgit-${platformName()}/package.json`));
  } catch {
    return null;
  }
}

/**
 * The file the addon is (or would be) loaded from: MPGIT_NATIVE_PATH names another build; a
 * build in the checkout (development) comes before the platform package (an install).
 */
function findNative(): string {
  if (process.env.MPGIT_NATIVE_PATH) return process.env.MPGIT_NATIVE_PATH;
  const local = join(root, fileName);
  if (existsSync(local)) return local;
  const pkg = platformPackageDir();
  return pkg ? join(pkg, fileName) : local;
}
export const nativePath: string = findNative();

function load(): { addon: NativeAddon | null; error: string | null } {
  if (process.env.MPGIT_NO_NATIVE) return { addon: null, error: 'disabled by MPGIT_NO_NATIVE' };
  const path = nativePath;
  if (!existsSync(path)) {
    const fix = process.env.MPGIT_NATIVE_PATH
      ? 'check MPGIT_NATIVE_PATH'
      : existsSync(join(root, 'Cargo.toml'))
        ? 'run `npm run build:native`'
        : `npm did not install mpgit-${platformName()} (no prebuilt package for this platform, or --omit=optional)`;
    return { addon: null, error: `${path} is missing: ${fix}` };
  }
  try {
    return { addon: createRequire(import.meta.url)(path) as NativeAddon, error: null };
  } catch (e) {
    return { addon: null, error: `${path} failed to load: ${(e as Error).message}` };
  }
}

const loaded = load();
export const native: NativeAddon | null = loaded.addon;
export const nativeLoadError: string | null = loaded.error;

/**
 * The one stderr line a command prints when the addon should have loaded and did not (null
 * when it loaded, or when MPGIT_NO_NATIVE turned it off on purpose).
 */
export function nativeMissingWarning(): string | null {
  if (native || process.env.MPGIT_NO_NATIVE) return null;
  return `warning: native addon not loaded (${nativeLoadError}): using the TypeScript fallback, which is slower and computes SHA-1 without collision detection (set MPGIT_NO_NATIVE=1 to choose it and silence this line)`;
}

/** The addon, or an error naming why it is missing (for features with no pure-JS path). */
export function requireNative(feature: string): NativeAddon {
  if (native) return native;
  throw Object.assign(new Error(`${feature} needs the native addon: ${nativeLoadError}`), { code: 'MPGIT_NO_NATIVE' });
}
