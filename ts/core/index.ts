// The one boundary to mpgit's Rust core. The core is chosen and loaded once, here: the N-API
// addon when it loads, else none ('js': every consumer takes its TypeScript path). Consumers
// (net/socket, the pack indexer, the object database, checkout, the connectivity check) take
// their area from `core` and pass the core's errors through `coreError`, the one place where
// the codes the core throws become mpgit's typed errors.

import { MissingBaseError, MpgitError, PackError } from '../errors.js';
import { loadNative, nativePath } from './native.js';
import type { Core } from './types.js';

export type * from './types.js';
export { SHA1_BACKENDS } from './types.js';

function choose(): Core {
  const n = loadNative();
  if (n.core) return n.core;
  return { kind: 'js', path: nativePath, loadError: n.error, net: null, indexer: null, odb: null, checkout: null, connectivity: null, info: null };
}

export const core: Core = choose();

/**
 * The one stderr line a command prints when the compiled core should have loaded and did not
 * (null when it loaded, or when MPGIT_NO_NATIVE turned it off on purpose).
 */
export function coreMissingWarning(): string | null {
  if (core.kind !== 'js' || process.env.MPGIT_NO_NATIVE) return null;
  return `warning: native addon not loaded (${core.loadError}): using the TypeScript fallback, which is slower and computes SHA-1 without collision detection (set MPGIT_NO_NATIVE=1 to choose it and silence this line)`;
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
