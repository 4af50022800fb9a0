// The WebAssembly core's object database, checkout and connectivity check: the same Rust as
// the native core's (crates/core/src/odb), its file operations done by node (ts/core/wasm-host.ts).
// It must read what git reads (packs, a REF_DELTA whose base is in another pack, loose objects
// in an alternate), clone from stock git daemon into a repository git finds clean, with the
// index the native core writes (stat data aside), fetch into it, and refuse what is corrupt or
// missing with the native core's typed errors.

import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { wasmModule } from '../ts/core/wasm.js';
import { wasmOdb } from '../ts/core/wasm-odb.js';
import { loadNative } from '../ts/core/native.js';
import type { OdbCore } from '../ts/core/types.js';
import { buildPack, copy, delta, insert, objectId } from './helpers/pack-builder.js';
import { initBare, makeRepo } from './helpers/repo.js';
import { git, mpgit, runOk, tempDir } from './helpers/proc.js';
import { indexSansStat } from './helpers/index-bytes.js';
import { gitDaemon } from './helpers/gitserve.js';

const WASM = { MPGIT_CORE: 'wasm' };

function wasmAreas() {
  const m = wasmModule();
  if ('error' in m) throw new Error(`the wasm core is not built (npm run build:wasm): ${m.error}`);
  return wasmOdb(m.module);
}

function nativeOdb(): OdbCore {
  const n = loadNative();
  if (!n.core?.odb) throw new Error(`the native core is not built (npm run build:native): ${n.error}`);
  return n.core.odb;
}

/** Every object git reads in `repo` (alternates included), by id ("missing" ones left out). */
function catFileAll(repo: string): Map<string, { type: string; data: Buffer }> {
  const out = execFileSync('git', ['cat-file', '--batch-all-objects', '--batch'], { cwd: repo, maxBuffer: 1 << 30 });
  const all = new Map<string, { type: string; data: Buffer }>();
  for (let at = 0; at < out.length; ) {
    const nl = out.indexOf(10, at);
    const [oid, type, size] = out.toString('latin1', at, nl).split(' ') as [string, string, string];
    if (type === 'missing') {
      at = nl + 1;
      continue;
    }
    all.set(oid, { type, data: out.subarray(nl + 1, nl + 1 + Number(size)) });
    at = nl + 1 + Number(size) + 1;
  }
  return all;
}

/** An .idx v2 for a pack git's index-pack would not index (a REF_DELTA on a base elsewhere). */
function idxFor(pack: Buffer, entries: { oid: string; offset: number; end: number }[]): Buffer {
  const sorted = [...entries].sort((a, b) => a.oid.localeCompare(b.oid));
  const fanout = Buffer.alloc(1024);
  for (let b = 0; b < 256; b++) fanout.writeUInt32BE(sorted.filter((e) => parseInt(e.oid.slice(0, 2), 16) <= b).length, b * 4);
  const u32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  const body = Buffer.concat([
    Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]),
    fanout,
    ...sorted.map((e) => Buffer.from(e.oid, 'hex')),
    ...sorted.map((e) => u32(crc32(pack.subarray(e.offset, e.end)))),
    ...sorted.map((e) => u32(e.offset)),
    pack.subarray(pack.length - 20),
  ]);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

/**
 * A bare repository whose objects are: loose, in an alternate (an older history); two packs of
 * its own (newer commits, with deltas); a third pack holding one REF_DELTA whose base is a
 * loose object of the alternate (git itself looks for a REF_DELTA's base in its own pack
 * only, and calls it missing; the core reads it, as thin packs completed by other tools need).
 * Returns the repository, the REF_DELTA's id and content.
 */
