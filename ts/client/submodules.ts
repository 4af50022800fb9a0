// clone --recurse-submodules: git:// submodules are cloned by mpgit into the superproject's
// .git/modules/<name>, where `git submodule update` finds and adopts them (it connects the
// work tree and checks out the recorded commit); submodules at other URLs git clones itself.
// Nested submodules get the same treatment, level by level.

import { existsSync, mkdtempSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MpgitError } from '../errors.js';
import { runGitSync } from '../git.js';
import { readConfig } from '../config/read.js';
import { rewriteUrl } from '../config/insteadof.js';
import { findRepository } from '../repo/layout.js';
import { clone } from './clone.js';

export interface SubmoduleOptions {
  mptcp?: boolean;
  quiet: boolean;
  say: ((line: string) => void) | null;
}

/** Bounded output of the small git queries made here. */
const MAX_QUERY_BYTES = 4 << 20;

function git(workTree: string, args: string[], inherit = false): string {
  const r = runGitSync(workTree, args, { maxOutput: MAX_QUERY_BYTES, inherit });
  if (r.error) throw new MpgitError('MPGIT_GIT', `--recurse-submodules needs git: ${r.error.message}`, 'install git, or clone without --recurse-submodules');
  if (r.status !== 0) {
    const said = inherit ? `exit ${r.status}` : r.stderr.trim();
    throw new MpgitError('MPGIT_SUBMODULE', `git ${args.join(' ')} failed in ${workTree}: ${said}`, 'the clone itself is complete; finish with `git submodule update --init --recursive`');
  }
  return inherit ? '' : r.stdout.toString();
}

export async function cloneSubmodules(workTree: string, opts: SubmoduleOptions): Promise<void> {
  if (!existsSync(join(workTree, '.gitmodules'))) return;
  const q = opts.quiet ? ['--quiet'] : [];
  git(workTree, ['submodule', 'init', ...q], true);
  const { gitDir } = findRepository(workTree);
  const config = readConfig(gitDir).config;
  const paths = new Map<string, string>();
  const listed = git(workTree, ['config', '-z', '--file', '.gitmodules', '--get-regexp', '^submodule\\..*\\.path$']);
  for (const rec of listed.split('\0').filter(Boolean)) {
    const nl = rec.indexOf('\n');
    paths.set(rec.slice('submodule.'.length, nl - '.path'.length), rec.slice(nl + 1));
  }
  for (const [name, path] of paths) {
    const raw = config.get(`submodule.${name}.url`);
    if (!raw || config.getBool(`submodule.${name}.active`) === false) continue;
    const url = rewriteUrl(raw, config);
    const modDir = join(gitDir, 'modules', name);
    if (!url.startsWith('git://') || existsSync(modDir) || existsSync(join(workTree, path, '.git'))) continue;
    // Cloned without checkout beside the modules dir, then its git dir moved there.
    mkdirSync(dirname(modDir), { recursive: true });
    const tmp = mkdtempSync(join(dirname(modDir), '.mpgit-submodule-'));
    try {
      opts.say?.(`Cloning into '${join(workTree, path)}'...`);
      await clone({ url, dir: join(tmp, 'wt'), checkout: false, mptcp: opts.mptcp, say: null, verbose: null, progress: null });
      renameSync(join(tmp, 'wt', '.git'), modDir);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  // git adopts the git dirs made above, clones the rest, and checks out the recorded commits.
  git(workTree, ['submodule', 'update', ...q], true);
  for (const path of paths.values()) await cloneSubmodules(join(workTree, path), opts);
}
