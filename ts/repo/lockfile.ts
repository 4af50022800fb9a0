// git's lock files: `<path>.lock` created exclusively, so that two writers never interleave;
// either renamed over `<path>` (a write) or removed when done (a lock held over a longer job).

import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { MpgitError } from '../errors.js';

export interface LockBusy {
  /** What the MPGIT_LOCKED error says when the lock is taken. */
  message: string;
  hint: string;
}

/** Creates `lock` with `content`, failing with MPGIT_LOCKED when it already exists. */
function createLock(lock: string, content: string | Buffer, busy: LockBusy): void {
  try {
    writeFileSync(lock, content, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new MpgitError('MPGIT_LOCKED', busy.message, busy.hint);
    throw e;
  }
}

/** Writes `path` through `path.lock` + rename; fails if someone else holds the lock. */
export function writeLocked(path: string, content: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const lock = `${path}.lock`;
  createLock(lock, content, { message: `${lock} exists: another git process is running`, hint: `if none is, remove ${lock}` });
  try {
    renameSync(lock, path);
  } catch (e) {
    rmSync(lock, { force: true });
    throw e;
  }
}

/** Takes the lock file `lock` (holding our pid) for a longer job; the returned function releases it. */
export function holdLock(lock: string, busy: LockBusy): () => void {
  createLock(lock, `${process.pid}\n`, busy);
  return () => rmSync(lock, { force: true });
}
