// mpgit clone/fetch with packfile URIs: from stock git daemon set up the way git's feature works
// (loose blobs, sideband-all, one pack per URI) and from mpgit daemon in both modes; URIs that
// serve wrong bytes, 404s, cut or stalled bodies; a clone killed mid-download and resumed,
// fetching again only the remainder (nginx's access log says so); a fetch after new commits.
// Stock git judges every result (fsck, status, refs).

import test, { type ExecutionContext } from 'ava';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { git, mpgit, MPGIT, run, runOk, start } from './helpers/proc.js';
import { faultProxy, startNginx, type Fault, type Nginx } from './helpers/nginx.js';
import { gitDaemon } from './helpers/gitserve.js';
import { bigRepo, checkClone, fetchAfterCommit, fsckClean, mpgitDaemon, offloadDirs, type MpgitDaemon } from './helpers/offload.js';
import { readState } from '../ts/offload/state.js';
import { checkConnected } from '../ts/repo/connectivity.js';
import { RESUME_DIR } from '../ts/client/resume.js';

/** Short retry delays for the tests (the defaults are for real networks). */
const FAST_RETRY = { MPGIT_URI_BACKOFF_MS: '100' };

interface Served {
  base: string;
  pub: string;
  work: string;
  repo: string;
  nginx: Nginx;
  daemon: MpgitDaemon;
}

/** A repository offloaded in `mode`, packs under `uriBase` (nginx, or a proxy in front of it). */
async function served(t: ExecutionContext, mode: 'base' | 'blob', opts: { spec?: Parameters<typeof bigRepo>[1]; limitRate?: number; faults?: Fault[] } = {}): Promise<Served & { proxyConnections: () => number }> {
  const { base, pub, work } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  await bigRepo(repo, opts.spec);
  const nginx = await startNginx(t, pub, { limitRate: opts.limitRate });
  const proxy = opts.faults ? await faultProxy(t, nginx.port, opts.faults) : null;
  const uriBase = proxy ? proxy.baseUrl : nginx.baseUrl;
  const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', `${uriBase}/`, ...(mode === 'base' ? ['--base', 'v1'] : ['--min-size', '100k'])]);
  if (r.code !== 0) throw new Error(`mpgit offload: ${r.stderr}`);
  const daemon = await mpgitDaemon(t, base);
  return { base, pub, work, repo, nginx, daemon, proxyConnections: () => proxy?.connections() ?? 0 };
}

function mpClone(s: Served, dir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return mpgit(['clone', ...extra, s.daemon.url('repo.git'), join(s.work, dir)], { env: { ...FAST_RETRY, ...env }, timeoutMs: 120_000 });
}

async function basePackFile(repo: string): Promise<string> {
  const p = (await readState(repo))!.packs.find((x) => x.kind === 'base' && x.retiredAt === null);
  if (!p || p.kind !== 'base') throw new Error('no base pack');
  return p.file;
}

/** Every *.pack under `dir`, with the hash its trailer carries. */
function packsUnder(dir: string): { path: string; trailer: string }[] {
  const out: { path: string; trailer: string }[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.pack(\.part)?$/.test(n)) {
        const b = readFileSync(p);
        out.push({ path: p, trailer: b.subarray(b.length - 20).toString('hex') });
      }
    }
  };
  walk(dir);
  return out;
}

test('mpgit clones from stock git daemon set up as git documents it (loose blobs, sideband-all, one pack per URI)', async (t) => {
  const { base, pub, work } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  await bigRepo(repo, { big: 3, loose: true });
  const nginx = await startNginx(t, pub);
  await git(['config', 'uploadpack.allowSidebandAll', 'true'], { cwd: repo });
  const blobs = (await git(['rev-list', '--objects', '--all'], { cwd: repo })).stdout
    .split('\n')
    .filter((l) => l.includes(' big/'))
    .map((l) => l.slice(0, 40));
  t.is(blobs.length, 3);
  for (const b of blobs) {
    const hash = (await runOk('git', ['pack-objects', '-q', join(pub, 'pack')], { cwd: repo, input: `${b}\n` })).stdout.trim();
    await git(['config', '--add', 'uploadpack.blobPackfileUri', `${b} ${hash} ${nginx.baseUrl}/pack-${hash}.pack`], { cwd: repo });
  }
  const daemon = await gitDaemon(t, base);
  const r = await mpgit(['clone', daemon.url('repo.git'), join(work, 'c')], { env: FAST_RETRY });
  t.is(r.code, 0, r.stderr);
  await checkClone(t, join(work, 'c'), repo);
  const log = await nginx.accessLog();
  t.is(log.length, 3, 'each blob pack downloaded once');
  t.true(log.every((e) => e.status === 200));
  // The blobs came by URI, not in the inline pack: four packs in the clone.
  t.is(readdirSync(join(work, 'c', '.git', 'objects', 'pack')).filter((n) => n.endsWith('.pack')).length, 4);
});

