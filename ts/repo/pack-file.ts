// Reading packs in TypeScript (the WebAssembly core's object reader): a pack and its .idx v2
// through positioned reads, in windows kept in a bounded LRU shared by every pack of one object
// database, and the bounded LRU of resolved delta bases; entry headers (pack-format: type and
// size in a base-128 varint, then the delta base, a negative offset or a 20-byte id).

import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { PackError } from '../errors.js';
import { OBJ_BLOB, OBJ_COMMIT, OBJ_OFS_DELTA, OBJ_REF_DELTA, OBJ_TAG, OBJ_TREE } from '../pack/object.js';
import type { GitObject } from './odb-types.js';

const IDX_MAGIC = 0xff744f63;
/**
 * Packs are read in windows of this size, kept in a bounded LRU (git's packedGitWindowSize
 * and packedGitLimit, in spirit): one read per window instead of one per object.
 */
const WINDOW_BYTES = 32 << 20;
export const WINDOW_CACHE_BYTES = 512 << 20;
/** Longest valid entry header: 10 size bytes + 20 id bytes (or 10 offset bytes). */
const MAX_ENTRY_HEADER_LEN = 32;
/** Sizes and offsets stay exact JavaScript numbers. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** The windows of every open pack of one object database, least recently used dropped first. */
export class WindowCache {
  private map = new Map<PackFile, Map<number, Buffer>>();
  private order = new Map<string, [PackFile, number]>();
  private ids = new Map<PackFile, number>();
  private bytes = 0;
  constructor(private readonly limit: number) {}

  get(pack: PackFile, w: number): Buffer {
    let wins = this.map.get(pack);
    if (!wins) {
      wins = new Map();
      this.map.set(pack, wins);
      this.ids.set(pack, this.ids.size);
    }
    const key = `${this.ids.get(pack)}:${w}`;
    let buf = wins.get(w);
    if (buf) {
      this.order.delete(key);
      this.order.set(key, [pack, w]);
      return buf;
    }
    buf = pack.loadWindow(w);
    wins.set(w, buf);
    this.order.set(key, [pack, w]);
    this.bytes += buf.length;
    for (const [k, [p, i]] of this.order) {
      if (this.bytes <= this.limit || k === key) break;
      const b = this.map.get(p)?.get(i);
      this.map.get(p)?.delete(i);
      this.order.delete(k);
      this.bytes -= b?.length ?? 0;
    }
    return buf;
  }

  drop(pack: PackFile): void {
    const wins = this.map.get(pack);
    if (!wins) return;
    for (const [w, b] of wins) {
      this.order.delete(`${this.ids.get(pack)}:${w}`);
      this.bytes -= b.length;
    }
    this.map.delete(pack);
  }
}

/** One pack and its .idx v2, read through positioned reads on the pack's descriptor. */
export class PackFile {
  private fd: number;
  readonly count: number;
  readonly size: number;
  private readonly fanout: Uint32Array;
  private readonly names: Buffer;
  private readonly offsets32: Buffer;
  private readonly offsets64: Buffer;
  private sortedOffsets: Float64Array | null = null;

  constructor(
    readonly packPath: string,
    readonly idxPath: string,
    private readonly windows: WindowCache,
  ) {
    const idx = readFileSync(idxPath);
    if (idx.length < 8 + 1024 + 40 || idx.readUInt32BE(0) !== IDX_MAGIC || idx.readUInt32BE(4) !== 2) {
      throw new PackError(`${idxPath} is not a version 2 pack index`, 'run `git index-pack` on the pack to rebuild its index');
    }
    this.fanout = new Uint32Array(256);
    for (let i = 0; i < 256; i++) this.fanout[i] = idx.readUInt32BE(8 + i * 4);
    const n = this.fanout[255]!;
    this.count = n;
    const namesAt = 8 + 1024;
    const offAt = namesAt + n * 20 + n * 4;
    if (idx.length < offAt + n * 4 + 40) throw new PackError(`${idxPath} is truncated`);
    this.names = idx.subarray(namesAt, namesAt + n * 20);
    this.offsets32 = idx.subarray(offAt, offAt + n * 4);
    this.offsets64 = idx.subarray(offAt + n * 4, idx.length - 40);
    this.fd = openSync(packPath, 'r');
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.windows.drop(this);
  }

