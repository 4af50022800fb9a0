// First pass over a pack as its bytes arrive: frame every entry, inflate it to find where it
// ends (checking its declared size), CRC32 its raw bytes, hash whole objects on the fly, and
// check the trailer. Holds no object content: deltas are re-read from the file later.

import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { PackError } from '../../errors.js';
import { OBJ_OFS_DELTA, OBJ_REF_DELTA, typeName } from '../object.js';
import { MAX_ENTRY_HEADER_LEN, PACK_HEADER_LEN, TRAILER_LEN, parseEntryHeader, parsePackHeader } from './entry.js';
import { StreamInflater } from './inflate.js';
import { ObjectTable } from './table.js';

type Phase = 'header' | 'entry' | 'data' | 'trailer' | 'done';

export class PackParser {
  readonly table = new ObjectTable();
  /** Objects the header announces (-1 until it is read). */
  objectsTotal = -1;
  objectsReceived = 0;
  deltasTotal = 0;
  /** Bytes parsed. */
  bytes = 0;
  /** Offset of the trailer, once every entry is parsed. */
  dataEnd = -1;
  /** The trailer's checksum, once checked. */
  checksum: Buffer | null = null;

  private phase: Phase = 'header';
  private readonly scratch = Buffer.alloc(2 * MAX_ENTRY_HEADER_LEN);
  private scratchLen = 0;
  private readonly packHash = createHash('sha1');
  private readonly inflater = new StreamInflater();
  // The entry being inflated.
  private cur = -1;
  private curCrc = 0;
  private curHash: Hash | null = null;
  private curSize = 0;

  /** Adds bytes from `at` to the scratch buffer until it holds `n` (a pack header, the trailer, split over pushes); returns where reading goes on. */
  private gather(buf: Uint8Array, at: number, n: number): number {
    const k = Math.min(n - this.scratchLen, buf.length - at);
    this.scratch.set(buf.subarray(at, at + k), this.scratchLen);
    this.scratchLen += k;
    return at + k;
  }

  /** Parses the next bytes of the pack; throws PackError at the first inconsistency. */
  push(buf: Uint8Array): void {
    let at = 0;
    while (at < buf.length) {
      switch (this.phase) {
        case 'header': {
          at = this.gather(buf, at, PACK_HEADER_LEN);
          if (this.scratchLen < PACK_HEADER_LEN) break;
          const head = this.scratch.subarray(0, PACK_HEADER_LEN);
          this.objectsTotal = parsePackHeader(head);
          this.packHash.update(head);
          this.bytes = PACK_HEADER_LEN;
          this.scratchLen = 0;
          this.phase = this.objectsTotal > 0 ? 'entry' : 'trailer';
          if (this.objectsTotal === 0) this.dataEnd = this.bytes;
          break;
        }
        case 'entry':
          at = this.entryHeader(buf, at);
          break;
        case 'data':
          at = this.entryData(buf, at);
          break;
        case 'trailer': {
          at = this.gather(buf, at, TRAILER_LEN);
          if (this.scratchLen < TRAILER_LEN) break;
          const trailer = Buffer.from(this.scratch.subarray(0, TRAILER_LEN));
          const sum = this.packHash.digest();
          if (!sum.equals(trailer)) {
            throw new PackError(`pack checksum mismatch: the trailer says ${trailer.toString('hex')}, the content hashes to ${sum.toString('hex')}`);
          }
          this.checksum = trailer;
          this.bytes += TRAILER_LEN;
          this.phase = 'done';
          break;
        }
        case 'done':
          throw new PackError(`${buf.length - at} bytes of garbage after the pack trailer at offset ${this.bytes}`);
      }
    }
  }

  /** End of input: throws unless the whole pack, trailer included, was parsed. */
  end(): void {
    if (this.phase === 'done') return;
    if (this.phase === 'header') throw new PackError(`truncated pack: ${this.scratchLen} bytes, not even a header`);
    if (this.phase === 'trailer') throw new PackError(`truncated pack: the 20-byte trailer is missing or short (${this.scratchLen} bytes) after offset ${this.bytes}`);
    throw new PackError(
      `truncated pack: input ended inside object ${this.objectsReceived + 1} of ${this.objectsTotal} at offset ${this.bytes}`,
    );
  }

