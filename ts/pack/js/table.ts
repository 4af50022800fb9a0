// What the indexer keeps per object, in growable typed arrays (a few dozen bytes per object,
// nothing per byte of content) so that multi-million-object packs stay in bounded memory.

/** Slots allocated before the first growth; the header's count is not trusted for allocation. */
const INITIAL_SLOTS = 1024;

export class ObjectTable {
  count = 0;
  offset = new Float64Array(INITIAL_SLOTS);
  /** Entry header length: the compressed data starts at offset + hdrLen. */
  hdrLen = new Uint8Array(INITIAL_SLOTS);
  crc = new Uint32Array(INITIAL_SLOTS);
  /** Entry type as stored (1..4, 6 OFS_DELTA, 7 REF_DELTA). */
  type = new Uint8Array(INITIAL_SLOTS);
  /** Object type once known (1..4); 0 while a delta is unresolved. */
  realType = new Uint8Array(INITIAL_SLOTS);
  /** Inflated size of the entry's data. */
  size = new Float64Array(INITIAL_SLOTS);
  /** Object ids, 20 bytes each, valid where realType is set. */
  oid = new Uint8Array(INITIAL_SLOTS * 20);

  /** OFS_DELTA entries: object index and base offset. */
  ofs = new GrowableU32();
  ofsBase: number[] = [];
  /** REF_DELTA entries: object index and base id (20 bytes each). */
  ref = new GrowableU32();
  refBase = new GrowableBytes();

  add(offset: number, hdrLen: number, type: number, size: number): number {
    if (this.count === this.offset.length) this.grow();
    const i = this.count++;
    this.offset[i] = offset;
    this.hdrLen[i] = hdrLen;
    this.type[i] = type;
    this.size[i] = size;
    this.realType[i] = type <= 4 ? type : 0;
    return i;
  }

  oidOf(i: number): Uint8Array {
    return this.oid.subarray(i * 20, i * 20 + 20);
  }

  private grow(): void {
    const n = this.offset.length * 2;
    this.offset = resize(this.offset, n, Float64Array);
    this.hdrLen = resize(this.hdrLen, n, Uint8Array);
    this.crc = resize(this.crc, n, Uint32Array);
    this.type = resize(this.type, n, Uint8Array);
    this.realType = resize(this.realType, n, Uint8Array);
    this.size = resize(this.size, n, Float64Array);
    this.oid = resize(this.oid, n * 20, Uint8Array);
  }
}

type TypedCtor<T> = new (n: number) => T;

function resize<T extends Float64Array | Uint32Array | Uint8Array>(a: T, n: number, C: TypedCtor<T>): T {
  const b = new C(n);
  b.set(a as never);
  return b;
}

export class GrowableU32 {
  data = new Uint32Array(64);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) this.data = resize(this.data, this.length * 2, Uint32Array);
    this.data[this.length++] = v;
  }
  view(): Uint32Array {
    return this.data.subarray(0, this.length);
  }
}

export class GrowableBytes {
  data = new Uint8Array(64 * 20);
  length = 0;
  push(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.data.length) this.data = resize(this.data, Math.max(this.data.length * 2, this.length + bytes.length), Uint8Array);
    this.data.set(bytes, this.length);
    this.length += bytes.length;
  }
}

/** Compares two 20-byte ids at the given positions. */
export function compareIds(a: Uint8Array, ai: number, b: Uint8Array, bi: number): number {
  for (let k = 0; k < 20; k++) {
    const d = a[ai + k]! - b[bi + k]!;
    if (d !== 0) return d;
  }
  return 0;
}
