// Where the pack-objects hook program is (crates/pack-hook, built by `npm run build:native`),
// and the `git -c` arguments that make upload-pack run it. git honours
// uploadpack.packObjectsHook only from protected config; the command line is protected.

import { accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { platformPackageDir } from '../core/platform.js';

const NAME = 'mpgit-pack-hook';

/**
 * Why the hook program cannot exist on this platform, or null on Linux: it is Linux-only
 * (sendfile(2) from the cache file to the client's socket, /proc), so the platform packages
 * for darwin and win32 do not carry it (crates/pack-hook, .github/workflows/release.yml).
 */
export function packHookUnsupported(platform: NodeJS.Platform = process.platform): string | null {
  return platform === 'linux' ? null : `the pack cache needs Linux (its hook program, mpgit-pack-hook, sends cached packs with sendfile(2)); this is ${platform}`;
}

/** The hook program's path, or null when it is not built (then the cache is off, said once). */
export function findPackHook(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/cache/ or ts/cache/ -> the package root.
  const root = resolve(here, '..', '..');
  const pkg = platformPackageDir();
  // The checkout's build, else the installed platform package's copy.
  const candidates = [process.env.MPGIT_PACK_HOOK, join(root, 'target', 'release', NAME), join(root, NAME), pkg && join(pkg, NAME)];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

/** A word for git's shell (the hook is run through `sh -c`). */
function shellWord(s: string): string {
  return /^[A-Za-z0-9/._+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `git -c` arguments that put the hook in front of upload-pack's pack-objects. */
export function hookConfigArgs(hook: string): string[] {
  return ['-c', `uploadpack.packObjectsHook=${shellWord(hook)}`];
}
