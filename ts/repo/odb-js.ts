// The object reader under the WebAssembly core (until that core reads objects itself): packs
// through their .idx v2 (read in windows kept in a bounded LRU), loose objects, alternates;
// delta chains resolved with a bounded cache of bases, as git does. Exact inflate and delta
// application are the core's (Rust: the native indexer's), through its codec area.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve, isAbsolute } from 'node:path';
import { inflateSync } from 'node:zlib';
import { PackError, MpgitError } from '../errors.js';
import { typeName, type ObjectType } from '../pack/object.js';
import { coreCall, type CodecCore } from '../core/index.js';
import { isOid, OID_PATTERN } from '../oid.js';
import { parseCommit } from './objects.js';
import type { CommitInfo, GitObject, ObjectDb } from './odb-types.js';
import { BaseCache, PackFile, WINDOW_CACHE_BYTES, WindowCache } from './pack-file.js';

const PACK_IDX = new RegExp(`^pack-${OID_PATTERN}\\.idx$`);

/** Bytes of resolved delta bases kept (git's core.deltaBaseCacheLimit default). */
const DELTA_BASE_CACHE_BYTES = 96 << 20;
/** Longest delta chain we follow (git's pack.depth tops out at 4095). */
const MAX_DELTA_CHAIN = 10_000;
/** How deep objects/info/alternates may nest. */
const MAX_ALTERNATE_DEPTH = 5;

export interface JsOdbOptions {
  /** How much of the packs to keep in memory. */
  windowCacheBytes?: number;
  /** How many bytes of resolved delta bases (smaller when several readers share a machine). */
  baseCacheBytes?: number;
}

export class JsObjectDb implements ObjectDb {
  readonly impl = 'js' as const;
  readonly handle = null;
  private packs: PackFile[] = [];
  private readonly objectDirs: string[] = [];
  private cache: BaseCache;
  private readonly packIds = new Map<PackFile, number>();
  private readonly windows: WindowCache;
  private readonly baseCacheBytes: number;

  constructor(
    readonly gitDir: string,
    private readonly codec: CodecCore,
    opts: JsOdbOptions = {},
  ) {
    this.windows = new WindowCache(opts.windowCacheBytes ?? WINDOW_CACHE_BYTES);
    this.baseCacheBytes = opts.baseCacheBytes ?? DELTA_BASE_CACHE_BYTES;
    this.cache = new BaseCache(this.baseCacheBytes);
    this.addObjectDir(join(gitDir, 'objects'), 0);
  }

  private addObjectDir(dir: string, depth: number): void {
    const abs = resolve(dir);
    if (this.objectDirs.includes(abs)) return;
    if (!existsSync(abs)) {
      if (depth === 0) throw new MpgitError('MPGIT_NOT_A_REPO', `${abs} does not exist`, 'run this inside a git repository');
      return;
    }
    this.objectDirs.push(abs);
    this.scanPacks(abs);
    const alt = join(abs, 'info', 'alternates');
    if (depth < MAX_ALTERNATE_DEPTH && existsSync(alt)) {
      for (const line of readFileSync(alt, 'utf8').split('\n')) {
        const p = line.trim();
        if (!p || p.startsWith('#')) continue;
        this.addObjectDir(isAbsolute(p) ? p : join(abs, p), depth + 1);
      }
    }
  }

  private scanPacks(objectDir: string): void {
    const packDir = join(objectDir, 'pack');
    if (!existsSync(packDir)) return;
    const known = new Set(this.packs.map((p) => p.idxPath));
    for (const name of readdirSync(packDir).sort()) {
      if (!PACK_IDX.test(name)) continue;
      const idxPath = join(packDir, name);
      const packPath = idxPath.replace(/\.idx$/, '.pack');
      if (known.has(idxPath) || !existsSync(packPath)) continue;
      this.addPack(packPath, idxPath);
    }
  }

  addPack(packPath: string, idxPath: string): void {
    if (this.packs.some((p) => p.idxPath === idxPath)) return;
    const p = new PackFile(packPath, idxPath, this.windows);
    this.packIds.set(p, this.packIds.size);
    // Newest first: recent objects are asked for most.
    this.packs.unshift(p);
  }

  close(): void {
    // Closing twice is harmless: the packs are gone after the first.
    for (const p of this.packs) p.close();
    this.packs = [];
  }

