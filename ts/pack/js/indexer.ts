// The pure-TypeScript PackIndexer: used where the native addon cannot load, and run side by
// side with it in the tests. Same files out, byte for byte; one thread, slower.

import { closeSync, fstatSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { deflate } from 'pako';
import { MissingBaseError, MpgitError, PackError } from '../../errors.js';
import type { FinishOptions, IndexProgress, IndexResult, PackIndexer } from '../types.js';
import { hashObject, typeCode, type ObjectType } from '../object.js';
import { BlockReader } from './blocks.js';
import { encodeEntryHeader, TRAILER_LEN } from './entry.js';
import { sortById, writeIdx, writeRev } from './idx.js';
import { inflateExact } from './inflate.js';
import { PackParser } from './parser.js';
import { DeltaResolver } from './resolver.js';
import { isOid } from '../../oid.js';

/** Bases kept in memory while resolving (git's core.deltaBaseCacheLimit default). */
export const DEFAULT_BASE_CACHE_BYTES = 96 << 20;
/** Read size when indexing a pack already on disk, and when re-hashing a fixed thin pack. */
const READ_CHUNK = 1 << 20;
/** zlib level of appended bases unless told: git's default (Z_BEST_SPEED), see repo/compression.ts. */
const APPEND_LEVEL = 1;

export interface JsIndexerOptions {
  /** 'create': the pack arrives through write() and is written to packPath. 'existing': packPath is read. */
  mode: 'create' | 'existing';
  maxCacheBytes?: number;
}

export class JsIndexer implements PackIndexer {
  readonly impl = 'js' as const;
  private readonly parser = new PackParser();
  private fd: number;
  private written = 0;
  private failed: unknown = null;
  private resolver: DeltaResolver | null = null;
  private resolvedInput = false;
  private dataEnd = -1;
  private readonly bases = new Map<string, { code: number; data: Buffer }>();
  private closed = false;
  private readonly reader: BlockReader;

  constructor(
    readonly packPath: string,
    private readonly opts: JsIndexerOptions,
  ) {
    this.fd = openSync(packPath, opts.mode === 'create' ? 'wx+' : 'r', 0o644);
    this.reader = new BlockReader(this.fd, packPath);
  }

  write(chunk: Buffer): number {
    if (this.failed) throw this.failed;
    if (this.resolvedInput) throw new MpgitError('MPGIT_USAGE', 'write() after resolve(): the pack input has already ended');
    if (!chunk.length) return 0;
    try {
      if (this.opts.mode === 'create') {
        let done = 0;
        while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done, this.written + done);
        this.written += chunk.length;
      }
      this.parser.push(chunk);
    } catch (e) {
      this.failed = e;
      throw e;
    }
    return 0;
  }

  /** Feeds the pack on disk through the first pass ('existing' mode). */
  async readExisting(onChunk?: () => void): Promise<void> {
    const size = fstatSync(this.fd).size;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (let pos = 0; pos < size; ) {
      const n = readSync(this.fd, buf, 0, Math.min(READ_CHUNK, size - pos), pos);
      if (n === 0) break;
      this.parser.push(buf.subarray(0, n));
      pos += n;
      onChunk?.();
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  progress(): IndexProgress {
    const p = this.parser;
    return {
      bytes: p.bytes,
      objectsTotal: Math.max(p.objectsTotal, 0),
      objectsReceived: p.objectsReceived,
      deltasTotal: p.deltasTotal,
      deltasResolved: this.resolver?.resolved ?? 0,
    };
  }

  async resolve(): Promise<{ missing: string[] }> {
    if (this.failed) throw this.failed;
    this.resolvedInput = true;
    this.parser.end();
    this.dataEnd = this.parser.dataEnd;
    const t = this.parser.table;
    this.resolver = new DeltaResolver(t, (i) => this.readEntry(i), this.opts.maxCacheBytes ?? DEFAULT_BASE_CACHE_BYTES);
    await this.resolver.resolveAll();
    const missing: string[] = [];
    const seen = new Set<string>();
    for (const k of this.resolver.unresolvedRefDeltas()) {
      const hex = Buffer.from(t.refBase.data.subarray(k * 20, k * 20 + 20)).toString('hex');
      if (!seen.has(hex)) {
        seen.add(hex);
        missing.push(hex);
      }
    }
    return { missing };
  }

  addBase(oid: string, type: ObjectType, data: Buffer): void {
    if (!isOid(oid)) throw new TypeError(`addBase: ${JSON.stringify(oid)} is not an object id`);
    const code = typeCode(type);
    const actual = hashObject(code, data).toString('hex');
    if (actual !== oid) {
      throw new MpgitError('MPGIT_CORRUPT_OBJECT', `local object ${oid} is corrupt: its content hashes to ${actual}`, 'run `git fsck` on the repository');
    }
    this.bases.set(oid, { code, data });
  }

  async finish(opts: FinishOptions): Promise<IndexResult> {
    if (!this.resolver) throw new MpgitError('MPGIT_USAGE', 'finish() before resolve()');
    const t = this.parser.table;
    const deltaCount = this.parser.deltasTotal;
    let appended = 0;
    let checksum = this.parser.checksum!;
    if (this.resolver.resolved < deltaCount && opts.fixThin) {
      if (this.opts.mode !== 'create') throw new MpgitError('MPGIT_USAGE', '--fix-thin needs the pack to arrive through the indexer (--stdin)');
      appended = await this.appendBases(opts.compressionLevel ?? APPEND_LEVEL);
      if (appended) checksum = this.rewriteHeaderAndTrailer();
    }
    const unresolved = deltaCount - this.resolver.resolved;
    if (unresolved > 0) {
      this.checkOfsBases();
      const bases = this.resolver.unresolvedRefDeltas().map((k) => Buffer.from(t.refBase.data.subarray(k * 20, k * 20 + 20)).toString('hex'));
      const named = [...new Set(bases)];
      throw new MissingBaseError(
        `pack has ${unresolved} unresolved delta${unresolved === 1 ? '' : 's'}` +
          (named.length ? `; missing base${named.length === 1 ? '' : 's'}: ${named.slice(0, 3).join(', ')}${named.length > 3 ? ', ...' : ''}` : ''),
      );
    }
    const order = sortById(t);
    writeIdx(opts.idxPath, t, order, checksum);
    try {
      if (opts.revPath) writeRev(opts.revPath, t, order, checksum);
    } catch (e) {
      rmSync(opts.idxPath, { force: true });
      throw e;
    }
    this.close();
    return {
      packPath: this.packPath,
      idxPath: opts.idxPath,
      revPath: opts.revPath,
      packChecksum: checksum.toString('hex'),
      objectCount: t.count,
      deltaCount,
      appendedBases: appended,
    };
  }

  abort(): void {
    this.close();
    if (this.opts.mode === 'create') rmSync(this.packPath, { force: true });
  }

  /** Closes the pack file (after finish, or when giving up on an existing pack). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  /** An unresolved OFS_DELTA whose base offset is no entry's start is corruption, not a thin pack. */
  private checkOfsBases(): void {
    const t = this.parser.table;
    const ofs = t.ofs.view();
    for (let k = 0; k < ofs.length; k++) {
      const i = ofs[k]!;
      if (t.realType[i] !== 0) continue;
      const base = t.ofsBase[k]!;
      let lo = 0;
      let hi = i;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (t.offset[mid]! < base) lo = mid + 1;
        else hi = mid;
      }
      if (t.offset[lo] !== base) throw new PackError(`delta at offset ${t.offset[i]}: its base offset ${base} is not the start of an object`);
    }
  }

  /** The inflated data of entry i, re-read from the pack file. */
  private readEntry(i: number): Buffer {
    const t = this.parser.table;
    const start = t.offset[i]! + t.hdrLen[i]!;
    const end = i + 1 < t.count ? t.offset[i + 1]! : this.dataEnd;
    return inflateExact(this.reader.read(start, end - start), t.size[i]!, t.offset[i]!);
  }

  /**
   * --fix-thin, as git does it: walk the unresolved REF_DELTAs in pack order; for each whose
   * base is still missing and was supplied, append the base as a whole object (deflated like
   * git, so the bytes match) and resolve what it unlocks. Returns how many were appended.
   */
  private async appendBases(level: number): Promise<number> {
    const t = this.parser.table;
    const resolver = this.resolver!;
    let at = this.dataEnd;
    let appended = 0;
    for (const k of resolver.unresolvedRefDeltas()) {
      if (t.realType[t.ref.data[k]!] !== 0) continue;
      const id = Buffer.from(t.refBase.data.subarray(k * 20, k * 20 + 20));
      const base = this.bases.get(id.toString('hex'));
      if (!base) continue;
      const head = encodeEntryHeader(base.code, base.data.length);
      const body = deflate(base.data, { level: (level < 0 ? 6 : level) as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9, legacyHash: true });
      this.writeAt(head, at);
      this.writeAt(body, at + head.length);
      const i = t.add(at, head.length, base.code, base.data.length);
      t.crc[i] = crc32(body, crc32(head));
      t.oid.set(id, i * 20);
      at += head.length + body.length;
      this.dataEnd = at;
      appended++;
      await resolver.resolveFrom(i, base.data);
    }
    return appended;
  }

  /** After appending: the new object count in the header, and a new trailer over it all. */
  private rewriteHeaderAndTrailer(): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(this.parser.table.count);
    this.writeAt(count, 8);
    const hash = createHash('sha1');
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (let pos = 0; pos < this.dataEnd; ) {
      const n = readSync(this.fd, buf, 0, Math.min(READ_CHUNK, this.dataEnd - pos), pos);
      if (n === 0) throw new PackError(`${this.packPath} is shorter than what was written to it (offset ${pos})`);
      hash.update(buf.subarray(0, n));
      pos += n;
    }
    const sum = hash.digest();
    this.writeAt(sum, this.dataEnd);
    ftruncateSync(this.fd, this.dataEnd + TRAILER_LEN);
    return sum;
  }

  private writeAt(bytes: Uint8Array, pos: number): void {
    this.reader.invalidate(pos, bytes.length);
    for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done, pos + done);
  }
}