  /** Position of `oid` (20 bytes) in the index, or -1. */
  find(oid: Buffer): number {
    const b = oid[0]!;
    let lo = b === 0 ? 0 : this.fanout[b - 1]!;
    let hi = this.fanout[b]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.names.compare(oid, 0, 20, mid * 20, mid * 20 + 20);
      if (c === 0) return mid;
      if (c > 0) hi = mid;
      else lo = mid + 1;
    }
    return -1;
  }

  offsetAt(i: number): number {
    const o = this.offsets32.readUInt32BE(i * 4);
    if (!(o & 0x80000000)) return o;
    const at = (o & 0x7fffffff) * 8;
    if (at + 8 > this.offsets64.length) throw new PackError(`${this.idxPath}: large offset out of range`);
    return Number(this.offsets64.readBigUInt64BE(at));
  }

  /** Where the entry that follows the one at `offset` starts (the trailer, for the last). */
  private entryEnd(offset: number): number {
    if (!this.sortedOffsets) {
      const s = new Float64Array(this.count);
      for (let i = 0; i < this.count; i++) s[i] = this.offsetAt(i);
      s.sort();
      this.sortedOffsets = s;
    }
    const s = this.sortedOffsets;
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo < s.length ? s[lo]! : this.size - 20;
  }

  /** Bytes [pos, pos+len) of the pack: a view into a cached window when it fits in one. */
  private read(pos: number, len: number): Buffer {
    const w = Math.floor(pos / WINDOW_BYTES);
    if (Math.floor((pos + len - 1) / WINDOW_BYTES) === w) {
      const win = this.windows.get(this, w);
      const at = pos - w * WINDOW_BYTES;
      if (at + len > win.length) throw new PackError(`${this.packPath} is truncated at offset ${w * WINDOW_BYTES + win.length}`);
      return win.subarray(at, at + len);
    }
    return this.readDirect(pos, len);
  }

  /** Reads window `w` from disk (called by the window cache). */
  loadWindow(w: number): Buffer {
    const start = w * WINDOW_BYTES;
    return this.readDirect(start, Math.min(WINDOW_BYTES, this.size - start));
  }

  private readDirect(pos: number, len: number): Buffer {
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, buf, got, len - got, pos + got);
      if (n === 0) throw new PackError(`${this.packPath} is truncated at offset ${pos + got}`);
      got += n;
    }
    return buf;
  }

  /** The raw entry at `offset`: its type, declared size, delta base and compressed bytes. */
  entry(offset: number): { type: number; size: number; baseOffset: number; baseOid: string | null; data: Buffer } {
    const end = this.entryEnd(offset);
    if (offset < 12 || end <= offset || end > this.size - 20) throw new PackError(`${this.packPath}: bad entry offset ${offset}`);
    const raw = this.read(offset, end - offset);
    const h = parseEntryHeader(raw, 0, Math.min(raw.length, MAX_ENTRY_HEADER_LEN), offset);
    if (!h) throw new PackError(`${this.packPath}: the entry header at offset ${offset} runs past the entry`);
    const baseOid = h.baseIdAt >= 0 ? raw.toString('hex', h.baseIdAt, h.baseIdAt + 20) : null;
    return { type: h.type, size: h.size, baseOffset: h.baseOffset, baseOid, data: raw.subarray(h.len) };
  }
}

/** LRU of resolved delta bases, bounded in bytes. */
export class BaseCache {
  private map = new Map<string, GitObject>();
  private bytes = 0;
  constructor(private readonly limit: number) {}
  get(key: string): GitObject | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: GitObject): void {
    if (v.data.length > this.limit / 4 || this.map.has(key)) return;
    this.map.set(key, v);
    this.bytes += v.data.length;
    for (const [k, old] of this.map) {
      if (this.bytes <= this.limit) break;
      this.map.delete(k);
      this.bytes -= old.data.length;
    }
  }
}

interface EntryHeader {
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
function parseEntryHeader(buf: Uint8Array, start: number, end: number, offset: number): EntryHeader | null {
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
