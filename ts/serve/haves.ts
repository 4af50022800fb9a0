// The `have` lines of one v2 fetch request, kept in bounded memory: 20 bytes each (the line on
// the wire is 50), at most MAX_HAVES per request and TOTAL_HAVES across the daemon. Haves past
// either bound are ignored, as if the client had not sent them: the answer is then a bigger
// pack, never a wrong one (a have only spares objects). Of the haves kept, only those the
// repository has matter (git's upload-pack, too, keeps only the haves it has), looked up in
// the object database.

import { ObjectDb } from '../repo/odb.js';

/** Haves one request may hold (git's client sends a few thousand per round; 16384 past 16 rounds). */
export const MAX_HAVES = 256 * 1024;
/** Haves all requests in this process may hold at once. */
export const TOTAL_HAVES = 1024 * 1024;
/** Haves handed out at a time (re-sending a request to git upload-pack). */
const BATCH = 8192;
/**
 * Past this many haves a request is "large": large requests are read and answered one at a
 * time across the daemon (the others wait, their clients' sockets pushed back), so that the
 * daemon's peak is one large request's, not one per connection.
 */
export const LARGE_HAVES = 16384;

/**
 * Haves per storage block. Fixed-size blocks, not one buffer doubled: glibc raises its mmap
 * threshold after a large buffer is freed, so doubled buffers of later requests land in the
 * brk heap and stay resident long after the request (measured: 50-70 MB kept after three
 * 1,000,000-have requests). Blocks of one size are reused by every later request instead.
 */
const BLOCK = 3276;

let held = 0;

/** The value of one lowercase hex digit's byte, or -1 (object ids are lowercase on the wire). */
function nibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}
let largeBusy: Promise<void> = Promise.resolve();

export class HaveList {
  private blocks: Buffer[] = [];
  private n = 0;
  /** Have lines received, kept or not. */
  received = 0;
  /** Have lines ignored for a bound (per request or daemon-wide). */
  ignored = 0;
  private released = false;
  private leaveLarge: (() => void) | null = null;

  /**
   * Resolves at once, or (the first time the request turns large) once no other large
   * request is in the daemon. Await it before reading the next line.
   */
  turn(): Promise<void> | null {
    if (this.received !== LARGE_HAVES || this.leaveLarge || this.released) return null;
    const before = largeBusy;
    largeBusy = new Promise((r) => (this.leaveLarge = r));
    return before;
  }

  /**
   * Takes one have from its 40 hex digits as bytes (no string per line: a million haves must
   * not mean a million strings). False, and nothing kept, when they are not lowercase hex.
   */
  add(hex: Buffer): boolean {
    if (hex.length !== 40) return false;
    for (let i = 0; i < 40; i++) if (nibble(hex[i]!) < 0) return false;
    this.received++;
    if (this.released || this.n >= MAX_HAVES || held >= TOTAL_HAVES) {
      this.ignored++;
      return true;
    }
    const at = this.n % BLOCK;
    if (at === 0) this.blocks.push(Buffer.allocUnsafe(BLOCK * 20));
    const block = this.blocks[this.blocks.length - 1]!;
    for (let i = 0; i < 20; i++) block[at * 20 + i] = (nibble(hex[2 * i]!) << 4) | nibble(hex[2 * i + 1]!);
    this.n++;
    held++;
    return true;
  }

  get count(): number {
    return this.n;
  }

  /** The haves kept, as hex, a batch at a time. */
  *batches(size = BATCH): Generator<string[]> {
    for (let i = 0; i < this.n; i += size) {
      const out: string[] = [];
      for (let j = i; j < Math.min(this.n, i + size); j++) out.push(this.at(j));
      yield out;
    }
  }

  /**
   * The haves the repository has, each once (`tips` are known to exist). Looked up one by one
   * in the object database (no batch of strings lives long enough to grow the heap).
   */
  common(gitDir: string, tips: Set<string>): string[] {
    const seen = new Set<string>();
    if (!this.n) return [];
    const db = ObjectDb.openSync(gitDir);
    try {
      for (let i = 0; i < this.n; i++) {
        const o = this.at(i);
        if (!seen.has(o) && (tips.has(o) || db.hasSync(o))) seen.add(o);
      }
    } finally {
      db.close();
    }
    return [...seen];
  }

  private at(i: number): string {
    const k = (i % BLOCK) * 20;
    return this.blocks[Math.floor(i / BLOCK)]!.toString('hex', k, k + 20);
  }

  /** Gives the memory back (the request is answered). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.leaveLarge?.();
    held -= this.n;
    this.n = 0;
    this.blocks = [];
  }
}