async function layeredRepo(base: string): Promise<{ repo: string; crossDelta: string; crossData: Buffer }> {
  const src = join(base, 'src.git');
  await makeRepo(src, { commits: 12, filesPerCommit: 6 });
  const alt = join(base, 'alt.git');
  await initBare(alt);
  const packDir = join(src, 'objects', 'pack');
  const pack = readdirSync(packDir).find((f) => f.endsWith('.pack'))!;
  await runOk('git', ['unpack-objects', '-q'], { cwd: alt, input: readFileSync(join(packDir, pack)) });
  const repo = join(base, 'r.git');
  await initBare(repo);
  writeFileSync(join(repo, 'objects', 'info', 'alternates'), `${join(alt, 'objects')}\n`);
  const head = (await git(['rev-parse', 'main'], { cwd: src })).stdout.trim();
  await git(['update-ref', 'refs/heads/main', head], { cwd: repo });
  for (let round = 0; round < 2; round++) {
    let stream = `commit refs/heads/main\ncommitter T <t@example.com> ${1700100000 + round} +0000\ndata 3\nr${round}\nfrom refs/heads/main^0\n`;
    for (let f = 0; f < 6; f++) {
      const body = Array.from({ length: 60 }, (_, i) => `file ${f} line ${i} round ${i % 5 === round ? round : 'x'}`).join('\n') + '\n';
      stream += `M 100644 inline src/dir${f % 3}/file${f}.txt\ndata ${Buffer.byteLength(body)}\n${body}`;
    }
    // A pack each, however few objects (fast-import leaves fewer than 100 loose by default).
    await runOk('git', ['-c', 'fastimport.unpackLimit=0', 'fast-import', '--quiet'], { cwd: repo, input: `${stream}\n` });
  }
  // A blob of the alternate (loose there), and an object built on it from a pack of its own.
  const baseOid = (await git(['rev-parse', `${head}:README.md`], { cwd: repo })).stdout.trim();
  const baseData = execFileSync('git', ['cat-file', 'blob', baseOid], { cwd: repo });
  const result = Buffer.concat([baseData, Buffer.from('appended across packs\n')]);
  const d = delta(baseData.length, result.length, [copy(0, baseData.length), insert(Buffer.from('appended across packs\n'))]);
  const crossPack = buildPack([{ refBase: baseOid, delta: d }]);
  const crossDelta = objectId('blob', result);
  const sum = crossPack.subarray(crossPack.length - 20).toString('hex');
  const packs = join(repo, 'objects', 'pack');
  writeFileSync(join(packs, `pack-${sum}.pack`), crossPack);
  writeFileSync(join(packs, `pack-${sum}.idx`), idxFor(crossPack, [{ oid: crossDelta, offset: 12, end: crossPack.length - 20 }]));
  return { repo, crossDelta, crossData: result };
}

test('wasm: reads what git cat-file reads (two packs with deltas, a REF_DELTA on a base outside its pack, loose objects in an alternate), as the native core does', async (t) => {
  const base = await tempDir(t);
  const { repo, crossDelta, crossData } = await layeredRepo(base);
  t.is(readdirSync(join(repo, 'objects', 'pack')).filter((f) => f.endsWith('.pack')).length, 3);
  const all = catFileAll(repo);
  t.true(all.size > 200, `${all.size} objects`);
  const areas = wasmAreas();
  const w = areas.odb;
  const n = nativeOdb();
  const wh = w.odbOpen(repo);
  const nh = n.odbOpen(repo);
  const types = ['', 'commit', 'tree', 'blob', 'tag'];
  try {
    for (const [oid, want] of all) {
      const a = w.odbRead(wh, oid);
      if (!a || types[a.type] !== want.type || !a.data.equals(want.data)) t.fail(`${oid}: wasm read ${a ? `${types[a.type]}/${a.data.length}` : 'nothing'}, git ${want.type}/${want.data.length}`);
      if (!w.odbHas(wh, oid)) t.fail(`${oid}: wasm has() says no`);
      if (want.type === 'commit') t.deepEqual(w.odbReadCommit(wh, oid), n.odbReadCommit(nh, oid));
    }
    t.deepEqual(w.odbRead(wh, crossDelta), { type: 3, data: crossData }, 'the REF_DELTA across packs');
    t.deepEqual(n.odbRead(nh, crossDelta), { type: 3, data: crossData });
    t.is(w.odbRead(wh, '0'.repeat(40)), null);
    t.false(w.odbHas(wh, 'f'.repeat(40)));
    t.is(w.odbReadCommit(wh, crossDelta), null, 'a blob is no commit');
    const head = (await git(['rev-parse', 'main'], { cwd: repo })).stdout.trim();
    const walked = await areas.connectivity.connectivityCheck(wh, [head], [], null);
    const rev = (await git(['rev-list', '--objects', head], { cwd: repo })).stdout.trim().split('\n').length;
    t.is(walked.objects, rev, 'the walk reaches what rev-list --objects lists');
  } finally {
    w.odbClose(wh);
    n.odbClose(nh);
  }
  t.throws(() => w.odbHas(wh, '0'.repeat(40)), { code: 'ERR_INVALID_STATE' });
  t.throws(() => w.odbOpen(join(base, 'nothing-here')), { code: 'MPGIT_NOT_A_REPO' });
});

