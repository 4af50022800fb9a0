// Packs and objects built byte by byte, for hostile servers: entries whose headers lie about
// their size, deltas against bases that are not there, trees with names git refuses. Each
// defect is exactly the one meant; everything else is well-formed (zlib, the trailer).

import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';

export type ObjType = 'commit' | 'tree' | 'blob' | 'tag';
const TYPE_CODE: Record<ObjType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const OFS_DELTA = 6;
const REF_DELTA = 7;

export function objectId(type: ObjType, data: Buffer): string {
  return createHash('sha1').update(`${type} ${data.length}\0`).update(data).digest('hex');
}

/** An entry header: type, size (little-endian base-128 after the first 4 bits). */
export function entryHeader(code: number, size: number | bigint): Buffer {
  let s = BigInt(size);
  const out = [Number((BigInt(code) << 4n) | (s & 15n))];
  s >>= 4n;
  while (s > 0n) {
    out[out.length - 1]! |= 0x80;
    out.push(Number(s & 0x7fn));
    s >>= 7n;
  }
  return Buffer.from(out);
}

function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let c = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) c |= 0x80;
    out.push(c);
  } while (v > 0n);
  return Buffer.from(out);
}

/** A delta: base size, result size, instructions (use `copy` and `insert`). */
export function delta(baseSize: number, resultSize: number | bigint, ops: Buffer[]): Buffer {
  return Buffer.concat([varint(baseSize), varint(resultSize), ...ops]);
}

/** Copy `len` bytes (1..0xffffff) at `offset` of the base. */
export function copy(offset: number, len: number): Buffer {
  const args: number[] = [];
  let op = 0x80;
  for (let i = 0; i < 4; i++) {
    const b = (offset >>> (8 * i)) & 0xff;
    if (b) {
      op |= 1 << i;
      args.push(b);
    }
  }
  for (let i = 0; i < 3; i++) {
    const b = (len >>> (8 * i)) & 0xff;
    if (b) {
      op |= 0x10 << i;
      args.push(b);
    }
  }
  return Buffer.from([op, ...args]);
}

export function insert(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

export type PackEntry =
  | { type: ObjType; data: Buffer; declaredSize?: number | bigint }
  | { refBase: string; delta: Buffer }
  | { ofsBase: number; delta: Buffer };

/** A pack (version 2) of `entries`, with a correct trailer unless `trailer` is given. */
export function buildPack(entries: PackEntry[], opts: { count?: number } = {}): Buffer {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(opts.count ?? entries.length, 8);
  const parts: Buffer[] = [head];
  const offsets: number[] = [];
  let at = 12;
  for (const e of entries) {
    offsets.push(at);
    let bytes: Buffer;
    if ('type' in e) bytes = Buffer.concat([entryHeader(TYPE_CODE[e.type], e.declaredSize ?? e.data.length), deflateSync(e.data)]);
    else if ('refBase' in e) bytes = Buffer.concat([entryHeader(REF_DELTA, e.delta.length), Buffer.from(e.refBase, 'hex'), deflateSync(e.delta)]);
    else {
      // git's encoding of the distance back: each continuation byte stands for one more.
      let v = at - offsets[e.ofsBase]!;
      const o: number[] = [v & 0x7f];
      while ((v >>>= 7)) o.unshift(0x80 | (--v & 0x7f));
      bytes = Buffer.concat([entryHeader(OFS_DELTA, e.delta.length), Buffer.from(o), deflateSync(e.delta)]);
    }
    parts.push(bytes);
    at += bytes.length;
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

export interface TreeEntry {
  mode: string;
  name: string | Buffer;
  oid: string;
}

export function treeData(entries: TreeEntry[]): Buffer {
  return Buffer.concat(entries.map((e) => Buffer.concat([Buffer.from(`${e.mode} `), Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name), Buffer.from([0]), Buffer.from(e.oid, 'hex')])));
}

export function commitData(tree: string, parents: string[] = [], message = 'hostile\n'): Buffer {
  const who = 'Hostile <h@example.com> 1700000000 +0000';
  return Buffer.from(`tree ${tree}\n${parents.map((p) => `parent ${p}\n`).join('')}author ${who}\ncommitter ${who}\n\n${message}`);
}

/** A one-commit history: blobs by path (one directory level), the tree, the commit; its pack. */
export function history(files: { name: string | Buffer; data: Buffer; mode?: string }[], extraTrees: TreeEntry[] = []): { commit: string; tree: string; pack: Buffer; entries: PackEntry[] } {
  const entries: PackEntry[] = [];
  const tes: TreeEntry[] = [...extraTrees];
  for (const f of files) {
    entries.push({ type: 'blob', data: f.data });
    tes.push({ mode: f.mode ?? '100644', name: f.name, oid: objectId('blob', f.data) });
  }
  const t = treeData(tes);
  const c = commitData(objectId('tree', t));
  entries.push({ type: 'tree', data: t }, { type: 'commit', data: c });
  return { commit: objectId('commit', c), tree: objectId('tree', t), pack: buildPack(entries), entries };
}
