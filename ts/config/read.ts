// The one place mpgit reads git configuration: `git config --list --show-scope -z` when git is
// installed (every scope, includes and conditions exactly as git reads them), else the files
// read by mpgit's own parser (ts/config/files.ts), which says once what it leaves out.

import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { MpgitError } from '../errors.js';
import { runGitSync, type GitSyncResult } from '../git.js';
import { GitConfig } from '../repo/config.js';
import { readConfigFiles, type Scope, type ScopedEntry } from './files.js';

/** Longest `git config --list` output we take (a config beyond this is refused). */
const MAX_CONFIG_BYTES = 32 << 20;

export interface ReadConfig {
  entries: ScopedEntry[];
  config: GitConfig;
  /** Who read it: git itself, or mpgit's parser (git missing, or MPGIT_CONFIG_PARSER=1). */
  reader: 'git' | 'parser';
}

let warned = false;

/** The configuration of the repository at `gitDir` (null: outside any, as for a clone). */
export function readConfig(gitDir: string | null, env: NodeJS.ProcessEnv = process.env, warn: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)): ReadConfig {
  if (env.MPGIT_CONFIG_PARSER !== '1') {
    const entries = readWithGit(gitDir, env);
    if (entries) return { entries, config: GitConfig.fromEntries(entries), reader: 'git' };
    if (!warned) {
      warned = true;
      warn('warning: git is not installed: mpgit reads the git configuration files itself (includeIf "hasconfig:" conditions are not evaluated)');
    }
  }
  const entries = readConfigFiles(gitDir, env);
  return { entries, config: GitConfig.fromEntries(entries), reader: 'parser' };
}

/** The entries as git lists them, or null when git is not installed. */
function readWithGit(gitDir: string | null, env: NodeJS.ProcessEnv): ScopedEntry[] | null {
  // Outside any repository (a clone): git runs in an empty directory it may not look above,
  // so that it reads the system, global and command scopes only.
  const nowhere = gitDir ? null : mkdtempSync(join(tmpdir(), 'mpgit-config-'));
  const runEnv = { ...env };
  if (gitDir) runEnv.GIT_DIR = gitDir;
  else {
    delete runEnv.GIT_DIR;
    delete runEnv.GIT_WORK_TREE;
    runEnv.GIT_CEILING_DIRECTORIES = dirname(nowhere!);
  }
  let r: GitSyncResult;
  try {
    r = runGitSync(nowhere ?? gitDir!, ['config', '--list', '--show-scope', '-z'], { env: runEnv, maxOutput: MAX_CONFIG_BYTES });
  } finally {
    if (nowhere) rmdirSync(nowhere);
  }
  const code = r.error?.code;
  if (code === 'ENOENT') return null;
  if (code === 'ENOBUFS') throw new MpgitError('MPGIT_BAD_CONFIG', `the git configuration is larger than ${MAX_CONFIG_BYTES >> 20} MiB`, 'look for a runaway include.path');
  if (r.error) throw new MpgitError('MPGIT_BAD_CONFIG', `could not run git config: ${r.error.message}`);
  if (r.status !== 0) {
    const said = r.stderr.trim().split('\n').pop()?.replace(/^fatal: /, '') ?? `git config exited ${r.status}`;
    throw new MpgitError('MPGIT_BAD_CONFIG', said, 'fix the configuration file it names (git config --edit)');
  }
  return parseListZ(r.stdout.toString('utf8'));
}

/** `--show-scope -z` output: scope NUL key [LF value] NUL ... */
export function parseListZ(text: string): ScopedEntry[] {
  const parts = text.split('\0');
  const out: ScopedEntry[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const kv = parts[i + 1]!;
    const nl = kv.indexOf('\n');
    out.push({ scope: parts[i] as Scope, key: nl < 0 ? kv : kv.slice(0, nl), value: nl < 0 ? null : kv.slice(nl + 1) });
  }
  return out;
}
