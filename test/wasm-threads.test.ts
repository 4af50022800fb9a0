// The WebAssembly core's long operations: checkout on worker threads (one instance each) gives
// the native core's index and a clean work tree, and a worker's error fails it typed, with no
// index; the connectivity walk runs in steps (a timer fires while it runs), with the results
// and typed errors of the native core.

import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { wasmModule } from '../ts/core/wasm.js';
import { wasmOdb } from '../ts/core/wasm-odb.js';
import { loadNative } from '../ts/core/native.js';
import { initBare } from './helpers/repo.js';
import { indexSansStat } from './helpers/index-bytes.js';
import { git, runOk, tempDir } from './helpers/proc.js';

function wasmAreas() {
  const m = wasmModule();
  if ('error' in m) throw new Error(`the wasm core is not built (npm run build:wasm): ${m.error}`);
  return wasmOdb(m.module);
}

/**
 * Enough files that a checkout goes to the worker threads (wasm-odb.ts PARALLEL_MIN_ENTRIES)
 * and that they write most of it (the main thread writes only until one has started).
 */
const FILES = 6000;

/** Explodes the packs of `repo` into loose objects (so that one can be taken away). */
async function loosen(repo: string): Promise<void> {
  const pack = join(repo, 'objects', 'pack');
  for (const name of readdirSync(pack).filter((n) => n.endsWith('.pack'))) {
    renameSync(join(pack, name), join(repo, name));
    unlinkSync(join(pack, name.replace(/\.pack$/, '.idx')));
    await runOk('sh', ['-c', `git unpack-objects -q < '${name}' && rm '${name}'`], { cwd: repo });
  }
}

/**
 * A bare repository whose one commit has FILES files (in the root and 8 directories), a
 * symbolic link, an executable, a gitlink and a name that is not UTF-8; loose objects.
 */
async function wideRepo(repo: string): Promise<string> {
  await initBare(repo);
  const parts: string[] = [];
  for (let i = 0; i < FILES; i++) {
    const body = `file ${i}\n`.repeat(1 + (i % 7));
    parts.push(`blob\nmark :${i + 1}\ndata ${Buffer.byteLength(body)}\n${body}`);
  }
  parts.push('commit refs/heads/main\ncommitter A <a@example.com> 1700000000 +0000\ndata 5\nwide\n');
  for (let i = 0; i < FILES; i++) parts.push(`M 100644 :${i + 1} ${i % 9 === 0 ? '' : `d${i % 9}/`}f${i}\n`);
  parts.push('M 100755 :2 bin/run.sh\nM 120000 inline d1/link\ndata 5\n../f0\nM 160000 1111111111111111111111111111111111111111 deps/mod\nM 100644 :3 "latin1-\\351.txt"\n\n');
  await git(['fast-import', '--quiet'], { cwd: repo, input: parts.join('') });
  await loosen(repo);
  return (await git(['rev-parse', 'refs/heads/main'], { cwd: repo })).stdout.trim();
}

function nativeAreas() {
  const n = loadNative().core;
  if (!n?.odb || !n.checkout) throw new Error('the native core is not built (npm run build:native)');
  return n;
}

test('wasm: a checkout on 2 worker threads (links, an executable, a gitlink, a name not UTF-8) leaves git status clean, the index as the native core writes it', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  const head = await wideRepo(repo);
  const index: Record<string, Buffer> = {};
  for (const [name, areas] of [['wasm', wasmAreas()], ['native', nativeAreas()]] as const) {
    const wt = join(base, name);
    mkdirSync(wt);
    const h = areas.odb!.odbOpen(repo);
    try {
      const job = areas.checkout!.checkoutNew(h, head, wt, { threads: 2, indexPath: join(base, `${name}.index`) });
      const r = await areas.checkout!.checkoutRun(job);
      t.is(r.entries, FILES + 4, name);
      t.deepEqual(areas.checkout!.checkoutProgress(job), { done: FILES + 4, total: FILES + 4 }, name);
    } finally {
      areas.odb!.odbClose(h);
    }
    index[name] = readFileSync(join(base, `${name}.index`));
    const env = { GIT_DIR: repo, GIT_WORK_TREE: wt, GIT_INDEX_FILE: join(base, `${name}.index`) };
    t.is((await runOk('git', ['diff-files', '--quiet'], { cwd: wt, env })).code, 0, `${name}: the index matches the files written`);
    t.is((await git(['status', '--porcelain', '--ignore-submodules=none'], { cwd: wt, env })).stdout, '', `${name}: git status is clean`);
  }
  t.true(indexSansStat(index.wasm!).equals(indexSansStat(index.native!)), 'the index bytes, stat times, device and inode aside');
  const wt = join(base, 'wasm');
  t.is(readFileSync(join(wt, 'd1', 'link'), 'utf8'), 'file 0\n', 'the link points at f0');
  t.true(readFileSync(Buffer.from(`${wt}/latin1-\xe9.txt`, 'latin1')).equals(Buffer.from('file 2\nfile 2\nfile 2\n')));
  t.deepEqual(readdirSync(join(wt, 'deps', 'mod')), []);
});

