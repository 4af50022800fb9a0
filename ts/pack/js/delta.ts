// Git's delta format (pack-format "Deltified representation"): the base size and result size
// as varints, then copy (from the base) and insert (literal) instructions. Every instruction
// is bounds-checked: a corrupt delta is an error, never a wrong object.

import { constants as bufferConstants } from 'node:buffer';
import { PackError } from '../../errors.js';

function varint(d: Uint8Array, at: number, what: string, offset: number): [number, number] {
  let v = 0;
  let scale = 1;
  let c: number;
  do {
    if (at >= d.length) throw new PackError(`delta at offset ${offset}: truncated ${what}`);
    c = d[at++]!;
    v += (c & 0x7f) * scale;
    scale *= 128;
    if (v > Number.MAX_SAFE_INTEGER) throw new PackError(`delta at offset ${offset}: ${what} overflows`);
  } while (c & 0x80);
  return [v, at];
}

/** The result of applying `delta` (of the entry at pack offset `offset`) to `base`. */
export function applyDelta(base: Uint8Array, delta: Uint8Array, offset: number): Buffer {
  let [baseSize, at] = varint(delta, 0, 'base size', offset);
  if (baseSize !== base.length) throw new PackError(`delta at offset ${offset}: expects a base of ${baseSize} bytes, the base has ${base.length}`);
  let resultSize: number;
  [resultSize, at] = varint(delta, at, 'result size', offset);
  if (resultSize > bufferConstants.MAX_LENGTH) {
    throw new PackError(`delta at offset ${offset}: result of ${resultSize} bytes is more than this runtime can hold in one buffer`, 'use the native indexer (npm run build:native) for packs with objects this large');
  }
  const out = Buffer.allocUnsafe(resultSize);
  let put = 0;
  while (at < delta.length) {
    const cmd = delta[at++]!;
    if (cmd & 0x80) {
      let off = 0;
      let len = 0;
      for (let bit = 0; bit < 4; bit++) {
        if (cmd & (1 << bit)) {
          if (at >= delta.length) throw new PackError(`delta at offset ${offset}: truncated copy instruction`);
          off += delta[at++]! * 2 ** (8 * bit);
        }
      }
      for (let bit = 0; bit < 3; bit++) {
        if (cmd & (0x10 << bit)) {
          if (at >= delta.length) throw new PackError(`delta at offset ${offset}: truncated copy instruction`);
          len |= delta[at++]! << (8 * bit);
        }
      }
      if (len === 0) len = 0x10000;
      if (off + len > base.length) throw new PackError(`delta at offset ${offset}: copy of ${len} bytes from ${off} runs past the ${base.length}-byte base`);
      if (put + len > resultSize) throw new PackError(`delta at offset ${offset}: copy runs past the declared result size ${resultSize}`);
      out.set(base.subarray(off, off + len), put);
      put += len;
    } else if (cmd !== 0) {
      if (at + cmd > delta.length) throw new PackError(`delta at offset ${offset}: truncated insert instruction`);
      if (put + cmd > resultSize) throw new PackError(`delta at offset ${offset}: insert runs past the declared result size ${resultSize}`);
      out.set(delta.subarray(at, at + cmd), put);
      at += cmd;
      put += cmd;
    } else {
      throw new PackError(`delta at offset ${offset}: invalid instruction 0`);
    }
  }
  if (put !== resultSize) throw new PackError(`delta at offset ${offset}: produced ${put} bytes, declared ${resultSize}`);
  return out;
}
