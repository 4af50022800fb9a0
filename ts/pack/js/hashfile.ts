// A file written through a buffer with a running SHA-1, for .idx and .rev (both end with the
// checksum of everything before it). Written under a temporary name and renamed into place,
// so a failure never leaves a partial index where git would read it.

import { createHash } from 'node:crypto';
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

const BUFFER_BYTES = 1 << 20;

export class HashedFile {
  private readonly fd: number;
  private readonly tmp: string;
  private readonly hash = createHash('sha1');
  private buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private len = 0;

  constructor(private readonly path: string) {
    this.tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    this.fd = openSync(this.tmp, 'wx', 0o644);
  }

  /** Room for `n` bytes at the returned position of `buffer` (valid until the next call). */
  reserve(n: number): { buffer: Buffer; at: number } {
    if (this.len + n > this.buf.length) this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    const at = this.len;
    this.len += n;
    return { buffer: this.buf, at };
  }

  write(bytes: Uint8Array): void {
    const { buffer, at } = this.reserve(bytes.length);
    buffer.set(bytes, at);
  }

  u32(v: number): void {
    const { buffer, at } = this.reserve(4);
    buffer.writeUInt32BE(v >>> 0, at);
  }

  private flush(): void {
    const part = this.buf.subarray(0, this.len);
    this.hash.update(part);
    let done = 0;
    while (done < part.length) done += writeSync(this.fd, part, done, part.length - done);
    this.len = 0;
  }

  /** Appends the checksum, closes, renames into place; returns the checksum. */
  commit(): Buffer {
    this.flush();
    const sum = this.hash.digest();
    let done = 0;
    while (done < sum.length) done += writeSync(this.fd, sum, done, sum.length - done);
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
    return sum;
  }

  /** Closes and removes the temporary file. */
  discard(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    rmSync(this.tmp, { force: true });
  }
}