  releaseCaches(): void {
    for (const p of this.packs) this.windows.drop(p);
    this.cache = new BaseCache(this.baseCacheBytes);
  }

  async read(oid: string): Promise<GitObject | null> {
    return this.readSync(oid);
  }

  async has(oid: string): Promise<boolean> {
    return this.hasSync(oid);
  }

  readCommit(oid: string): CommitInfo | null {
    const o = this.readSync(oid);
    return o && o.type === 'commit' ? parseCommit(o.data, oid) : null;
  }

  hasSync(oid: string): boolean {
    if (!isOid(oid)) return false;
    const bin = Buffer.from(oid, 'hex');
    for (const p of this.packs) if (p.find(bin) >= 0) return true;
    return this.objectDirs.some((d) => existsSync(join(d, oid.slice(0, 2), oid.slice(2))));
  }

  readSync(oid: string): GitObject | null {
    if (!isOid(oid)) return null;
    const bin = Buffer.from(oid, 'hex');
    for (const p of this.packs) {
      const i = p.find(bin);
      if (i >= 0) return this.readPacked(p, p.offsetAt(i));
    }
    for (const d of this.objectDirs) {
      const path = join(d, oid.slice(0, 2), oid.slice(2));
      if (existsSync(path)) return readLoose(path);
    }
    return null;
  }

  /** Reads the object at `offset` of `pack`, resolving its delta chain. */
  private readPacked(pack: PackFile, offset: number): GitObject {
    const id = this.packIds.get(pack)!;
    const chain: { offset: number; size: number; data: Buffer }[] = [];
    let base: GitObject | null = null;
    let at = offset;
    for (;;) {
      const cached = this.cache.get(`${id}:${at}`);
      if (cached) {
        base = cached;
        break;
      }
      const e = pack.entry(at);
      if (e.baseOffset >= 0 || e.baseOid !== null) {
        chain.push({ offset: at, size: e.size, data: e.data });
        if (chain.length > MAX_DELTA_CHAIN) throw new PackError(`${pack.packPath}: delta chain longer than ${MAX_DELTA_CHAIN} at offset ${offset}`);
        if (e.baseOffset >= 0) {
          at = e.baseOffset;
          continue;
        }
        const i = pack.find(Buffer.from(e.baseOid!, 'hex'));
        if (i >= 0) {
          at = pack.offsetAt(i);
          continue;
        }
        // A base outside this pack (never in packs git writes, but allowed to read).
        const ext = this.readSync(e.baseOid!);
        if (!ext) throw new PackError(`${pack.packPath}: delta base ${e.baseOid} is missing`);
        base = ext;
        break;
      }
      base = { type: typeName(e.type), data: this.inflate(e.data, e.size, at) };
      if (chain.length) this.cache.set(`${id}:${at}`, base);
      break;
    }
    let obj = base;
    for (let i = chain.length - 1; i >= 0; i--) {
      const d = chain[i]!;
      obj = { type: obj.type, data: this.applyDelta(obj.data, this.inflate(d.data, d.size, d.offset), d.offset) };
      if (i > 0) this.cache.set(`${id}:${d.offset}`, obj);
    }
    return obj;
  }

  private inflate(data: Uint8Array, size: number, offset: number): Buffer {
    return coreCall(() => this.codec.inflateExact(data, size, offset));
  }

  private applyDelta(base: Uint8Array, delta: Uint8Array, offset: number): Buffer {
    return coreCall(() => this.codec.applyDelta(base, delta, offset));
  }
}

/** A loose object: zlib("<type> <size>\0<data>"). */
function readLoose(path: string): GitObject {
  let raw: Buffer;
  try {
    raw = inflateSync(readFileSync(path));
  } catch (e) {
    throw new PackError(`loose object ${path} is corrupt (${(e as Error).message})`, 'run `git fsck` on the repository');
  }
  const nul = raw.indexOf(0);
  const m = nul > 0 ? /^(commit|tree|blob|tag) (\d+)$/.exec(raw.toString('latin1', 0, nul)) : null;
  if (!m || Number(m[2]) !== raw.length - nul - 1) throw new PackError(`loose object ${path} has a bad header`, 'run `git fsck` on the repository');
  return { type: m[1] as ObjectType, data: raw.subarray(nul + 1) };
}
