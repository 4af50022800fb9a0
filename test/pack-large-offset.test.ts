// Packs past 2 GiB: objects beyond offset 2^31 go to the .idx's 8-byte offset table, and
// OFS_DELTA distances beyond 32 bits must decode. The pack is made directly: a 2.1 GiB blob
// of zeros in stored deflate blocks, written sparse (only the block headers touch the disk),
// between small objects and deltas. The indexer of the core this process loads, and that of
// the other core through the command line, must write git's .idx and .rev for it.

import test from 'ava';
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { indexPackFile } from '../ts/pack/indexer.js';
import { core } from '../ts/core/index.js';
import { measure } from '../benches/lib/bench.js';
import { git, MPGIT } from './helpers/proc.js';

const HUGE = 2 ** 31 + 150 * 2 ** 20;
const STORED_BLOCK = 65535;

function entryHeader(type: number, size: number): Buffer {
  const out = [(type << 4) | (size % 16)];
  let s = Math.floor(size / 16);
  if (s > 0) out[0]! |= 0x80;
  while (s > 0) {
    const c = s % 128;
    s = Math.floor(s / 128);
    out.push(c | (s > 0 ? 0x80 : 0));
  }
  return Buffer.from(out);
}

function ofsDistance(rel: number): Buffer {
  const bytes = [rel % 128];
  let r = Math.floor(rel / 128);
  while (r > 0) {
    r -= 1;
    bytes.unshift((r % 128) | 0x80);
    r = Math.floor(r / 128);
  }
  return Buffer.from(bytes);
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    out.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return out;
}

/** Writes the pack to `path` (git's index of it is what ours are compared with). */
function writeHugePack(path: string): void {
  const fd = openSync(path, 'w');
  const hash = createHash('sha1');
  let pos = 0;
  const put = (b: Buffer) => {
    writeSync(fd, b, 0, b.length, pos);
    hash.update(b);
    pos += b.length;
  };
  const small1 = Buffer.from('the first small blob, before the big one\n'.repeat(20));
  const small2 = Buffer.from('a second small blob, after it\n'.repeat(10));
  const head = Buffer.alloc(12);
  head.write('PACK');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(5, 8);
  put(head);
  const small1At = pos;
  put(Buffer.concat([entryHeader(3, small1.length), deflateSync(small1)]));

  // The huge blob: zlib header, stored blocks of zeros (left as holes), adler32 of zeros.
  put(Buffer.concat([entryHeader(3, HUGE), Buffer.from([0x78, 0x01])]));
  const zeros = Buffer.alloc(1 << 20);
  let left = HUGE;
  let pendingZeros = 0;
  const flushZeros = () => {
    // Hash the zeros without writing them: the file gets holes there.
    for (let n = pendingZeros; n > 0; n -= Math.min(n, zeros.length)) hash.update(zeros.subarray(0, Math.min(n, zeros.length)));
    pos += pendingZeros;
    pendingZeros = 0;
  };
  while (left > 0) {
    const n = Math.min(STORED_BLOCK, left);
    left -= n;
    const blockHead = Buffer.from([left === 0 ? 1 : 0, n & 0xff, n >> 8, ~n & 0xff, (~n >> 8) & 0xff]);
    flushZeros();
    put(blockHead);
    pendingZeros = n;
  }
  flushZeros();
  const b = HUGE % 65521;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE(((b << 16) | 1) >>> 0);
  put(adler);

  // Past 2^31: a whole object, an OFS_DELTA reaching back over the huge blob, and another
  // OFS_DELTA on the object just before it.
  const small2At = pos;
  put(Buffer.concat([entryHeader(3, small2.length), deflateSync(small2)]));
  const copyAll = (len: number) => [0x80 | 0x10 | 0x20, len & 0xff, len >> 8];
  const d1 = Buffer.from([...varint(small1.length), ...varint(small1.length + 6), ...copyAll(small1.length), 6, ...Buffer.from('added\n')]);
  const d1At = pos;
  put(Buffer.concat([entryHeader(6, d1.length), ofsDistance(d1At - small1At), deflateSync(d1)]));
  const d2 = Buffer.from([...varint(small2.length), ...varint(small2.length + 4), 4, ...Buffer.from('new\n'), ...copyAll(small2.length)]);
  const d2At = pos;
  put(Buffer.concat([entryHeader(6, d2.length), ofsDistance(d2At - small2At), deflateSync(d2)]));
  const sum = hash.digest();
  writeSync(fd, sum, 0, 20, pos);
  ftruncateSync(fd, pos + 20);
  closeSync(fd);
}

/** The pack and git's index of it, made once for both indexers. */
let fixture: Promise<{ pack: string; dir: string; sum: string; idx: Buffer; rev: Buffer }> | null = null;
const made: string[] = [];
test.after.always(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function hugePack() {
  fixture ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpgit-large-'));
    made.push(dir);
    const pack = join(dir, 'huge.pack');
    writeHugePack(pack);
    const sum = (await git(['index-pack', '--rev-index', '-o', join(dir, 'git.idx'), pack], { timeoutMs: 6 * 60_000 })).stdout.trim();
    return { pack, dir, sum, idx: readFileSync(join(dir, 'git.idx')), rev: readFileSync(join(dir, 'git.rev')) };
  })();
  return fixture;
}

test(`${core.kind}: a pack past 2 GiB gets git's .idx (with its 8-byte offsets) and .rev`, async (t) => {
  t.timeout(8 * 60_000);
  const f = await hugePack();
  // 5 objects, 3 of them past 2^31: git's idx carries 3 large offsets (8 bytes each).
  t.is(f.idx.length, 8 + 1024 + 5 * (20 + 4 + 4) + 3 * 8 + 40);
  const idxPath = join(f.dir, `${core.kind}.idx`);
  const revPath = join(f.dir, `${core.kind}.rev`);
  const r = await indexPackFile(f.pack, { idxPath, revPath });
  t.is(r.packChecksum, f.sum);
  t.is(r.objectCount, 5);
  t.is(r.deltaCount, 2);
  t.true(readFileSync(idxPath).equals(f.idx), ".idx differs from git's");
  t.true(readFileSync(revPath).equals(f.rev), ".rev differs from git's");
});

// The other core too, through the command line: the WebAssembly core holds none of the pack
// (its bytes pass through the scan, entries are read back by offset), so a pack past 2 GiB is
// no different for it.
const other = core.kind === 'wasm' ? 'native' : 'wasm';
test(`${other} (mpgit index-pack, MPGIT_CORE=${other}): a pack past 2 GiB gets git's .idx and .rev, in well under its size of memory`, async (t) => {
  t.timeout(8 * 60_000);
  const f = await hugePack();
  const idxPath = join(f.dir, `${other}-cli.idx`);
  const r = await measure(process.execPath, [MPGIT, 'index-pack', '--rev-index', '-o', idxPath, f.pack], { env: { MPGIT_CORE: other } });
  t.is(r.stdout.trim(), f.sum);
  // Neither core holds the pack: its 2.1 GiB pass through, and are read back by offset.
  t.log(`${other}: ${(r.wallMs / 1000).toFixed(1)} s, peak RSS ${Math.round(r.peakRssMB)} MB`);
  t.true(r.peakRssMB < 512, `the indexer peaked at ${Math.round(r.peakRssMB)} MB for a ${Math.round(HUGE / 2 ** 20)} MiB object`);
  t.true(readFileSync(idxPath).equals(f.idx), ".idx differs from git's");
  t.true(readFileSync(idxPath.replace(/\.idx$/, '.rev')).equals(f.rev), ".rev differs from git's");
});
