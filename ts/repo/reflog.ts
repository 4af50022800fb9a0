// Reflogs as git keeps them (logs/<ref>, one "<old> <new> <ident> <time> <tz>\t<message>" line
// per update), so that `git reflog`, `@{1}` and `git checkout -` work in what mpgit cloned or
// fetched into, as in what git did.

import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { runGitIn } from '../git.js';

const ZERO = '0'.repeat(40);
/** Longest wait for `git var` (it reads config, nothing else). */
const IDENT_TIMEOUT_MS = 5_000;

/**
 * The committer identity and time git would log now: `git var GIT_COMMITTER_IDENT` (config,
 * GIT_COMMITTER_* and the date variables, as git resolves them), else the user and host names.
 */
export async function committerIdent(cwd: string): Promise<string> {
  // Whatever keeps git from answering (no identity configured, no git), the fallback below does.
  const out = await runGitIn(cwd, ['var', 'GIT_COMMITTER_IDENT'], { timeoutMs: IDENT_TIMEOUT_MS }).then(
    (r) => r.stdout.toString().trim(),
    () => '',
  );
  if (/^.*<.*> \d+ [+-]\d{4}$/.test(out)) return out;
  const user = safeUser();
  const offset = -new Date().getTimezoneOffset();
  const abs = Math.abs(offset);
  const tz = `${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  return `${user} <${user}@${hostname()}> ${Math.floor(Date.now() / 1000)} ${tz}`;
}

function safeUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Whether git would log an update of `ref` (core.logAllRefUpdates: "always" every ref; true,
 * the default of a repository with a work tree, branches, remote-tracking refs, notes and HEAD;
 * a ref that has a log already is always logged).
 */
export function logsRef(gitDir: string, ref: string, logAllRefUpdates: string | undefined, bare: boolean): boolean {
  if (existsSync(join(gitDir, 'logs', ref))) return true;
  const v = (logAllRefUpdates ?? (bare ? 'false' : 'true')).toLowerCase();
  if (v === 'always') return true;
  if (!['true', 'yes', 'on', '1'].includes(v)) return false;
  return ref === 'HEAD' || ref.startsWith('refs/heads/') || ref.startsWith('refs/remotes/') || ref.startsWith('refs/notes/');
}

/** Appends one update of `ref` to its log (`old` null: created). */
export function appendReflog(gitDir: string, ref: string, old: string | null, now: string, ident: string, message: string): void {
  const file = join(gitDir, 'logs', ref);
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${old ?? ZERO} ${now} ${ident}\t${message.replace(/\s*\n\s*/g, ' ')}\n`);
}