/** A bare repository with an executable, a symlink, a gitlink, a UTF-8 non-ASCII name, a name that is not UTF-8, nested directories. */
async function varietyRepo(dir: string): Promise<void> {
  await makeRepo(dir, { commits: 6, filesPerCommit: 9 });
  const head = (await git(['rev-parse', 'main'], { cwd: dir })).stdout.trim();
  const blob = (await runOk('git', ['hash-object', '-w', '--stdin'], { cwd: dir, input: 'accent\n' })).stdout.trim();
  const listing = execFileSync('git', ['ls-tree', '-z', head], { cwd: dir });
  const extra = Buffer.concat([Buffer.from(`100644 blob ${blob}\tcafé.txt\x00100644 blob ${blob}\tlatin1-`), Buffer.from([0xe9]), Buffer.from(`.txt\x00160000 commit ${'1'.repeat(40)}\tdeps\x00`)]);
  const tree = (await runOk('git', ['mktree', '-z'], { cwd: dir, input: Buffer.concat([listing, extra]) })).stdout.trim();
  const env = { GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@b', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@b' };
  const commit = (await runOk('git', ['commit-tree', tree, '-p', head, '-m', 'variety'], { cwd: dir, env })).stdout.trim();
  await git(['update-ref', 'refs/heads/main', commit], { cwd: dir });
}

test('wasm: mpgit clone from git daemon gives a repository git finds complete and clean, the index as the native core writes it; mpgit fetch into it works', async (t) => {
  const base = await tempDir(t);
  await varietyRepo(join(base, 'src.git'));
  const d = await gitDaemon(t, base);
  const clones: Record<string, string> = {};
  for (const core of ['wasm', 'native']) {
    const dst = join(base, `clone-${core}`);
    const r = await mpgit(['clone', d.url('src.git'), dst], { env: { MPGIT_CORE: core } });
    t.is(r.code, 0, `${core}: ${r.stderr}`);
    clones[core] = dst;
  }
  const w = clones.wasm!;
  // Compared before any git command runs there (git status may rewrite an index it refreshes).
  t.true(indexSansStat(readFileSync(join(w, '.git', 'index'))).equals(indexSansStat(readFileSync(join(clones.native!, '.git', 'index')))), 'the index bytes, stat times, device and inode aside');
  t.is((await git(['fsck', '--full', '--strict'], { cwd: w })).code, 0);
  t.is((await git(['status', '--porcelain', '--ignore-submodules=none'], { cwd: w })).stdout, '', 'git status is clean');
  t.is((await runOk('git', ['diff-files', '--quiet'], { cwd: w })).code, 0);
  t.true(readFileSync(join(w, 'café.txt')).equals(Buffer.from('accent\n')));
  t.true(readFileSync(Buffer.from(`${w}/latin1-\xe9.txt`, 'latin1')).equals(Buffer.from('accent\n')), 'a name that is not UTF-8, written as its bytes');
  t.deepEqual(readdirSync(join(w, 'deps')), [], 'the gitlink is an empty directory');

  // New commits on the server, fetched by the wasm core into the wasm clone.
  const src = join(base, 'src.git');
  const more = `commit refs/heads/main\ncommitter T <t@example.com> 1700200000 +0000\ndata 5\nmore\nfrom refs/heads/main^0\nM 100644 inline added.txt\ndata 6\nadded\n\n`;
  await runOk('git', ['fast-import', '--quiet'], { cwd: src, input: more });
  const f = await mpgit(['fetch', 'origin'], { cwd: w, env: WASM });
  t.is(f.code, 0, f.stderr);
  t.is((await git(['rev-parse', 'origin/main'], { cwd: w })).stdout, (await git(['rev-parse', 'main'], { cwd: src })).stdout);
  t.is((await git(['fsck', '--full'], { cwd: w })).code, 0);
});

