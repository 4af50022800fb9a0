// The index (.git/index), version 2 (gitformat-index): a header, one entry per path sorted by
// path bytes, a SHA-1 of it all. The stat data of each entry is what lstat says about the
// file we just wrote, so git sees the work tree as clean without re-reading any file. Used
// without the addon; the Rust checkout writes the same bytes (crates/core/src/odb/index_file.rs).

import { createHash } from 'node:crypto';

/** The stat fields the index keeps (lstat/fstat with bigint: true has them all). */
export interface StatData {
  ctimeNs: bigint;
  mtimeNs: bigint;
  dev: bigint;
  ino: bigint;
  uid: bigint;
  gid: bigint;
  size: bigint;
}

export interface IndexEntry {
  /** Path relative to the work tree, '/'-separated. */
  path: string;
  /** 0o100644, 0o100755, 0o120000 or 0o160000. */
  mode: number;
  oid: string;
  /** lstat of the checked-out path; null leaves the stat fields zero (git then re-checks). */
  stat: StatData | null;
}

const ENTRY_FIXED = 62;
const NAME_MASK = 0xfff;
const NS = 1_000_000_000n;

const u32 = (v: bigint) => Number(v & 0xffffffffn);

/** Serializes entries as an index v2 file (sorted here; duplicates are a caller bug). */
export function encodeIndex(entries: IndexEntry[]): Buffer {
  const named = entries.map((e) => ({ e, name: Buffer.from(e.path, 'utf8') }));
  named.sort((a, b) => Buffer.compare(a.name, b.name));
  let total = 12;
  for (const { name } of named) total += (ENTRY_FIXED + name.length + 8) & ~7;
  const buf = Buffer.alloc(total + 20);
  buf.write('DIRC', 0, 'latin1');
  buf.writeUInt32BE(2, 4);
  buf.writeUInt32BE(named.length, 8);
  let at = 12;
  for (let i = 0; i < named.length; i++) {
    const { e, name } = named[i]!;
    if (i > 0 && named[i - 1]!.name.equals(name)) throw new Error(`duplicate index entry ${e.path}`);
    const s = e.stat;
    if (s) {
      buf.writeUInt32BE(u32(s.ctimeNs / NS), at);
      buf.writeUInt32BE(u32(s.ctimeNs % NS), at + 4);
      buf.writeUInt32BE(u32(s.mtimeNs / NS), at + 8);
      buf.writeUInt32BE(u32(s.mtimeNs % NS), at + 12);
      buf.writeUInt32BE(u32(s.dev), at + 16);
      buf.writeUInt32BE(u32(s.ino), at + 20);
      buf.writeUInt32BE(u32(s.uid), at + 28);
      buf.writeUInt32BE(u32(s.gid), at + 32);
      buf.writeUInt32BE(u32(s.size), at + 36);
    }
    buf.writeUInt32BE(e.mode, at + 24);
    buf.write(e.oid, at + 40, 'hex');
    buf.writeUInt16BE(Math.min(name.length, NAME_MASK), at + 60);
    name.copy(buf, at + ENTRY_FIXED);
    at += (ENTRY_FIXED + name.length + 8) & ~7;
  }
  createHash('sha1').update(buf.subarray(0, total)).digest().copy(buf, total);
  return buf;
}