test('mpgit clones from mpgit daemon in base-pack and blob mode; --no-packfile-uris gets everything inline', async (t) => {
  const b = await served(t, 'base');
  const r = await mpClone(b, 'base');
  t.is(r.code, 0, r.stderr);
  await checkClone(t, join(b.work, 'base'), b.repo);
  t.deepEqual((await b.nginx.accessLog()).map((e) => e.uri), [`/${await basePackFile(b.repo)}`]);

  const n = await mpClone(b, 'none', ['--no-packfile-uris']);
  t.is(n.code, 0, n.stderr);
  await checkClone(t, join(b.work, 'none'), b.repo);
  t.is((await b.nginx.accessLog()).length, 1, 'no download without packfile URIs');

  const s = await served(t, 'blob');
  const r2 = await mpClone(s, 'blob', ['--bare']);
  t.is(r2.code, 0, r2.stderr);
  await fsckClean(t, join(s.work, 'blob'));
  const files = (await readState(s.repo))!.packs.map((p) => (p.kind === 'blob' ? `/${p.file}` : ''));
  t.deepEqual((await s.nginx.accessLog()).map((e) => e.uri).sort(), files.sort());
});

test('a URI serving wrong bytes is rejected, nothing corrupt lands, and the clone resumes once the server is fixed', async (t) => {
  const s = await served(t, 'base');
  const file = await basePackFile(s.repo);
  const good = join(s.work, 'good.pack');
  copyFileSync(join(s.pub, file), good);
  // Another valid pack under the base pack's name.
  await runOk('sh', ['-c', `git rev-parse v1^{tree} | git pack-objects -q --stdout > '${join(s.pub, file)}'`], { cwd: s.repo });
  const r = await mpClone(s, 'c');
  t.not(r.code, 0);
  t.regex(r.stderr, /does not match expected hash/);
  t.regex(r.stderr, new RegExp(file.replace(/\./g, '\\.')));
  const dir = join(s.work, 'c');
  // Nothing but the resume state; every pack in it is what its name says.
  t.deepEqual(readdirSync(dir), [RESUME_DIR]);
  for (const p of packsUnder(dir)) t.true(p.path.endsWith(`pack-${p.trailer}.pack`), `${p.path} is the pack its name says`);
  t.false(packsUnder(dir).some((p) => p.path.includes('downloads')), 'the wrong bytes were not kept');

  copyFileSync(good, join(s.pub, file));
  const again = await mpgit(['clone', '--resume', dir], { env: FAST_RETRY });
  t.is(again.code, 0, again.stderr);
  await checkClone(t, dir, s.repo);
});

test('a 404 fails with the URI named; re-running the same clone completes it', async (t) => {
  const s = await served(t, 'blob');
  const state = (await readState(s.repo))!;
  const victim = state.packs.find((p) => p.kind === 'blob')!;
  if (victim.kind !== 'blob') return t.fail();
  const saved = join(s.work, 'saved.pack');
  copyFileSync(join(s.pub, victim.file), saved);
  await runOk('rm', [join(s.pub, victim.file)]);
  const r = await mpClone(s, 'c');
  t.not(r.code, 0);
  t.regex(r.stderr, /HTTP 404/);
  t.regex(r.stderr, new RegExp(victim.file));
  t.is((await s.nginx.accessLog()).filter((e) => e.status === 404).length, 1, 'a 404 is not retried');
  copyFileSync(saved, join(s.pub, victim.file));
  const again = await mpClone(s, 'c');
  t.is(again.code, 0, again.stderr);
  await checkClone(t, join(s.work, 'c'), s.repo);
});

