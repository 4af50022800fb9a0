// Pack framing (pack-format): the 12-byte header and each entry's header: type and size in a
// little-endian base-128 varint, then the delta base (a negative offset, or a 20-byte id).

import { PackError } from '../../errors.js';
import { OBJ_BLOB, OBJ_COMMIT, OBJ_OFS_DELTA, OBJ_REF_DELTA, OBJ_TAG, OBJ_TREE } from '../object.js';

export const PACK_HEADER_LEN = 12;
export const TRAILER_LEN = 20;
/** Longest valid entry header: 10 size bytes + 20 id bytes (or 10 offset bytes). */
export const MAX_ENTRY_HEADER_LEN = 32;
/** Sizes and offsets stay exact JavaScript numbers. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Returns the object count of a pack header, or throws. */
export function parsePackHeader(h: Uint8Array): number {
  if (h[0] !== 0x50 || h[1] !== 0x41 || h[2] !== 0x43 || h[3] !== 0x4b) {
    throw new PackError(`not a pack: it starts with ${Buffer.from(h.subarray(0, 4)).toString('hex')}, not "PACK"`);
  }
  const version = readU32(h, 4);
  if (version !== 2 && version !== 3) throw new PackError(`pack version ${version} is not supported (only 2 and 3)`);
  return readU32(h, 8);
}

export interface EntryHeader {
  type: number;
  /** Inflated size of the entry's data (for deltas: of the delta itself). */
  size: number;
  /** Length of the header in bytes. */
  len: number;
  /** OFS_DELTA: absolute offset of the base. */
  baseOffset: number;
  /** REF_DELTA: where in `buf` the base id starts. */
  baseIdAt: number;
}

/**
 * Parses the entry header at buf[start..end), the entry being at pack offset `offset`.
 * Returns null when the header continues past `end`.
 */
export function parseEntryHeader(buf: Uint8Array, start: number, end: number, offset: number): EntryHeader | null {
  let at = start;
  if (at >= end) return null;
  let c = buf[at++]!;
  const type = (c >> 4) & 7;
  let size = c & 15;
  let scale = 16;
  while (c & 0x80) {
    if (at >= end) return null;
    c = buf[at++]!;
    size += (c & 0x7f) * scale;
    scale *= 128;
    if (size > MAX_SAFE || at - start > 10) throw new PackError(`object at offset ${offset}: size field overflows`);
  }
  let baseOffset = -1;
  let baseIdAt = -1;
  switch (type) {
    case OBJ_COMMIT:
    case OBJ_TREE:
    case OBJ_BLOB:
    case OBJ_TAG:
      break;
    case OBJ_REF_DELTA:
      if (end - at < 20) return null;
      baseIdAt = at;
      at += 20;
      break;
    case OBJ_OFS_DELTA: {
      if (at >= end) return null;
      c = buf[at++]!;
      let rel = c & 127;
      while (c & 128) {
        if (at >= end) return null;
        c = buf[at++]!;
        rel = (rel + 1) * 128 + (c & 127);
        if (rel > MAX_SAFE) throw new PackError(`object at offset ${offset}: delta base offset overflows`);
      }
      if (rel <= 0 || rel > offset - 12) {
        throw new PackError(`object at offset ${offset}: delta base offset ${offset - rel} is out of bounds`);
      }
      baseOffset = offset - rel;
      break;
    }
    default:
      throw new PackError(`object at offset ${offset}: unknown object type ${type}`);
  }
  return { type, size, len: at - start, baseOffset, baseIdAt };
}

/** The header of a whole object of `type` and `size` (as git writes it when appending bases). */
export function encodeEntryHeader(type: number, size: number): Buffer {
  const out: number[] = [];
  let c = (type << 4) | (size % 16);
  let s = Math.floor(size / 16);
  while (s > 0) {
    out.push(c | 0x80);
    c = s % 128;
    s = Math.floor(s / 128);
  }
  out.push(c);
  return Buffer.from(out);
}

export function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}
