// .git/shallow: the commits this repository has without their parents, one id per line,
// sorted. Absent when the repository is complete.

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeLocked } from './lockfile.js';
import { isOid } from '../oid.js';

export function readShallow(gitDir: string): string[] {
  const path = join(gitDir, 'shallow');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(isOid);
}

/** Applies a server's shallow-info: adds `shallow`, removes `unshallow`. */
export function updateShallow(gitDir: string, shallow: string[], unshallow: string[]): void {
  if (!shallow.length && !unshallow.length) return;
  const set = new Set(readShallow(gitDir));
  for (const s of shallow) set.add(s);
  for (const u of unshallow) set.delete(u);
  const path = join(gitDir, 'shallow');
  if (!set.size) {
    rmSync(path, { force: true });
    return;
  }
  writeLocked(path, [...set].sort().map((s) => `${s}\n`).join(''));
}