test('wasm: a corrupt loose object and a corrupt pack entry are MPGIT_BAD_PACK naming where; a missing blob fails the connectivity check naming it', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  await makeRepo(repo, { commits: 3 });
  await git(['repack', '-adq'], { cwd: repo });
  const head = (await git(['rev-parse', 'main'], { cwd: repo })).stdout.trim();
  const areas = wasmAreas();
  // A loose copy of the history, one blob of it corrupt, another missing.
  const loose = join(base, 'loose.git');
  await initBare(loose);
  const packDir = join(repo, 'objects', 'pack');
  const packName = readdirSync(packDir).find((f) => f.endsWith('.pack'))!;
  await runOk('git', ['unpack-objects', '-q'], { cwd: loose, input: readFileSync(join(packDir, packName)) });
  const readme = (await git(['rev-parse', 'main:README.md'], { cwd: repo })).stdout.trim();
  const script = (await git(['rev-parse', 'main:bin/run.sh'], { cwd: repo })).stdout.trim();
  const looseFile = (oid: string) => join(loose, 'objects', oid.slice(0, 2), oid.slice(2));
  const raw = readFileSync(looseFile(readme));
  raw[raw.length - 3] ^= 0xff;
  writeFileSync(looseFile(readme), raw);
  const h = areas.odb.odbOpen(loose);
  try {
    t.throws(() => areas.odb.odbRead(h, readme), { code: 'MPGIT_BAD_PACK', message: /loose object .* is corrupt/ });
    unlinkSync(looseFile(script));
    const e = await t.throwsAsync(areas.connectivity.connectivityCheck(h, [head], [], null), { code: 'MPGIT_MISSING_OBJECTS' });
    t.regex(e!.message, new RegExp(`object ${script} \\(reached from object [0-9a-f]{40}\\) is missing`));
  } finally {
    areas.odb.odbClose(h);
  }

  // A pack entry with one byte of its deflated data changed.
  const verify = (await git(['verify-pack', '-v', join(packDir, packName.replace('.pack', '.idx'))])).stdout;
  const line = verify.split('\n').find((l) => l.startsWith(readme))!;
  const [, , size, packed, offset] = line.split(/\s+/).map((x, i) => (i >= 2 ? Number(x) : x)) as [string, string, number, number, number];
  t.true(size > 0 && packed > 8, line);
  const pack = join(packDir, packName);
  const bytes = readFileSync(pack);
  bytes[offset + packed - 6] ^= 0x55;
  writeFileSync(pack, bytes);
  const p = areas.odb.odbOpen(repo);
  try {
    t.throws(() => areas.odb.odbRead(p, readme), { code: 'MPGIT_BAD_PACK', message: new RegExp(`${packName}: corrupt object at offset ${offset}`) });
  } finally {
    areas.odb.odbClose(p);
  }
});

