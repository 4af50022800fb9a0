// The daemon's pack cache, through stock git clients: a cached clone has the objects of a fresh
// one (v0 and v2); a ref change is a new entry; concurrent identical clones share one
// pack-objects run that goes on when its first client is killed; a partial or corrupt entry
// (or a producer's temp file after kill -9) is never served; the bounds hold; a repeated v2
// clone is sent its entry without upload-pack, and that send outlives the daemon.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git, run, tempDir } from './helpers/proc.js';
import { makeBulkRepo, makeRepo } from './helpers/repo.js';
import { logLines, startDaemon, type MpgitDaemonHandle } from './helpers/daemon.js';

async function serveDir(t: ExecutionContext): Promise<{ base: string; cache: string }> {
  return { base: await tempDir(t, 'mpgit-pc-base-'), cache: await tempDir(t, 'mpgit-pc-cache-') };
}

function daemon(t: ExecutionContext, base: string, cache: string, extra: string[] = []): Promise<MpgitDaemonHandle> {
  return startDaemon(t, ['--base-path', base, '--export-all', `--cache-dir=${cache}`, ...extra]);
}

/** Every object reachable in a clone, sorted (what a user compares two clones by). */
async function objects(dir: string): Promise<string> {
  const r = await git(['rev-list', '--objects', '--all'], { cwd: dir });
  return r.stdout.split('\n').sort().join('\n');
}

async function clone(d: MpgitDaemonHandle, path: string, into: string, opts: { v0?: boolean } = {}): Promise<string> {
  await git([...(opts.v0 ? ['-c', 'protocol.version=0'] : []), 'clone', '-q', '--bare', d.url(path), into]);
  await git(['fsck', '--no-dangling'], { cwd: into });
  return objects(into);
}

