// The one boundary to mpgit's Rust core. The core is chosen and loaded once, here: the N-API
// addon when it loads, else the same core compiled to WebAssembly (./wasm*.ts: the indexer,
// the object database, checkout, the connectivity check), else nothing
// runs (a fatal error naming why each failed: mpgit has no TypeScript core; its SHA-1 would
// lose collision detection). MPGIT_CORE=native|wasm forces one (one that cannot load is an
// error). Consumers (net/socket, the pack indexer, the object database, checkout, the
// connectivity check) take their area from `core` and pass the core's errors through
// `coreError`, the one place where the codes the core throws become mpgit's typed errors.

import { MissingBaseError, MpgitError, PackError } from '../errors.js';
import { loadNative, nativePath } from './native.js';
import type { Core, CoreKind } from './types.js';
import { wasmModule, wasmPath } from './wasm.js';
import { wasmIndexer } from './wasm-indexer.js';
import { wasmOdb } from './wasm-odb.js';

export type * from './types.js';
export { SHA1_BACKENDS } from './types.js';

const KINDS: readonly CoreKind[] = ['native', 'wasm'];
const NO_TS_CORE = 'the TypeScript core is gone (it computed SHA-1 without collision detection): use MPGIT_CORE=wasm for the WebAssembly core';

/** The core MPGIT_CORE asks for, or null to take the first that loads. */
function forced(): CoreKind | null {
  const v = process.env.MPGIT_CORE;
  if (v === 'js') throw new MpgitError('MPGIT_CORE', `MPGIT_CORE=js: ${NO_TS_CORE}`, 'set MPGIT_CORE=wasm, or unset MPGIT_CORE to take the first core that loads');
  if (process.env.MPGIT_NO_NATIVE) throw new MpgitError('MPGIT_CORE', `MPGIT_NO_NATIVE is set: ${NO_TS_CORE}`, 'unset MPGIT_NO_NATIVE; set MPGIT_CORE=wasm to run without the native addon');
  if (!v) return null;
  if (!(KINDS as readonly string[]).includes(v)) throw new MpgitError('MPGIT_CORE', `MPGIT_CORE="${v}" is no core: use one of ${KINDS.join(', ')}`, 'unset MPGIT_CORE to take the first core that loads');
  return v as CoreKind;
}

function loadWasm(): Core | string {
  const m = wasmModule();
  if ('error' in m) return m.error;
  const { odb, checkout, connectivity } = wasmOdb(m.module);
  return { kind: 'wasm', path: wasmPath, loadError: null, net: null, indexer: wasmIndexer(m.module), odb, checkout, connectivity, info: null };
}

/** Why the native addon was passed over (for `mpgit version`), when the core is wasm. */
let nativeSkipped: string | null = null;

function choose(): Core {
  const want = forced();
  if (want === 'wasm') nativeSkipped = 'not tried: MPGIT_CORE=wasm';
  else {
    const n = loadNative();
    if (n.core) return n.core;
    nativeSkipped = n.error;
    if (want === 'native') throw new MpgitError('MPGIT_CORE', `MPGIT_CORE=native, but the native core cannot load: ${n.error}`, 'install the platform package (npm i without --omit=optional), or unset MPGIT_CORE');
  }
  const w = loadWasm();
  if (typeof w !== 'string') return w;
  if (want === 'wasm') throw new MpgitError('MPGIT_CORE', `MPGIT_CORE=wasm, but the WebAssembly core cannot load: ${w}`, 'reinstall mpgit (or `npm run build:wasm` in a checkout), or unset MPGIT_CORE');
  throw new MpgitError('MPGIT_NO_CORE', `mpgit needs its compiled core: the native addon did not load (${nativeSkipped}) nor the WebAssembly core (${w})`, 'reinstall mpgit (`npm i -g mpgit`; in a checkout: `npm run build`)');
}

export const core: Core = choose();
export { nativePath };

/** Why this core is the one in use, in a few words (for `mpgit version`). */
export function coreReason(): string {
  if (process.env.MPGIT_CORE) return `forced by MPGIT_CORE=${process.env.MPGIT_CORE}`;
  if (core.kind === 'native') return 'the native addon loaded';
  return `the native addon did not load (${nativeSkipped})`;
}

/**
 * The one stderr line a command prints when the native core should have loaded and did not
 * (null when it loaded, or when MPGIT_CORE=wasm chose the WebAssembly core on purpose).
 */
export function coreMissingWarning(): string | null {
  if (core.kind === 'native' || process.env.MPGIT_CORE) return null;
  return `warning: native addon not loaded (${nativeSkipped}): using the WebAssembly core, which is slower and has no MPTCP sockets (set MPGIT_CORE=wasm to choose it and silence this line)`;
}

/** Why the native addon is not in use. */
export function passedOverNative(): string | null {
  return core.kind === 'native' ? null : nativeSkipped;
}

/** Why MPTCP sockets are unavailable (they need the native addon), or null when they are there. */
export function netMissing(): string | null {
  if (core.net) return null;
  if (core.kind === 'native') return `MPTCP sockets need Linux (this system is ${process.platform})`;
  return `MPTCP sockets need the native addon, which is not loaded: ${passedOverNative()}`;
}

/** Why `area` is not available from the core (for the messages of features that need it). */
export function coreMissing(area: Exclude<keyof Core, 'kind' | 'path' | 'loadError'>): string | null {
  if (core[area]) return null;
  return core.loadError ?? `the ${core.kind} core has no ${area}`;
}

/** The core's errors carry `code`; give them the typed classes the rest of mpgit catches. */
export function coreError(e: unknown): unknown {
  if (e instanceof MpgitError || !(e instanceof Error)) return e;
  switch ((e as { code?: unknown }).code) {
    case 'MPGIT_BAD_PACK':
      return new PackError(e.message);
    case 'MPGIT_MISSING_BASE':
      return new MissingBaseError(e.message);
    case 'MPGIT_MISSING_OBJECTS':
      return new MpgitError('MPGIT_MISSING_OBJECTS', e.message, 'the repository is incomplete: fetch again, or run `git fsck`');
    case 'MPGIT_NOT_A_REPO':
      return new MpgitError('MPGIT_NOT_A_REPO', e.message, 'run this inside a git repository');
    case 'MPGIT_PACK_TOO_LARGE':
      return new MpgitError('MPGIT_PACK_TOO_LARGE', e.message, 'install the native package for this platform, or run with MPGIT_CORE=native where it loads');
    case 'MPGIT_LOCKED':
      return new MpgitError('MPGIT_LOCKED', e.message, 'if no other git process is running, remove the .lock file');
    default:
      return e;
  }
}

/** Runs a call into the core, mapping what it throws (sync) or rejects with (async). */
export function coreCall<T>(f: () => T): T {
  let r: T;
  try {
    r = f();
  } catch (e) {
    throw coreError(e);
  }
  if (r instanceof Promise) return r.catch((e: unknown) => Promise.reject(coreError(e))) as T;
  return r;
}