test('a cut connection and a stalled body are retried, resuming with Range', async (t) => {
  const cut = await served(t, 'base', { faults: [{ kind: 'cut', afterBytes: 400_000 }] });
  const r = await mpClone(cut, 'cut');
  t.is(r.code, 0, r.stderr);
  await checkClone(t, join(cut.work, 'cut'), cut.repo);
  const log = await cut.nginx.accessLog();
  const resumed = log.find((e) => e.range);
  t.truthy(resumed, JSON.stringify(log));
  const from = Number(/^bytes=(\d+)-$/.exec(resumed!.range)![1]);
  t.true(from > 0);
  t.is(resumed!.status, 206);
  t.is(resumed!.bytes, statSync(join(cut.pub, await basePackFile(cut.repo))).size - from);

  const stall = await served(t, 'base', { faults: [{ kind: 'stall', afterBytes: 300_000 }] });
  const r2 = await mpClone(stall, 'stall', [], { MPGIT_URI_STALL_TIMEOUT_MS: '1000' });
  t.is(r2.code, 0, r2.stderr);
  t.regex(r2.stderr, /stalled/);
  await checkClone(t, join(stall.work, 'stall'), stall.repo);
  t.is(stall.proxyConnections(), 2);
});

test('a clone killed mid-download resumes, fetching again only the remainder', async (t) => {
  // A ~4 MB base pack served at 1 MB/s: time to kill the client half-way.
  const s = await served(t, 'base', { spec: { big: 10, bigBytes: 400_000 }, limitRate: 1_000_000 });
  const file = await basePackFile(s.repo);
  const total = statSync(join(s.pub, file)).size;
  const dir = join(s.work, 'c');
  const hash = file.slice('pack-'.length, -'.pack'.length);
  const part = join(dir, RESUME_DIR, 'downloads', `${hash}.pack.part`);
  const client = start(t, process.execPath, [MPGIT, 'clone', s.daemon.url('repo.git'), dir]);
  const deadline = Date.now() + 60_000;
  while (!(existsSync(part) && statSync(part).size > 1_000_000)) {
    if (Date.now() > deadline || client.child.exitCode !== null) throw new Error(`no partial download to interrupt:\n${client.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  client.kill('SIGKILL');
  await client.exited;
  const kept = statSync(part).size;
  t.true(kept > 1_000_000 && kept < total, `partial ${kept} of ${total}`);

  const r = await mpgit(['clone', '--resume', dir], { env: FAST_RETRY, timeoutMs: 120_000 });
  t.is(r.code, 0, r.stderr);
  await checkClone(t, dir, s.repo);
  const log = await s.nginx.accessLog();
  const last = log[log.length - 1]!;
  t.is(last.range, `bytes=${kept}-`);
  t.is(last.status, 206);
  t.is(last.bytes, total - kept, 'only the remainder was fetched again');
  t.is(log.filter((e) => e.uri === `/${file}`).length, 2);
});

test('mpgit fetch after new commits upstream: new objects inline, a newly published blob pack by URI', async (t) => {
  const s = await served(t, 'blob');
  const r = await mpClone(s, 'c');
  t.is(r.code, 0, r.stderr);
  const dir = join(s.work, 'c');
  const fetch = () => mpgit(['fetch'], { cwd: dir, env: FAST_RETRY });
  await fetchAfterCommit(t, s, dir, { time: 1700100000, fetch, uris: 0, why: 'no URI needed' });
  await fetchAfterCommit(t, s, dir, { bigBytes: 150_000, time: 1700100060, refresh: true, fetch, uris: 1, why: 'the new blob pack, by URI' });
  await fsckClean(t, dir);
});

test('the connectivity check finds a missing object', async (t) => {
  const { base } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  const head = await bigRepo(repo, { big: 2, loose: true });
  // Everything main reaches (topic and the tag are not asked for here).
  const reachable = (await git(['rev-list', '--objects', 'main'], { cwd: repo })).stdout.trim().split('\n').length;
  t.deepEqual(await checkConnected(repo, [head]), { objects: reachable });
  const blob = (await git(['rev-parse', 'main:big/b0.bin'], { cwd: repo })).stdout.trim();
  await runOk('rm', [join(repo, 'objects', blob.slice(0, 2), blob.slice(2))]);
  const checked = await t.throwsAsync(checkConnected(repo, [head]));
  t.is((checked as { code?: string }).code, 'MPGIT_MISSING_OBJECTS');
  t.regex(checked!.message, new RegExp(`object ${blob} \\(reached from object [0-9a-f]{40}\\) is missing`));
});
