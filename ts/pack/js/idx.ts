// The pack index, version 2 (gitformat-pack "Version 2 pack-*.idx files"), and the reverse
// index (.rev, "pack-*.rev files"), written byte for byte as git writes them.

import { HashedFile } from './hashfile.js';
import { compareIds, type ObjectTable } from './table.js';

/** Offsets from 2^31 up go to the 8-byte table (git's need_large_offset). */
const LARGE_OFFSET = 0x80000000;

/** Object indices sorted by id (ties, which only a duplicated object makes, by offset). */
export function sortById(t: ObjectTable): Uint32Array {
  const order = new Uint32Array(t.count);
  for (let i = 0; i < t.count; i++) order[i] = i;
  const oid = t.oid;
  order.sort((a, b) => compareIds(oid, a * 20, oid, b * 20) || t.offset[a]! - t.offset[b]!);
  return order;
}

/** Writes `path` as the v2 index of the objects in `t`; returns the index's checksum. */
export function writeIdx(path: string, t: ObjectTable, order: Uint32Array, packChecksum: Uint8Array): Buffer {
  const f = new HashedFile(path);
  try {
    f.write(Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]));
    const fanout = new Uint32Array(256);
    for (let i = 0; i < t.count; i++) fanout[t.oid[i * 20]!]!++;
    let sum = 0;
    for (let b = 0; b < 256; b++) {
      sum += fanout[b]!;
      f.u32(sum);
    }
    for (const i of order) f.write(t.oid.subarray(i * 20, i * 20 + 20));
    for (const i of order) f.u32(t.crc[i]!);
    const large: number[] = [];
    for (const i of order) {
      const off = t.offset[i]!;
      if (off >= LARGE_OFFSET) {
        f.u32(LARGE_OFFSET | large.length);
        large.push(off);
      } else {
        f.u32(off);
      }
    }
    for (const off of large) {
      f.u32(Math.floor(off / 2 ** 32));
      f.u32(off % 2 ** 32);
    }
    f.write(packChecksum);
    return f.commit();
  } catch (e) {
    f.discard();
    throw e;
  }
}

/** Writes `path` as the reverse index: idx positions in pack order ("RIDX", version 1, SHA-1). */
export function writeRev(path: string, t: ObjectTable, order: Uint32Array, packChecksum: Uint8Array): Buffer {
  const position = new Uint32Array(t.count);
  for (let k = 0; k < order.length; k++) position[order[k]!] = k;
  // Objects sit in the table in pack order (the parse order; appended bases follow).
  const byOffset = new Uint32Array(t.count);
  for (let i = 0; i < t.count; i++) byOffset[i] = i;
  byOffset.sort((a, b) => t.offset[a]! - t.offset[b]!);
  const f = new HashedFile(path);
  try {
    f.write(Buffer.from('RIDX'));
    f.u32(1);
    f.u32(1);
    for (const i of byOffset) f.u32(position[i]!);
    f.write(packChecksum);
    return f.commit();
  } catch (e) {
    f.discard();
    throw e;
  }
}
