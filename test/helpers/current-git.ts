// The current git peer (v2.55.0-618, with bundle lists, the v2 bundle-uri command and the 2026
// packfile-URI fixes), built from the shared peers directory by its build-git.sh, which caches
// the build per machine and prints the bin directory. Tests use it beside Debian's git 2.39 for
// what 2.39 lacks; where it cannot be found or built the test fails, saying why.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, runOk } from './proc.js';

let bin: Promise<string> | null = null;

function peersDir(): string {
  const candidates = [process.env.MPGIT_PEERS_DIR, resolve(ROOT, '..', 'shared', 'peers'), resolve(ROOT, '..', '..', 'shared', 'peers')];
  const found = candidates.find((d): d is string => !!d && existsSync(join(d, 'build-git.sh')));
  if (!found) throw new Error(`the current git peer's build-git.sh is not in ${candidates.filter(Boolean).join(' or ')}: set MPGIT_PEERS_DIR`);
  return found;
}

/** The bin directory of the current git (built on first use; about 1-4 minutes on 2 cores). */
export function currentGitBin(): Promise<string> {
  bin ??= runOk('bash', [join(peersDir(), 'build-git.sh')], { timeoutMs: 15 * 60_000 }).then((r) => r.stdout.trim().split('\n').pop()!);
  return bin;
}

/** The current git's `git` binary. */
export async function currentGit(): Promise<string> {
  return join(await currentGitBin(), 'git');
}