test('wasm: an error in a checkout thread (a missing blob, a file in the way) fails the checkout with its typed error, and no index is written', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  const head = await wideRepo(repo);
  const { odb, checkout } = wasmAreas();
  const h = odb.odbOpen(repo);
  try {
    const run = async (wt: string) => {
      const indexPath = join(base, 'index');
      const e = await t.throwsAsync(checkout.checkoutRun(checkout.checkoutNew(h, head, wt, { threads: 2, indexPath })));
      t.false(existsSync(indexPath) || existsSync(`${indexPath}.lock`), 'no index, no lock left');
      return e as Error & { code?: string };
    };
    // A file the checkout would write, already there.
    const wt1 = join(base, 'wt1');
    mkdirSync(wt1);
    writeFileSync(join(wt1, 'f1197'), 'mine\n');
    const e1 = await run(wt1);
    t.is(e1.code, 'EEXIST', e1.message);
    t.is(readFileSync(join(wt1, 'f1197'), 'utf8'), 'mine\n', 'the file in the way is left alone');
    // A blob taken away, in the last directory handed out (a worker's, once they have started).
    const blob = (await git(['rev-parse', `${head}:d8/f5993`], { cwd: repo })).stdout.trim();
    unlinkSync(join(repo, 'objects', blob.slice(0, 2), blob.slice(2)));
    const wt2 = join(base, 'wt2');
    mkdirSync(wt2);
    const e2 = await run(wt2);
    t.is(e2.code, 'MPGIT_MISSING_OBJECTS', e2.message);
    t.regex(e2.message, new RegExp(`blob ${blob} \\(d8/f5993\\) is missing`));
  } finally {
    odb.odbClose(h);
  }
});

test('wasm: planning a checkout of many directories lets a timer fire before the first entry is written', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  await initBare(repo);
  const dirs = 1500;
  const parts = ['blob\nmark :1\ndata 2\nx\n', 'commit refs/heads/main\ncommitter A <a@example.com> 1700000000 +0000\ndata 5\ndirs\n'];
  for (let i = 0; i < dirs; i++) parts.push(`M 100644 :1 a/d${i}/f\n`);
  await git(['fast-import', '--quiet'], { cwd: repo, input: parts.join('') + '\n' });
  const head = (await git(['rev-parse', 'refs/heads/main'], { cwd: repo })).stdout.trim();
  const { odb, checkout } = wasmAreas();
  const h = odb.odbOpen(repo);
  const wt = join(base, 'wt');
  mkdirSync(wt);
  try {
    const job = checkout.checkoutNew(h, head, wt, { threads: 1, indexPath: join(base, 'index') });
    const seen: { done: number; total: number }[] = [];
    const timer = setInterval(() => seen.push(checkout.checkoutProgress(job)), 0);
    const r = await checkout.checkoutRun(job).finally(() => clearInterval(timer));
    t.is(r.entries, dirs);
    t.true(seen.some((p) => p.total === 0), `a tick while the tree was being read: ${JSON.stringify(seen.slice(0, 3))}`);
    t.is(readdirSync(join(wt, 'a')).length, dirs);
  } finally {
    odb.odbClose(h);
  }
});

/** A bare repository of `commits` commits, each adding a file to one of 50 directories (loose objects). */
async function history(repo: string, commits: number): Promise<string> {
  await initBare(repo);
  const parts: string[] = [];
  for (let c = 1; c <= commits; c++) {
    const body = `file ${c}\n`;
    parts.push(`blob\nmark :${c}\ndata ${Buffer.byteLength(body)}\n${body}`);
    const msg = `c${c}\n`;
    parts.push(`commit refs/heads/main\ncommitter A <a@example.com> ${1_700_000_000 + c} +0000\ndata ${msg.length}\n${msg}`);
    parts.push(`M 100644 :${c} d${c % 50}/f${c}\n\n`);
  }
  await git(['fast-import', '--quiet'], { cwd: repo, input: parts.join('') });
  await loosen(repo);
  return (await git(['rev-parse', 'refs/heads/main'], { cwd: repo })).stdout.trim();
}

test('wasm: the connectivity walk lets a timer fire while it runs, counts what rev-list counts, and names a missing object as the native core does', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  const head = await history(repo, 1500);
  const want = (await git(['rev-list', '--objects', head], { cwd: repo })).stdout.split('\n').length - 1;
  const { odb, connectivity } = wasmAreas();
  const h = odb.odbOpen(repo);
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const r = await connectivity.connectivityCheck(h, [head], [], null).finally(() => clearInterval(timer));
    t.is(r.objects, want);
    t.true(ticks > 0, 'a timer fired during the walk');
    // A blob of the oldest commit, which the walk reaches last.
    const first = (await git(['rev-list', '--max-parents=0', head], { cwd: repo })).stdout.trim();
    const blob = (await git(['rev-parse', `${first}:d1/f1`], { cwd: repo })).stdout.trim();
    unlinkSync(join(repo, 'objects', blob.slice(0, 2), blob.slice(2)));
    const native = loadNative().core?.connectivity;
    if (!native) throw new Error('the native core is not built (npm run build:native)');
    const nh = loadNative().core!.odb!.odbOpen(repo);
    const expected = await native.connectivityCheck(nh, [head], [], null).then(() => null, (e: Error & { code?: string }) => ({ code: e.code, message: e.message }));
    loadNative().core!.odb!.odbClose(nh);
    const e = await t.throwsAsync(connectivity.connectivityCheck(h, [head], [], null));
    t.is((e as Error & { code?: string }).code, 'MPGIT_MISSING_OBJECTS');
    t.regex(e!.message, new RegExp(`object ${blob}`));
    t.deepEqual({ code: (e as Error & { code?: string }).code, message: e!.message }, expected!);
    // The database a walk stops at: with everything in it, only the tip is counted.
    const before = odb.odbOpen(repo);
    t.is((await connectivity.connectivityCheck(h, [head], [], before)).objects, 1);
    odb.odbClose(before);
  } finally {
    odb.odbClose(h);
  }
});
