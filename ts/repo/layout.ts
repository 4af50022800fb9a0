// Where a repository lives and what a new one is made of: HEAD, config, objects/, refs/.

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, isAbsolute } from 'node:path';
import { MpgitError } from '../errors.js';

export interface RepoPaths {
  gitDir: string;
  /** null for a bare repository. */
  workTree: string | null;
}

function looksLikeGitDir(dir: string): boolean {
  return existsSync(join(dir, 'HEAD')) && existsSync(join(dir, 'objects')) && existsSync(join(dir, 'refs'));
}

/** The repository containing `cwd` (GIT_DIR when set), as git discovers it. */
export function findRepository(cwd: string): RepoPaths {
  if (process.env.GIT_DIR) {
    const gitDir = resolve(cwd, process.env.GIT_DIR);
    if (!looksLikeGitDir(gitDir)) throw new MpgitError('MPGIT_NOT_A_REPO', `GIT_DIR=${gitDir} is not a git repository`, 'unset GIT_DIR or point it at a repository');
    return { gitDir, workTree: process.env.GIT_WORK_TREE ? resolve(cwd, process.env.GIT_WORK_TREE) : cwd };
  }
  let dir = resolve(cwd);
  for (;;) {
    const dotGit = join(dir, '.git');
    const st = statSync(dotGit, { throwIfNoEntry: false });
    if (st?.isDirectory() && looksLikeGitDir(dotGit)) return { gitDir: dotGit, workTree: dir };
    if (st?.isFile()) {
      // A gitfile ("gitdir: <path>"), as worktrees and submodules use.
      const m = /^gitdir: (.+)$/m.exec(readFileSync(dotGit, 'utf8'));
      if (m) {
        const target = isAbsolute(m[1]!.trim()) ? m[1]!.trim() : join(dir, m[1]!.trim());
        if (looksLikeGitDir(target)) return { gitDir: target, workTree: dir };
      }
    }
    if (looksLikeGitDir(dir) && !existsSync(join(dir, '.git'))) return { gitDir: dir, workTree: null };
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new MpgitError('MPGIT_NOT_A_REPO', 'not a git repository (or any of the parent directories): .git', `run this inside a repository (or set GIT_DIR), or clone one first (looked from ${cwd} up)`);
}

/** Creates an empty repository skeleton in `gitDir` with HEAD pointing to `headRef`. */
export function initRepository(gitDir: string, config: string, headRef: string): void {
  for (const d of ['objects/pack', 'objects/info', 'refs/heads', 'refs/tags', 'info']) mkdirSync(join(gitDir, d), { recursive: true });
  writeFileSync(join(gitDir, 'HEAD'), `ref: ${headRef}\n`);
  writeFileSync(join(gitDir, 'config'), config);
  writeFileSync(join(gitDir, 'description'), "Unnamed repository; edit this file 'description' to name the repository.\n");
  writeFileSync(join(gitDir, 'info', 'exclude'), '# git ls-files --others --exclude-from=.git/info/exclude\n');
}
