// The pack cache's entries on disk: `<key>.pack` files under the cache directory, each the
// complete output of one `git pack-objects --stdout` run. An entry appears only by rename
// after its producer exited 0 and the file was fsynced; a producer's file is `<key>.<pid>.<n>.tmp`
// until then, so a crash or kill -9 leaves a temp file (swept at the next start) and never a
// half-written entry. Entries are bounded by total bytes (least recently used out first) and by
// age. Entries found at start are checked whole (the pack's trailing SHA-1) on first use; on
// every use the size must still be the one recorded.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pidAlive } from '../pid-alive.js';

export interface CacheBounds {
  /** Total bytes of entries kept; least recently used entries go first past it. */
  maxBytes: number;
  /** Entries older than this (since written) are removed. */
  maxAgeMs: number;
  /** Requests of one key seen before its pack is kept (1: the first). */
  minOccurrences: number;
}

export interface Entry {
  key: string;
  path: string;
  size: number;
  created: number;
  /** Checked whole since found on disk (entries written by this process are). */
  verified: boolean;
  /** Readers told the path that have not opened it yet: not unlinked meanwhile. */
  pins: number;
}

export type EvictReason = 'size' | 'age' | 'corrupt' | 'too-big';

export interface StoreEvents {
  evicted?(reason: EvictReason, bytes: number): void;
  /** Bytes held after any change. */
  size?(bytes: number): void;
  /** Something worth a log line (a corrupt entry, a failed removal). */
  warn?(text: string): void;
}

const ENTRY = /^([0-9a-f]{64})\.pack$/;
const TEMP = /^([0-9a-f]{64})\.(\d+)\.\d+\.tmp$/;

/** Whether a file holds one whole pack: "PACK" header, and its SHA-1 trailer matches. */
export async function packIsWhole(path: string, size: number): Promise<boolean> {
  if (size < 32) return false;
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(12);
    const trailer = Buffer.alloc(20);
    await fh.read(head, 0, 12, 0);
    await fh.read(trailer, 0, 20, size - 20);
    if (head.toString('latin1', 0, 4) !== 'PACK') return false;
    const h = createHash('sha1');
    for await (const chunk of createReadStream('', { fd: fh.fd, start: 0, end: size - 21, autoClose: false, highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
    return h.digest().equals(trailer);
  } finally {
    await fh.close();
  }
}

export class PackStore {
  /** Map order is recency: a used entry is moved to the end. */
  private readonly entries = new Map<string, Entry>();
  private total = 0;
  private seq = 0;

  private constructor(readonly dir: string, public bounds: CacheBounds, private readonly events: StoreEvents) {}

  /** Opens (creating) the directory, sweeps dead producers' temp files, indexes the entries. */
  static async open(dir: string, bounds: CacheBounds, events: StoreEvents = {}): Promise<PackStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = new PackStore(dir, bounds, events);
    const found: Entry[] = [];
    for (const name of await readdir(dir)) {
      const t = TEMP.exec(name);
      if (t) {
        if (!pidAlive(Number(t[2]))) await rm(join(dir, name), { force: true });
        continue;
      }
      const m = ENTRY.exec(name);
      if (!m) continue;
      const st = await stat(join(dir, name)).catch(() => null);
      if (!st?.isFile()) continue;
      found.push({ key: m[1]!, path: join(dir, name), size: st.size, created: st.mtimeMs, verified: false, pins: 0 });
    }
    // Oldest first, so that the order of the map starts as least recently written.
    for (const e of found.sort((a, b) => a.created - b.created)) {
      s.entries.set(e.key, e);
      s.total += e.size;
    }
    await s.enforce();
    return s;
  }

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.entries.size;
  }

  /** A temp path for a producer of `key` (never an entry name). */
  tempPath(key: string): string {
    return join(this.dir, `${key}.${process.pid}.${++this.seq}.tmp`);
  }

  /**
   * The entry for `key` if it can be served: young enough, its file still of its recorded
   * size, and (found on disk at start) a whole pack. A bad one is removed and reported.
   */
  async lookup(key: string): Promise<Entry | null> {
    const e = this.entries.get(key);
    if (!e) return null;
    if (Date.now() - e.created > this.bounds.maxAgeMs) {
      await this.remove(e, 'age');
      return null;
    }
    const st = await stat(e.path).catch(() => null);
    let whole = st !== null && st.size === e.size;
    if (whole && !e.verified) whole = await packIsWhole(e.path, e.size).catch(() => false);
    if (!whole) {
      this.events.warn?.(`pack cache: entry ${e.key.slice(0, 12)} is ${st ? 'corrupt' : 'gone'} (${st?.size ?? 0} of ${e.size} bytes): discarded`);
      await this.remove(e, 'corrupt');
      return null;
    }
    e.verified = true;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e;
  }

  /** Makes a producer's finished (fsynced) temp file the entry for `key`. */
  async add(key: string, tempPath: string, size: number): Promise<Entry | null> {
    if (size > this.bounds.maxBytes) {
      await rm(tempPath, { force: true });
      this.events.evicted?.('too-big', size);
      return null;
    }
    const path = join(this.dir, `${key}.pack`);
    const old = this.entries.get(key);
    if (old) await this.remove(old, 'size');
    await rename(tempPath, path);
    // The rename is durable once the directory is synced.
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    const e: Entry = { key, path, size, created: Date.now(), verified: true, pins: 0 };
    this.entries.set(key, e);
    this.total += size;
    await this.enforce();
    return this.entries.get(key) ?? null;
  }

  /** New bounds (a reload): applied at once. */
  async setBounds(b: CacheBounds): Promise<void> {
    this.bounds = b;
    await this.enforce();
  }

  /** Removes entries past the age bound, then least recently used ones past the size bound. */
  async enforce(): Promise<void> {
    const now = Date.now();
    for (const e of [...this.entries.values()]) {
      if (now - e.created > this.bounds.maxAgeMs && e.pins === 0) await this.remove(e, 'age');
    }
    for (const e of [...this.entries.values()]) {
      if (this.total <= this.bounds.maxBytes) break;
      if (e.pins === 0) await this.remove(e, 'size');
    }
    this.events.size?.(this.total);
  }

  private async remove(e: Entry, reason: EvictReason): Promise<void> {
    if (this.entries.get(e.key) !== e) return;
    this.entries.delete(e.key);
    this.total -= e.size;
    // Readers that opened the file keep reading it: unlinking does not cut them off.
    await rm(e.path, { force: true }).catch((err) => this.events.warn?.(`pack cache: cannot remove ${e.path}: ${(err as Error).message}`));
    this.events.evicted?.(reason, e.size);
    this.events.size?.(this.total);
  }
}
