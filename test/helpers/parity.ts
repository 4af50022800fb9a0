// Side-by-side runs of git and mpgit: the same command line against the same server, and what
// a user would compare afterwards (refs, config, HEAD, the work tree, exit code, first lines).

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { git, mpgit, run, type RunOptions, type RunResult } from './proc.js';

/** The repository's state as git shows it: refs with targets, local config, HEAD, files. */
export async function repoState(dir: string): Promise<string> {
  const gitDir = existsSync(join(dir, '.git')) ? join(dir, '.git') : dir;
  const g = (args: string[]) => git(['--git-dir', gitDir, ...args]);
  const refs = (await g(['for-each-ref', '--format=%(refname) %(objectname) %(symref)'])).stdout;
  const config = (await g(['config', '--local', '--list'])).stdout;
  const head = (await run('git', ['--git-dir', gitDir, 'symbolic-ref', '-q', 'HEAD'])).stdout || (await g(['rev-parse', 'HEAD'])).stdout;
  const files = gitDir === dir ? '(bare)' : readdirSync(dir).sort().join(' ');
  const index = existsSync(join(gitDir, 'index')) ? 'index' : 'no index';
  return `refs:\n${refs}config:\n${config}HEAD: ${head}files: ${files}\n${index}\n`;
}

/** Runs `git <args>` and `mpgit <args>` (args may name the target: %T is replaced by dir + suffix). */
export async function both(args: string[], opts: RunOptions & { dir: string }): Promise<{ git: RunResult; mpgit: RunResult }> {
  const sub = (who: string) => args.map((a) => a.replace('%T', join(opts.dir, who)));
  const [g, m] = [await run('git', sub('git'), opts), await mpgit(sub('mpgit'), opts)];
  return { git: g, mpgit: m };
}

/** stderr's first line, and its first fatal/error line. */
export function firstLines(r: RunResult): { first: string; fatal: string } {
  const lines = r.stderr.split('\n');
  return { first: lines[0] ?? '', fatal: lines.find((l) => /^(fatal|error):/.test(l)) ?? '' };
}
