// Inflate for the pure-TypeScript indexer and object reader. The indexer's first pass streams
// through pako, which says exactly where each zlib stream ends (a pack gives no compressed
// lengths); where an entry's compressed span is known (the second pass, reading objects), it
// is inflated whole with node:zlib.

import { constants as bufferConstants } from 'node:buffer';
import { inflateSync } from 'node:zlib';
import { ZStream, Z_BUF_ERROR, Z_NO_FLUSH, Z_OK, Z_STREAM_END, zlibInflate, zlibInflateInit, zlibInflateReset } from 'pako';
import { PackError } from '../../errors.js';

/** Output window of the streaming inflater: objects are hashed 64 KiB at a time. */
const OUT_CHUNK = 64 * 1024;

/** Streaming inflate of one zlib stream at a time, reused across entries. */
export class StreamInflater {
  private readonly strm = new ZStream();
  private readonly out = new Uint8Array(OUT_CHUNK);

  constructor() {
    zlibInflateInit(this.strm);
    this.strm.output = this.out;
  }

  /** Starts a new stream. */
  reset(): void {
    zlibInflateReset(this.strm);
  }

  /** Bytes produced by the current stream so far. */
  get totalOut(): number {
    return this.strm.total_out;
  }

  /**
   * Feeds buf[start..end); each piece of output goes to `onData` (valid only during the call).
   * Returns how much input was used and whether the stream ended. Throws with zlib's message
   * on corrupt data.
   */
  push(buf: Uint8Array, start: number, end: number, onData: (chunk: Uint8Array) => void): { used: number; done: boolean } {
    const s = this.strm;
    s.input = buf;
    s.next_in = start;
    s.avail_in = end - start;
    for (;;) {
      s.next_out = 0;
      s.avail_out = OUT_CHUNK;
      const status = zlibInflate(s, Z_NO_FLUSH);
      if (s.next_out > 0) onData(this.out.subarray(0, s.next_out));
      if (status === Z_STREAM_END) return { used: s.next_in - start, done: true };
      if (status === Z_OK && s.avail_out === 0) continue;
      if ((status === Z_OK || status === Z_BUF_ERROR) && s.avail_in === 0) return { used: s.next_in - start, done: false };
      throw new Error(s.msg || `zlib status ${status}`);
    }
  }
}

/** Inflates a complete zlib stream that must produce exactly `size` bytes. */
export function inflateExact(compressed: Uint8Array, size: number, offset: number): Buffer {
  if (size > bufferConstants.MAX_LENGTH) {
    throw new PackError(`object at offset ${offset} is ${size} bytes, more than this runtime can hold in one buffer`, 'use the native indexer (npm run build:native) for packs with objects this large');
  }
  let out: Buffer;
  try {
    out = inflateSync(compressed, { maxOutputLength: Math.max(size, 1), chunkSize: Math.max(64, Math.min(size, 1 << 24)) });
  } catch (e) {
    throw new PackError(`object at offset ${offset}: bad zlib data (${(e as Error).message})`, 'the pack is corrupt, or it changed on disk while being read');
  }
  if (out.length !== size) throw new PackError(`object at offset ${offset}: inflates to ${out.length} bytes, its header says ${size}`);
  return out;
}
