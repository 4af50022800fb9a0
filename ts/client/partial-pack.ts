// A pack (or bundle) being downloaded: where its partial bytes and their state live, the state itself
// (what another process needs to resume safely) and the running hash of its bytes.

import { createReadStream } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackStreamHash, type StreamCheck } from '../pack/stream-hash.js';
import { BundleStreamCheck } from '../bundle/format.js';

export { PackStreamHash, type StreamCheck };

/** State kept next to a partial pack so another process can resume it safely. */
export interface PartState {
  hash: string;
  uri: string;
  /** Strong ETag or Last-Modified of the response the partial bytes came from (for If-Range). */
  validator: string | null;
  total: number | null;
}

/** `<dir>/<hash>.pack` (or .bundle) once verified; where partial bytes and their state live meanwhile. */
export function downloadPaths(dir: string, hash: string, bundle = false): { final: string; part: string; state: string } {
  const ext = bundle ? 'bundle' : 'pack';
  return { final: join(dir, `${hash}.${ext}`), part: join(dir, `${hash}.${ext}.part`), state: join(dir, `${hash}.part.json`) };
}

/** The check of a download: a pack's, or a bundle's (its header, then its pack). */
export function newCheck(bundle: boolean): StreamCheck {
  return bundle ? new BundleStreamCheck() : new PackStreamHash();
}

/** The state next to a partial pack, or null when it is missing, unreadable or another pack's. */
export async function readPartState(file: string, hash: string): Promise<PartState | null> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as PartState;
    return s && s.hash === hash ? s : null;
  } catch {
    return null;
  }
}

export async function writePartState(file: string, s: PartState): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(s));
  await rename(tmp, file);
}

/** Feeds the first `bytes` of `path` to a fresh hash (after a restart, or after a failed write). */
export async function hashPrefix(path: string, bytes: number, bundle = false): Promise<StreamCheck> {
  const h = newCheck(bundle);
  if (bytes === 0) return h;
  for await (const c of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h;
}
