// The record of an interrupted clone: what it needs to finish without asking the server again.

import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MpgitError } from '../errors.js';
import type { PackfileUri } from '../protocol/packfile-uris.js';

/**
 * An interrupted clone keeps, in its target directory, what it needs to finish without asking
 * the server again: the record (refs, what to check out: the clone's own data), the inline
 * pack it already received, and the partial URI downloads.
 */
export const RESUME_DIR = '.mpgit-clone-resume';

export interface ResumeRecord<T = unknown> {
  version: 1;
  url: string;
  uris: PackfileUri[];
  /** The inline pack's checksum (pack-<checksum>.pack/.idx are kept next to the record). */
  inlinePack: string | null;
  /** What the clone needs to finish (its plan, the refs it saw): opaque here. */
  clone: T;
}

export function resumeDir(target: string): string {
  return join(target, RESUME_DIR);
}

/**
 * Records a clone that is about to download packfile URIs, so it can be resumed: the record
 * and a copy (hard link where possible) of the inline pack go to `<target>/.mpgit-clone-resume`.
 */
export function saveResumeRecord<T>(target: string, rec: ResumeRecord<T>, inline: { packPath: string; idxPath: string } | null): void {
  const dir = resumeDir(target);
  mkdirSync(join(dir, 'downloads'), { recursive: true });
  if (inline && rec.inlinePack) {
    for (const [from, ext] of [[inline.packPath, 'pack'], [inline.idxPath, 'idx']] as const) {
      const to = join(dir, `pack-${rec.inlinePack}.${ext}`);
      if (existsSync(to)) continue;
      try {
        linkSync(from, to);
      } catch {
        copyFileSync(from, to);
      }
    }
  }
  const file = join(dir, 'record.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(rec));
  renameSync(`${file}.tmp`, file);
}

/** The record of an interrupted clone in `target`, or null when there is none. */
export function readResumeRecord<T>(target: string): ResumeRecord<T> | null {
  const file = join(resumeDir(target), 'record.json');
  if (!existsSync(file)) return null;
  let r: ResumeRecord<T>;
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as ResumeRecord<T>;
  } catch (e) {
    throw new MpgitError('MPGIT_RESUME', `${file} is unreadable: ${(e as Error).message}`, `remove ${resumeDir(target)} and clone again`);
  }
  if (!r || r.version !== 1 || typeof r.url !== 'string' || !Array.isArray(r.uris)) {
    throw new MpgitError('MPGIT_RESUME', `${file} is not a clone record this mpgit understands`, `remove ${resumeDir(target)} and clone again`);
  }
  return r;
}

/** Puts the saved inline pack of an interrupted clone into `gitDir`'s objects/pack. */
export function restoreInlinePack(target: string, gitDir: string, checksum: string): void {
  const packDir = join(gitDir, 'objects', 'pack');
  mkdirSync(packDir, { recursive: true });
  // The .idx last: a pack is visible once its index is.
  for (const ext of ['pack', 'idx']) {
    const from = join(resumeDir(target), `pack-${checksum}.${ext}`);
    const to = join(packDir, `pack-${checksum}.${ext}`);
    if (!existsSync(from)) throw new MpgitError('MPGIT_RESUME', `${from} is missing`, `remove ${resumeDir(target)} and clone again`);
    if (!existsSync(to)) copyFileSync(from, to);
  }
}

export function clearResume(target: string): void {
  rmSync(resumeDir(target), { recursive: true, force: true });
}
