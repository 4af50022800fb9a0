// The WebAssembly core's indexer where it differs from the native one: its resolution threads
// (one instance each, started while the scan runs for a pack file, or at the end of a stream)
// reading the pack file by offset, must give git's bytes; and a pack of more objects than a
// wasm32 instance's memory has room for must be refused at its header, naming what to use
// instead (its size in bytes is no limit: test/pack-large-offset.test.ts).

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { git, mpgit, tempDir } from './helpers/proc.js';

const WASM = { MPGIT_CORE: 'wasm' };
/** The most objects the wasm core takes (crates/core/src/pack/portable/mod.rs MAX_OBJECTS). */
const MAX_OBJECTS = Math.floor((3 * 2 ** 30) / 200);

/**
 * A pack of `files` incompressible 48 KiB blobs, each also in a second version with a few bytes
 * changed: as many delta trees as files (enough for the worker threads to get batches of
 * roots), and over 16 MiB (so a pack file's threads start while the scan runs).
 */
async function manyTreesPack(dir: string, files: number): Promise<Buffer> {
  const repo = join(dir, 'src.git');
  await git(['init', '-q', '--bare', repo]);
  const parts: Buffer[] = [];
  const blobs = Array.from({ length: files }, () => randomBytes(48 << 10));
  for (const [n, edit] of [[1, false], [2, true]] as const) {
    const lines = [`commit refs/heads/main`, `committer t <t@example.com> ${1700000000 + n} +0000`, `data 2`, `c${n}`];
    parts.push(Buffer.from(lines.join('\n') + '\n'));
    blobs.forEach((b, i) => {
      const data = edit ? Buffer.concat([b.subarray(0, 1000), Buffer.from(`edit ${i}`), b.subarray(1000)]) : b;
      parts.push(Buffer.from(`M 100644 inline f${i}\ndata ${data.length}\n`), data, Buffer.from('\n'));
    });
  }
  await git(['fast-import', '--quiet'], { cwd: repo, input: Buffer.concat(parts) });
  await git(['repack', '-adfq'], { cwd: repo });
  const packDir = join(repo, 'objects', 'pack');
  const name = readdirSync(packDir).find((f) => f.endsWith('.pack'))!;
  return readFileSync(join(packDir, name));
}

test('wasm core, 2 threads: hundreds of delta trees give git\'s .idx, from a file (threads started early) and streamed', async (t) => {
  const dir = await tempDir(t);
  const pack = await manyTreesPack(dir, 400);
  t.true(pack.length > 16 << 20, `the pack is ${pack.length} bytes: too small for the early threads`);
  const file = join(dir, 'p.pack');
  writeFileSync(file, pack);
  await git(['index-pack', '-o', join(dir, 'git.idx'), file]);
  const want = readFileSync(join(dir, 'git.idx'));

  const r = await mpgit(['index-pack', '--threads', '2', '-o', join(dir, 'w.idx'), file], { env: WASM });
  t.is(r.code, 0, r.stderr);
  t.true(readFileSync(join(dir, 'w.idx')).equals(want), 'a pack file: the .idx differs from git\'s');

  const dst = join(dir, 'dst.git');
  await git(['init', '-q', '--bare', dst]);
  const s = await mpgit(['index-pack', '--stdin', '--threads', '2'], { cwd: dst, env: WASM, input: pack });
  t.is(s.code, 0, s.stderr);
  const idx = readdirSync(join(dst, 'objects', 'pack')).find((f) => f.endsWith('.idx'));
  t.truthy(idx, 'no .idx written from the stream');
  t.true(readFileSync(join(dst, 'objects', 'pack', idx!)).equals(want), 'streamed: the .idx differs from git\'s');
});

test('wasm core: a pack file of more objects than its tables hold is refused at its header with MPGIT_PACK_TOO_LARGE, naming the native package and MPGIT_CORE=native', async (t) => {
  const dir = await tempDir(t);
  const header = Buffer.alloc(12);
  header.write('PACK', 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(MAX_OBJECTS + 1, 8);
  // Sparse: the header, then a hole of 1 GiB that is never read.
  const big = join(dir, 'big.pack');
  const fd = openSync(big, 'w');
  try {
    writeSync(fd, header);
    ftruncateSync(fd, 2 ** 30);
  } finally {
    closeSync(fd);
  }
  const started = Date.now();
  const r = await mpgit(['index-pack', '-o', join(dir, 'big.idx'), big], { env: WASM });
  t.is(r.code, 128, r.stderr);
  t.regex(r.stderr, new RegExp(`^fatal: the pack has ${MAX_OBJECTS + 1} objects, too many for the WebAssembly core.*at most ${MAX_OBJECTS} objects`, 'm'));
  t.regex(r.stderr, /native package for this platform/);
  t.regex(r.stderr, /MPGIT_CORE=native/);
  t.false(existsSync(join(dir, 'big.idx')), 'an .idx was left behind');
  t.true(Date.now() - started < 30_000, 'the refusal should come at the header, not after reading the pack');
});