const entries = async (cache: string) => (await readdir(cache)).filter((f) => f.endsWith('.pack'));
/** The cache outcome of each access line, once there are `n` (a line follows its client's end by a few ms). */
async function accessCache(d: MpgitDaemonHandle, n: number): Promise<(string | undefined)[]> {
  const deadline = Date.now() + 30_000;
  while (logLines(d, /access: upload-pack/).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return logLines(d, /access: upload-pack/).map((l) => /cache=(\S+)/.exec(l)?.[1]);
}

test('a clone served from the cache has the objects of a fresh one (v2 and v0)', async (t) => {
  const { base, cache } = await serveDir(t);
  await makeRepo(join(base, 'r.git'), { commits: 6 });
  const work = await tempDir(t);
  const fresh = await startDaemon(t, ['--base-path', base, '--export-all', '--no-pack-cache']);
  const want = await clone(fresh, 'r.git', join(work, 'fresh'));
  const d = await daemon(t, base, cache);
  t.is(await clone(d, 'r.git', join(work, 'miss')), want);
  t.is(await clone(d, 'r.git', join(work, 'hit2')), want);
  t.is(await clone(d, 'r.git', join(work, 'hit0'), { v0: true }), want);
  // Later clones are hits (or joins, when the first run was still syncing its entry as its client finished).
  const kinds = await accessCache(d, 3);
  t.is(kinds[0], 'miss');
  t.true(kinds.slice(1).every((k) => k === 'hit' || k === 'join'), kinds.join(','));
  t.is((await entries(cache)).length, 1);
  t.deepEqual(await accessCache(fresh, 1), ['-']);
});

test('after a ref change the next clone gets the new commit, never the cached pack', async (t) => {
  const { base, cache } = await serveDir(t);
  const repo = join(base, 'r.git');
  await makeRepo(repo);
  const d = await daemon(t, base, cache);
  const work = await tempDir(t);
  await clone(d, 'r.git', join(work, 'a'));
  // A new commit on main, and a new tag on an old commit (include-tag depends on the tags).
  const tree = (await git(['rev-parse', 'main^{tree}'], { cwd: repo })).stdout.trim();
  const next = (await git(['commit-tree', tree, '-p', 'main', '-m', 'next'], { cwd: repo, env: { GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@b', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@b' } })).stdout.trim();
  await git(['update-ref', 'refs/heads/main', next], { cwd: repo });
  await clone(d, 'r.git', join(work, 'b'));
  t.is((await git(['rev-parse', 'main'], { cwd: join(work, 'b') })).stdout.trim(), next);
  t.deepEqual(await accessCache(d, 2), ['miss', 'miss']);
  // A fetch of the same tip by a clone that has the old one: a different request, a new entry.
  await git(['fetch', '-q', d.url('r.git'), 'main'], { cwd: join(work, 'a') });
  t.is((await git(['rev-parse', 'FETCH_HEAD'], { cwd: join(work, 'a') })).stdout.trim(), next);
  t.is((await accessCache(d, 3))[2], 'miss');
});

test('concurrent identical clones all complete when the first client is killed; one pack-objects run', async (t) => {
  const { base, cache } = await serveDir(t);
  const repo = join(base, 'bulk.git');
  // Loose objects: pack-objects deflates 40 MB, which takes seconds.
  await makeBulkRepo(repo, 40);
  const d = await daemon(t, base, cache);
  const work = await tempDir(t);
  const first = spawn('git', ['clone', '-q', '--bare', d.url('bulk.git'), join(work, 'first')], { stdio: 'ignore' });
  const firstDone = new Promise((r) => first.on('exit', r));
  // The run has started once its temp file exists.
  const deadline = Date.now() + 60_000;
  while (!(await readdir(cache)).some((f) => f.endsWith('.tmp'))) {
    if (Date.now() > deadline) throw new Error(`no pack-objects run started; log:\n${d.proc.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const others = [1, 2, 3].map((i) => git(['clone', '-q', '--bare', d.url('bulk.git'), join(work, `c${i}`)]));
  await new Promise((r) => setTimeout(r, 300));
  first.kill('SIGKILL');
  await firstDone;
  t.true((await readdir(cache)).some((f) => f.endsWith('.tmp')), 'the run was still going when its first client died');
  await Promise.all(others);
  const want = await objects(join(work, 'c1'));
  for (const i of [2, 3]) t.is(await objects(join(work, `c${i}`)), want);
  await git(['fsck', '--no-dangling'], { cwd: join(work, 'c3') });
  const kinds = await accessCache(d, 4);
  t.is(kinds.filter((k) => k === 'miss').length, 1, kinds.join(','));
  t.is((await entries(cache)).length, 1, 'the run finished and was kept');
});

test('a partial or corrupt entry, or a temp file left by kill -9, is never served', async (t) => {
  const { base, cache } = await serveDir(t);
  await makeRepo(join(base, 'r.git'), { commits: 5 });
  const work = await tempDir(t);
  let d = await daemon(t, base, cache);
  const want = await clone(d, 'r.git', join(work, 'a'));
  const [entry] = await entries(cache);
  const path = join(cache, entry!);
  const size = (await stat(path)).size;

  // Cut short while the daemon runs: the size no longer matches, the entry is dropped.
  await truncate(path, size - 100);
  t.is(await clone(d, 'r.git', join(work, 'b')), want);
  t.deepEqual(await accessCache(d, 2), ['miss', 'miss']);
  t.regex(d.proc.output(), /pack cache: entry [0-9a-f]{12} is corrupt \(\d+ of \d+ bytes\): discarded/);

  // Same size, wrong bytes, found at the next start: the whole-pack check drops it.
  d.proc.child.kill('SIGKILL');
  await d.proc.exited;
  const bytes = await readFile(path);
  bytes.fill(0x55, 100, 200);
  await writeFile(path, bytes);
  // A producer killed mid-run leaves its temp file: never served, swept at start.
  const tmp = join(cache, `${entry!.replace('.pack', '')}.999999.1.tmp`);
  await writeFile(tmp, bytes.subarray(0, 1000));
  d = await daemon(t, base, cache);
  t.false(existsSync(tmp), 'a dead producer’s temp file is removed at start');
  t.is(await clone(d, 'r.git', join(work, 'c')), want);
  t.deepEqual(await accessCache(d, 1), ['miss']);
  t.is(await clone(d, 'r.git', join(work, 'e')), want);
  t.deepEqual(await accessCache(d, 2), ['miss', 'hit']);
});

test('the cache stays within its size bound (LRU), its age bound and min occurrences', async (t) => {
  const { base, cache } = await serveDir(t);
  for (const r of ['a', 'b', 'c']) await makeRepo(join(base, `${r}.git`), { commits: 8, filesPerCommit: 8 });
  const work = await tempDir(t);
  // Find one entry's size, then allow a little over two.
  let d = await daemon(t, base, cache);
  await clone(d, 'a.git', join(work, 'probe'));
  const one = (await stat(join(cache, (await entries(cache))[0]!))).size;
  d.proc.child.kill('SIGKILL');
  await d.proc.exited;
  const max = Math.floor(one * 2.5);
  d = await daemon(t, base, cache, [`--cache-max-bytes=${max}`]);
  await clone(d, 'b.git', join(work, 'b1'));
  await clone(d, 'c.git', join(work, 'c1'));
  const total = async () => {
    let n = 0;
    for (const e of await entries(cache)) n += (await stat(join(cache, e))).size;
    return n;
  };
  t.true((await total()) <= max, `${await total()} <= ${max}`);
  t.is((await entries(cache)).length, 2);
  // a was least recently used: it went; b and c are served from the cache.
  await clone(d, 'b.git', join(work, 'b2'));
  await clone(d, 'a.git', join(work, 'a2'));
  t.deepEqual(await accessCache(d, 4), ['miss', 'miss', 'hit', 'miss']);
  t.true((await total()) <= max);

  // Age: entries older than --cache-max-age are not served.
  d.proc.child.kill('SIGKILL');
  await d.proc.exited;
  d = await daemon(t, base, cache, ['--cache-max-age=1']);
  await new Promise((r) => setTimeout(r, 1200));
  await clone(d, 'b.git', join(work, 'b3'));
  t.deepEqual(await accessCache(d, 1), ['miss']);

  // Min occurrences: the first request of a pack is not kept, the second is.
  const cache2 = await tempDir(t, 'mpgit-pc-cache-');
  const d2 = await daemon(t, base, cache2, ['--cache-min-occurrences=2']);
  await clone(d2, 'a.git', join(work, 'm1'));
  t.is((await entries(cache2)).length, 0);
  await clone(d2, 'a.git', join(work, 'm2'));
  t.is((await entries(cache2)).length, 1);
  await clone(d2, 'a.git', join(work, 'm3'));
  t.deepEqual(await accessCache(d2, 3), ['miss', 'miss', 'hit']);
});

test('a bad bound is refused naming the flag; sizes and ages take suffixes', async (t) => {
  const r = await run(process.execPath, [join(import.meta.dirname, '..', 'bin', 'mpgit'), 'daemon', '--cache-max-bytes=lots']);
  t.not(r.code, 0);
  t.regex(r.stderr, /--cache-max-bytes: value "lots" is not valid: expected a size in bytes/);
  const { flagSettings, loadConfigFile } = await import('../ts/daemon/config.js');
  t.deepEqual(flagSettings({ cacheMaxBytes: '2g', cacheMaxAge: '30m' }), { cacheMaxBytes: 2 * 1024 ** 3, cacheMaxAge: 1800 });
  const dir = await tempDir(t);
  await writeFile(join(dir, 'c.json'), JSON.stringify({ cacheMaxBytes: 1048576, cacheMaxAge: '2h', cacheDir: '/x' }));
  t.deepEqual(await loadConfigFile(join(dir, 'c.json')), { cacheMaxBytes: 1048576, cacheMaxAge: 7200, cacheDir: '/x' });
});

test('kill -9 of the daemon while pack-objects writes an entry: the clone in flight still completes', async (t) => {
  const { base, cache } = await serveDir(t);
  await makeBulkRepo(join(base, 'bulk.git'), 40);
  const d = await daemon(t, base, cache);
  const work = await tempDir(t);
  const clone = spawn('git', ['clone', '-q', '--bare', d.url('bulk.git'), join(work, 'c')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  clone.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<number | null>((r) => clone.on('exit', (code) => r(code)));
  const deadline = Date.now() + 60_000;
  while (!(await readdir(cache)).some((f) => f.endsWith('.tmp'))) {
    if (Date.now() > deadline) throw new Error(`no pack-objects run started; log:\n${d.proc.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200));
  d.proc.child.kill('SIGKILL');
  t.true((await readdir(cache)).some((f) => f.endsWith('.tmp')), 'the run was still going when the daemon died');
  t.is(await done, 0, err);
  await git(['fsck', '--no-dangling'], { cwd: join(work, 'c') });
  // The orphaned run's file is never an entry: the next daemon sweeps it and packs afresh.
  t.is((await entries(cache)).length, 0);
  const d2 = await daemon(t, base, cache);
  t.false((await readdir(cache)).some((f) => f.endsWith('.tmp')));
  await git(['clone', '-q', '--bare', d2.url('bulk.git'), join(work, 'c2')]);
  t.deepEqual(await accessCache(d2, 1), ['miss']);
});

test('a repeated protocol v2 clone is sent its entry without upload-pack, and survives kill -9 of the daemon', async (t) => {
  const { base, cache } = await serveDir(t);
  await makeBulkRepo(join(base, 'bulk.git'), 48);
  const d = await daemon(t, base, cache);
  const work = await tempDir(t);
  const want = await clone(d, 'bulk.git', join(work, 'miss'));
  const runs = () => logLines(d, /with git upload-pack/).length;
  t.is(runs(), 1, d.proc.output());
  t.is(await clone(d, 'bulk.git', join(work, 'hit')), want);
  t.is(runs(), 1, 'the hit ran no upload-pack');
  t.is(logLines(d, /answered from the pack cache .*without upload-pack/).length, 1, d.proc.output());
  // A hit, or a join when the first run was still syncing its entry as the first client finished.
  const kinds = await accessCache(d, 2);
  t.is(kinds[0], 'miss');
  t.true(kinds[1] === 'hit' || kinds[1] === 'join', kinds.join(','));
  // Another hit, the daemon killed while the entry is being sent: the sender holds the socket.
  const c = spawn('git', ['clone', '-q', '--bare', d.url('bulk.git'), join(work, 'killed')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  c.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
  // Killed once the send is under way: a megabyte of the pack has reached the client.
  const incoming = join(work, 'killed', 'objects', 'pack');
  const received = async () => {
    const names = await readdir(incoming).catch(() => [] as string[]);
    const sizes = await Promise.all(names.filter((n) => n.startsWith('tmp_pack')).map((n) => stat(join(incoming, n)).then((s) => s.size, () => 0)));
    return sizes.reduce((a, b) => a + b, 0);
  };
  let exited = false;
  void done.then(() => (exited = true));
  while ((await received()) < 1 << 20) {
    if (exited) throw new Error(`the clone ended before the daemon could be killed during the send; log:\n${d.proc.output()}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  t.is((await run('pgrep', ['-f', '--', '--v2-packfile'])).code, 0, 'the entry is being sent by the hook program');
  d.proc.child.kill('SIGKILL');
  t.is(await done, 0, err);
  await git(['fsck', '--no-dangling'], { cwd: join(work, 'killed') });
  t.is(await objects(join(work, 'killed')), want);
});

test('a first wave of identical v2 clones runs one upload-pack: the others follow its pack-objects run', async (t) => {
  const { base, cache } = await serveDir(t);
  // Loose objects: pack-objects deflates 16 MB, long enough for the wave to arrive during it.
  await makeBulkRepo(join(base, 'bulk.git'), 16);
  const d = await daemon(t, base, cache);
  const work = await tempDir(t);
  const all = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => clone(d, 'bulk.git', join(work, `c${i}`))));
  for (const o of all) t.is(o, all[0]);
  t.is(logLines(d, /with git upload-pack/).length, 1, d.proc.output());
  const kinds = await accessCache(d, 6);
  t.is(kinds.filter((k) => k === 'miss').length, 1, kinds.join(','));
  t.true(kinds.every((k) => k === 'miss' || k === 'join' || k === 'hit'), kinds.join(','));
  t.is((await entries(cache)).length, 1);
});

test('off Linux the pack cache is off with one line naming Linux (its hook program is Linux-only)', async (t) => {
  const { packHookUnsupported } = await import('../ts/cache/hook-path.js');
  t.is(packHookUnsupported('linux'), null);
  for (const platform of ['darwin', 'win32'] as const) {
    t.regex(packHookUnsupported(platform) ?? '', new RegExp(`needs Linux .*mpgit-pack-hook.*this is ${platform}$`));
  }
});