  private entryHeader(buf: Uint8Array, at: number): number {
    const offset = this.bytes;
    let head: Uint8Array;
    let next: number;
    let h = null;
    if (this.scratchLen === 0) {
      h = parseEntryHeader(buf, at, buf.length, offset);
      if (!h) return this.keepPartialHeader(buf.subarray(at), offset, buf.length);
      head = buf.subarray(at, at + h.len);
      next = at + h.len;
    } else {
      // The header began in an earlier chunk: continue it in the scratch buffer.
      const take = Math.min(MAX_ENTRY_HEADER_LEN, buf.length - at);
      this.scratch.set(buf.subarray(at, at + take), this.scratchLen);
      h = parseEntryHeader(this.scratch, 0, this.scratchLen + take, offset);
      if (!h) return this.keepPartialHeader(this.scratch.subarray(0, this.scratchLen + take), offset, at + take);
      head = Buffer.from(this.scratch.subarray(0, h.len));
      next = at + (h.len - this.scratchLen);
      this.scratchLen = 0;
    }
    const t = this.table;
    const i = t.add(offset, h.len, h.type, h.size);
    if (h.type === OBJ_OFS_DELTA) {
      t.ofs.push(i);
      t.ofsBase.push(h.baseOffset);
      this.deltasTotal++;
    } else if (h.type === OBJ_REF_DELTA) {
      t.ref.push(i);
      t.refBase.push(head.subarray(h.len - 20, h.len));
      this.deltasTotal++;
    }
    this.packHash.update(head);
    this.cur = i;
    this.curCrc = crc32(head);
    this.curSize = h.size;
    this.curHash = h.type <= 4 ? createHash('sha1').update(`${typeName(h.type)} ${h.size}\0`) : null;
    this.bytes += h.len;
    this.inflater.reset();
    this.phase = 'data';
    return next;
  }

  /** Keeps the start of a header that continues in the next chunk; returns where to resume. */
  private keepPartialHeader(part: Uint8Array, offset: number, resume: number): number {
    if (part.length >= MAX_ENTRY_HEADER_LEN) throw new PackError(`object at offset ${offset}: entry header longer than ${MAX_ENTRY_HEADER_LEN} bytes`);
    if (part.buffer !== this.scratch.buffer || part.byteOffset !== this.scratch.byteOffset) this.scratch.set(part, 0);
    this.scratchLen = part.length;
    return resume;
  }

  private entryData(buf: Uint8Array, at: number): number {
    const offset = this.table.offset[this.cur]!;
    const size = this.curSize;
    const hash = this.curHash;
    let r: { used: number; done: boolean };
    try {
      r = this.inflater.push(buf, at, buf.length, (chunk) => {
        if (this.inflater.totalOut > size) throw new PackError(`object at offset ${offset}: inflates to more than its declared ${size} bytes`);
        hash?.update(chunk);
      });
    } catch (e) {
      if (e instanceof PackError) throw e;
      throw new PackError(`object at offset ${offset}: bad zlib data: ${(e as Error).message}`);
    }
    const used = buf.subarray(at, at + r.used);
    this.curCrc = crc32(used, this.curCrc);
    this.packHash.update(used);
    this.bytes += r.used;
    if (!r.done) return at + r.used;
    if (this.inflater.totalOut !== size) {
      throw new PackError(`object at offset ${offset}: inflates to ${this.inflater.totalOut} bytes, its header says ${size}`);
    }
    const t = this.table;
    t.crc[this.cur] = this.curCrc;
    if (hash) t.oid.set(hash.digest(), this.cur * 20);
    this.objectsReceived++;
    if (this.objectsReceived === this.objectsTotal) {
      this.phase = 'trailer';
      this.dataEnd = this.bytes;
    } else {
      this.phase = 'entry';
    }
    return at + r.used;
  }
}
