// A pack being downloaded: where its partial bytes and their state live, the state itself
// (what another process needs to resume safely) and the running hash of its bytes.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const TRAILER = 20;

/** State kept next to a partial pack so another process can resume it safely. */
export interface PartState {
  hash: string;
  uri: string;
  /** Strong ETag or Last-Modified of the response the partial bytes came from (for If-Range). */
  validator: string | null;
  total: number | null;
}

/** `<dir>/<hash>.pack` once verified; where partial bytes and their state live meanwhile. */
export function downloadPaths(dir: string, hash: string): { final: string; part: string; state: string } {
  return { final: join(dir, `${hash}.pack`), part: join(dir, `${hash}.pack.part`), state: join(dir, `${hash}.part.json`) };
}

/** The size of the file at `path`, or null when there is none. */
export async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
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

/**
 * SHA-1 of a pack stream without its last 20 bytes (the trailer), plus the trailer, plus a check
 * of the 12-byte header as soon as it is complete, so a URI serving an HTML page fails at once.
 */
export class PackStreamHash {
  private hash = createHash('sha1');
  private tail = Buffer.alloc(0);
  private head = Buffer.alloc(0);
  bytes = 0;

  update(chunk: Buffer): void {
    if (this.head.length < 12) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, 12 - this.head.length)]);
      if (this.head.length === 12) checkPackHeader(this.head);
    }
    this.bytes += chunk.length;
    if (chunk.length >= TRAILER) {
      this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - TRAILER));
      this.tail = Buffer.from(chunk.subarray(chunk.length - TRAILER));
    } else {
      const both = Buffer.concat([this.tail, chunk]);
      const keep = Math.max(0, both.length - TRAILER);
      this.hash.update(both.subarray(0, keep));
      this.tail = both.subarray(keep);
    }
  }

  /** The computed checksum and the trailer the stream carried. */
  finish(): { computed: string; trailer: string } {
    if (this.head.length < 12 || this.tail.length < TRAILER) throw new Error(`${this.bytes} bytes are too short for a pack`);
    return { computed: this.hash.digest('hex'), trailer: this.tail.toString('hex') };
  }
}

function checkPackHeader(head: Buffer): void {
  if (head.toString('latin1', 0, 4) !== 'PACK') throw new Error(`not a pack: starts with ${JSON.stringify(head.toString('latin1', 0, 4))}`);
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new Error(`unsupported pack version ${version}`);
}

/** Feeds the first `bytes` of `path` to a fresh hash (after a restart, or after a failed write). */
export async function hashPrefix(path: string, bytes: number): Promise<PackStreamHash> {
  const h = new PackStreamHash();
  if (bytes === 0) return h;
  for await (const c of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h;
}