test('wasm: checkout refuses an entry named .GIT as the native core does, writing nothing, and an index.lock in the way is MPGIT_LOCKED', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  await initBare(repo);
  const blob = (await runOk('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: 'x\n' })).stdout.trim();
  const entry = (name: Buffer) => Buffer.concat([Buffer.from('100644 '), name, Buffer.from([0]), Buffer.from(blob, 'hex')]);
  // Written unchecked, as a hostile server could (git hash-object would refuse the name).
  const hostile = (await runOk('git', ['hash-object', '-t', 'tree', '--literally', '-w', '--stdin'], { cwd: repo, input: entry(Buffer.from('.GIT')) })).stdout.trim();
  const plain = (await runOk('git', ['hash-object', '-t', 'tree', '-w', '--stdin'], { cwd: repo, input: entry(Buffer.from('plain')) })).stdout.trim();
  const { odb, checkout } = wasmAreas();
  const native = loadNative().core!;
  const messages: string[] = [];
  for (const [o, c] of [[odb, checkout], [native.odb!, native.checkout!]] as const) {
    const h = o.odbOpen(repo);
    const wt = join(base, `wt-${messages.length}`);
    mkdirSync(wt);
    try {
      const job = c.checkoutNew(h, hostile, wt, { threads: 1, indexPath: null });
      const e = await t.throwsAsync(c.checkoutRun(job), { code: 'MPGIT_BAD_PACK' });
      messages.push(e!.message);
      t.deepEqual(readdirSync(wt), [], 'nothing written');
    } finally {
      o.odbClose(h);
    }
  }
  t.is(messages[0], messages[1]);
  t.regex(messages[0]!, /unsafe entry name "\.GIT"/);

  const h = odb.odbOpen(repo);
  const wt = join(base, 'wt-lock');
  mkdirSync(wt);
  writeFileSync(join(base, 'index.lock'), '');
  try {
    const job = checkout.checkoutNew(h, plain, wt, { threads: 1, indexPath: join(base, 'index') });
    await t.throwsAsync(checkout.checkoutRun(job), { code: 'MPGIT_LOCKED', message: /index\.lock exists/ });
    await t.throwsAsync(checkout.checkoutRun(job), { code: 'ERR_INVALID_STATE' });
    unlinkSync(join(base, 'index.lock'));
    const wt2 = join(base, 'wt-ok');
    mkdirSync(wt2);
    const ok = checkout.checkoutNew(h, plain, wt2, { threads: 4, indexPath: join(base, 'index') });
    t.deepEqual(await checkout.checkoutRun(ok), { entries: 1, directories: 0, bytes: 2 });
    t.deepEqual(checkout.checkoutProgress(ok), { done: 1, total: 1 });
    t.is(readFileSync(join(wt2, 'plain'), 'utf8'), 'x\n');
    t.is(readFileSync(join(base, 'index')).subarray(0, 4).toString(), 'DIRC');
  } finally {
    odb.odbClose(h);
  }
});

test('wasm: a checkout of thousands of files lets the event loop run between its steps, its progress readable meanwhile', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  await initBare(repo);
  const blob = (await runOk('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: 'same\n' })).stdout.trim();
  const files = 3000;
  const listing = Array.from({ length: files }, (_, i) => `100644 blob ${blob}\tf${String(i).padStart(5, '0')}\n`).join('');
  const tree = (await runOk('git', ['mktree'], { cwd: repo, input: listing })).stdout.trim();
  const { odb, checkout } = wasmAreas();
  const h = odb.odbOpen(repo);
  const wt = join(base, 'wt');
  mkdirSync(wt);
  try {
    const job = checkout.checkoutNew(h, tree, wt, { threads: 1, indexPath: join(base, 'index') });
    const seen: { done: number; total: number }[] = [];
    const ticks = setInterval(() => seen.push(checkout.checkoutProgress(job)), 0);
    const r = await checkout.checkoutRun(job).finally(() => clearInterval(ticks));
    t.deepEqual(r, { entries: files, directories: 0, bytes: files * 5 });
    t.true(seen.some((p) => p.total === files && p.done > 0 && p.done < files), `progress seen while it ran: ${JSON.stringify(seen.slice(0, 5))}`);
    t.deepEqual(checkout.checkoutProgress(job), { done: files, total: files });
    t.is(readdirSync(wt).length, files);
    const env = { GIT_DIR: repo, GIT_WORK_TREE: wt, GIT_INDEX_FILE: join(base, 'index') };
    t.is((await runOk('git', ['diff-files', '--quiet'], { cwd: wt, env })).code, 0, 'the index matches the files written');
  } finally {
    odb.odbClose(h);
  }
});
