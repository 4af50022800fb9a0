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
  [name: string]: unknown;
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
