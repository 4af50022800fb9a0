// Where a clone is made: the target must be absent or an empty directory (git's rule and
// words); the clone is built in a hidden directory next to it, named after the target and the
// clone's pid (`.DIR.mpgit-clone-<pid>-<random>`), so that the next clone into the same target
// finds what a killed one left and removes it.

import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { MpgitError } from '../errors.js';
import { pidAlive } from '../pid-alive.js';
import { resumeDir } from './resume.js';

export interface PreparedTarget {
  /** The directory the clone ends in (absolute). */
  target: string;
  /** The hidden directory it is built in, renamed to `target` at the end. */
  tmp: string;
  /** The topmost parent directory this clone created (removed again if the clone fails). */
  createdParent: string | null;
}

/** strerror's words for the errors a mkdir meets, as git prints them. */
const STRERROR: Record<string, string> = {
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  ENOTDIR: 'Not a directory',
  EEXIST: 'File exists',
  EDQUOT: 'Disk quota exceeded',
  ENAMETOOLONG: 'File name too long',
};

export function strerror(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return STRERROR[code] ?? (e as Error).message;
}

const TEMP_RE = /^\.(.+)\.mpgit-clone-(?:(\d+)-)?[0-9a-f]{8}$/;

/**
 * Removes the temporary directories of dead clones into `target` (their pid is gone; names
 * without a pid come from older mpgit, which could not say). They hold a half-received pack,
 * nothing resumable: a clone interrupted while downloading packfile URIs keeps its resumable
 * state in the target itself (`DIR/.mpgit-clone-resume`), and continues from there.
 */
export function sweepDeadClones(target: string, say: ((line: string) => void) | null): string[] {
  const parent = dirname(target);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m || m[1] !== basename(target)) continue;
    const pid = m[2] ? Number(m[2]) : null;
    if (pid !== null && (pid === process.pid || pidAlive(pid))) continue;
    const path = join(parent, name);
    try {
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
      say?.(`Removed ${name}, left by an interrupted clone${pid !== null ? ` (pid ${pid}, no longer running)` : ''}.`);
    } catch (e) {
      say?.(`warning: could not remove ${path}, left by an interrupted clone: ${strerror(e)}`);
    }
  }
  return removed;
}

/**
 * Checks the target as git does and creates the hidden directory to build the clone in.
 * `shown` is the name the messages use (the directory as the user gave it). `resuming`: the
 * target holds an interrupted clone's resume state, which is not "not empty".
 */
export function prepareTarget(target: string, shown: string, opts: { bare: boolean; resuming: boolean; say: ((line: string) => void) | null }): PreparedTarget {
  if (existsSync(target) && !opts.resuming && !(statSync(target).isDirectory() && readdirSync(target).length === 0)) {
    throw new MpgitError('MPGIT_EXISTS', `destination path '${shown}' already exists and is not an empty directory.`, 'choose another directory, or remove that one');
  }
  sweepDeadClones(target, opts.say);
  // Parents we create are removed again on failure, like the clone itself.
  const parent = dirname(target);
  let createdParent: string | null = null;
  if (!existsSync(parent)) {
    let top = parent;
    while (!existsSync(dirname(top))) top = dirname(top);
    try {
      mkdirSync(parent, { recursive: true });
    } catch (e) {
      throw new MpgitError('MPGIT_TARGET', `could not create leading directories of '${shown}': ${strerror(e)}`, `check the permissions of ${dirname(top)}`, { cause: e });
    }
    createdParent = top;
  }
  const tmp = join(parent, `.${basename(target)}.mpgit-clone-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(tmp);
  } catch (e) {
    if (createdParent) rmSync(createdParent, { recursive: true, force: true });
    const what = opts.bare ? 'could not create repository dir' : 'could not create work tree dir';
    throw new MpgitError('MPGIT_TARGET', `${what} '${shown}': ${strerror(e)}`, `mpgit builds the clone in ${parent} first: check that you may write there`, { cause: e });
  }
  return { target, tmp, createdParent };
}

/**
 * Undoes prepareTarget after a failed clone: the hidden directory goes, and the parents it
 * created unless they now hold what an interrupted clone needs to resume (which is said).
 */
export function abandonTarget(t: PreparedTarget, o: { shown: string; resumable: boolean; say: ((line: string) => void) | null }): void {
  rmSync(t.tmp, { recursive: true, force: true });
  const kept = o.resumable && existsSync(resumeDir(t.target));
  if (t.createdParent && !kept) rmSync(t.createdParent, { recursive: true, force: true });
  if (kept) o.say?.(`The downloads so far are kept in ${resumeDir(t.target)}: run \`mpgit clone --resume ${o.shown}\` (or the same clone again) to continue.`);
}
