// Positioned reads of the pack through a small cache of aligned blocks: delta resolution reads
// hundreds of thousands of small entries, mostly near each other, and one read(2) per entry
// costs more than the inflate.

import { readSync } from 'node:fs';
import { PackError } from '../../errors.js';

const BLOCK_BYTES = 256 * 1024;
/** Blocks kept (16 MiB). */
const MAX_BLOCKS = 64;

export class BlockReader {
  private readonly blocks = new Map<number, Buffer>();

  constructor(
    private readonly fd: number,
    private readonly what: string,
  ) {}

  /** Bytes [pos, pos + len) of the file. */
  read(pos: number, len: number): Buffer {
    if (len > BLOCK_BYTES / 2) return this.direct(pos, len);
    const first = Math.floor(pos / BLOCK_BYTES);
    const last = Math.floor((pos + len - 1) / BLOCK_BYTES);
    if (first === last) {
      const b = this.block(first);
      const at = pos - first * BLOCK_BYTES;
      if (at + len <= b.length) return b.subarray(at, at + len);
    }
    return this.direct(pos, len);
  }

  /** Forgets cached blocks overlapping a range that was just written. */
  invalidate(pos: number, len: number): void {
    for (let k = Math.floor(pos / BLOCK_BYTES); k <= Math.floor((pos + Math.max(len, 1) - 1) / BLOCK_BYTES); k++) this.blocks.delete(k);
  }

  private block(k: number): Buffer {
    const have = this.blocks.get(k);
    if (have) {
      this.blocks.delete(k);
      this.blocks.set(k, have);
      return have;
    }
    const buf = Buffer.allocUnsafe(BLOCK_BYTES);
    let got = 0;
    while (got < BLOCK_BYTES) {
      const n = readSync(this.fd, buf, got, BLOCK_BYTES - got, k * BLOCK_BYTES + got);
      if (n === 0) break;
      got += n;
    }
    const b = buf.subarray(0, got);
    this.blocks.set(k, b);
    if (this.blocks.size > MAX_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
    return b;
  }

  private direct(pos: number, len: number): Buffer {
    const buf = Buffer.allocUnsafe(len);
    for (let got = 0; got < len; ) {
      const n = readSync(this.fd, buf, got, len - got, pos + got);
      if (n === 0) throw new PackError(`${this.what} is shorter than when it was parsed (offset ${pos + got})`);
      got += n;
    }
    return buf;
  }
}
