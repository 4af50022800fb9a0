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

let held = 0;
let largeBusy: Promise<void> = Promise.resolve();

export class HaveList {
  private buf = Buffer.alloc(0);
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

  /** Takes one have (40 hex digits, already checked). */
  add(hex: string): void {
    this.received++;
    if (this.released || this.n >= MAX_HAVES || held >= TOTAL_HAVES) {
      this.ignored++;
      return;
    }
    if ((this.n + 1) * 20 > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.min(MAX_HAVES * 20, Math.max(4096, this.buf.length * 2)));
      this.buf.copy(next, 0, 0, this.n * 20);
      this.buf = next;
    }
    this.buf.write(hex, this.n * 20, 'hex');
    this.n++;
    held++;
  }

  get count(): number {
    return this.n;
  }

  /** The haves kept, as hex, a batch at a time. */
  *batches(size = BATCH): Generator<string[]> {
    for (let i = 0; i < this.n; i += size) {
      const out: string[] = [];
      for (let j = i; j < Math.min(this.n, i + size); j++) out.push(this.buf.toString('hex', j * 20, j * 20 + 20));
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
        const o = this.buf.toString('hex', i * 20, i * 20 + 20);
        if (!seen.has(o) && (tips.has(o) || db.hasSync(o))) seen.add(o);
      }
    } finally {
      db.close();
    }
    return [...seen];
  }

  /** Gives the memory back (the request is answered). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.leaveLarge?.();
    held -= this.n;
    this.n = 0;
    this.buf = Buffer.alloc(0);
  }
}

