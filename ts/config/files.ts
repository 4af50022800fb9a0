// git's configuration without git: the files of each scope in git's order (system, global
// as XDG then ~/.gitconfig, local, worktree, then the command line), with include.path and
// includeIf (gitdir:, gitdir/i:, onbranch:) followed where they appear, as git does.

import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { MpgitError } from '../errors.js';
import { GitConfig, parseConfigText, type ConfigEntry } from '../repo/config.js';
import { commandScopeEntries } from './command-line.js';

export type Scope = 'system' | 'global' | 'local' | 'worktree' | 'command';
export interface ScopedEntry extends ConfigEntry {
  scope: Scope;
}

/** git's MAX_INCLUDE_DEPTH. */
const MAX_INCLUDE_DEPTH = 10;

const isTrue = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v);

/** The scopes' files, in the order git reads them. */
function scopeFiles(gitDir: string | null, env: NodeJS.ProcessEnv): [Scope, string][] {
  const home = env.HOME ?? homedir();
  const files: [Scope, string][] = [];
  if (!isTrue(env.GIT_CONFIG_NOSYSTEM)) files.push(['system', env.GIT_CONFIG_SYSTEM ?? '/etc/gitconfig']);
  if (env.GIT_CONFIG_GLOBAL !== undefined) files.push(['global', env.GIT_CONFIG_GLOBAL]);
  else {
    files.push(['global', join(env.XDG_CONFIG_HOME || join(home, '.config'), 'git', 'config')]);
    files.push(['global', join(home, '.gitconfig')]);
  }
  if (gitDir) {
    // A linked worktree's git dir names the common one, which holds the shared config.
    const commonFile = join(gitDir, 'commondir');
    const common = existsSync(commonFile) ? resolve(gitDir, readFileSync(commonFile, 'utf8').trim()) : gitDir;
    files.push(['local', join(common, 'config')]);
    files.push(['worktree', join(gitDir, 'config.worktree')]);
  }
  return files;
}

/** Reads every scope as `git config --list --show-scope` lists it. */
export function readConfigFiles(gitDir: string | null, env: NodeJS.ProcessEnv = process.env): ScopedEntry[] {
  const out: ScopedEntry[] = [];
  const home = env.HOME ?? homedir();
  const ctx: IncludeContext = { gitDir, home, branch: gitDir ? currentBranch(gitDir) : null };
  for (const [scope, file] of scopeFiles(gitDir, env)) {
    // config.worktree counts only with extensions.worktreeConfig (from the files read so far).
    if (scope === 'worktree' && !GitConfig.fromEntries(out).getBool('extensions.worktreeConfig')) continue;
    if (!existsSync(file)) continue;
    readFile(file, scope, ctx, 0, out);
  }
  for (const e of commandScopeEntries(env)) out.push({ ...e, scope: 'command' });
  return out;
}

interface IncludeContext {
  gitDir: string | null;
  home: string;
  branch: string | null;
}

function readFile(file: string, scope: Scope, ctx: IncludeContext, depth: number, out: ScopedEntry[]): void {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new MpgitError('MPGIT_BAD_CONFIG', `exceeded maximum include depth (${MAX_INCLUDE_DEPTH}) while including ${file}`, 'an include.path probably includes itself');
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    // git skips include files it cannot find; a scope file that vanished is the same.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new MpgitError('MPGIT_BAD_CONFIG', `unable to read config file '${file}': ${(e as Error).message}`);
  }
  for (const e of parseConfigText(text, file)) {
    out.push({ ...e, scope });
    if (e.value === null) continue;
    let include = false;
    if (e.key === 'include.path') include = true;
    else if (e.key.startsWith('includeif.') && e.key.endsWith('.path')) include = conditionHolds(e.key.slice('includeif.'.length, -'.path'.length), file, ctx);
    if (!include) continue;
    const path = expandHome(e.value, ctx.home);
    readFile(isAbsolute(path) ? path : join(dirname(file), path), scope, ctx, depth + 1, out);
  }
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p;
}

/** includeIf conditions (git-config "Conditional includes"). */
function conditionHolds(cond: string, file: string, ctx: IncludeContext): boolean {
  const m = /^(gitdir|gitdir\/i|onbranch):(.*)$/s.exec(cond);
  if (!m) return false; // hasconfig:remote.*.url: is git's alone (see readConfig's note)
  const [, kind, raw] = m as unknown as [string, string, string];
  if (kind === 'onbranch') {
    if (!ctx.branch) return false;
    return wildmatch(raw.endsWith('/') ? `${raw}**` : raw, ctx.branch, false);
  }
  if (!ctx.gitDir) return false;
  let pat = raw;
  if (pat.startsWith('./')) pat = join(dirname(file), pat.slice(2));
  else if (pat.startsWith('~/')) pat = expandHome(pat, ctx.home);
  else if (!isAbsolute(pat)) pat = `**/${pat}`;
  if (pat.endsWith('/')) pat += '**';
  const icase = kind === 'gitdir/i';
  const dirs = new Set([resolve(ctx.gitDir)]);
  try {
    dirs.add(realpathSync(ctx.gitDir));
  } catch {
    // not there yet (a clone in the making): the path as it is
  }
  return [...dirs].some((d) => wildmatch(pat, d, icase));
}

/** wildmatch with WM_PATHNAME: `*` and `?` stop at '/', `**` spans directories. */
export function wildmatch(pattern: string, text: string, icase: boolean): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      const atStart = i === 0 || pattern[i - 1] === '/';
      i++;
      if (atStart && pattern[i + 1] === '/') {
        re += '(?:.*/)?';
        i++;
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, icase ? 'is' : 's').test(text);
}

function currentBranch(gitDir: string): string | null {
  try {
    const m = /^ref: refs\/heads\/(.+)\n?$/.exec(readFileSync(join(gitDir, 'HEAD'), 'utf8'));
    return m ? m[1]! : null;
  } catch {
    return null;
  }
}
