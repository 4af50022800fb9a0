// `mpgit daemon` serving offloaded repositories to stock git 2.39: the v2 fetch with a
// packfile-uris section (base-pack and blob mode, fully packed repositories), nginx serving the
// packs, `git fsck` judging the result; what the daemon itself sent; clients that do not ask;
// ls-refs as git answers it; fetches after new commits; shallow clones; refresh without restart.

import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { git, mpgit, run, runOk } from './helpers/proc.js';
import { gitDaemon } from './helpers/gitserve.js';
import { bigRepo, commitUpstream, fetchAfterCommit, fsckClean, mpgitDaemon, offloadedRepo, sameRefs, type BigRepoSpec, type OffloadedRepo, type MpgitDaemon } from './helpers/offload.js';
import { readState } from '../ts/offload/state.js';

interface Setup extends OffloadedRepo {
  daemon: MpgitDaemon;
}

async function setup(t: ExecutionContext, mode: 'base' | 'blob' | 'none', spec: BigRepoSpec = {}): Promise<Setup> {
  const o = await offloadedRepo(t, spec);
  if (mode !== 'none') await o.offload(mode === 'base' ? ['--base', 'v1'] : ['--min-size', '100k']);
  return { ...o, daemon: await mpgitDaemon(t, o.base) };
}

/** Stock git 2.39 cloning with packfile URIs (http) over protocol v2. */
async function stockClone(s: Setup, dir: string, extra: string[] = [], uris = true) {
  const cfg = ['-c', 'protocol.version=2', ...(uris ? ['-c', 'fetch.uriprotocols=http'] : [])];
  return run('git', [...cfg, 'clone', ...extra, s.daemon.url('repo.git'), join(s.work, dir)], { timeoutMs: 120_000 });
}

test('stock git clones a fully packed repository in base-pack mode: the base comes from nginx, fsck is clean', async (t) => {
  const s = await setup(t, 'base');
  const r = await stockClone(s, 'c');
  t.is(r.code, 0, r.stderr + s.daemon.proc.output());
  const dir = join(s.work, 'c');
  await fsckClean(t, dir);
  await sameRefs(t, dir, s.repo);
  t.is((await git(['status', '--porcelain'], { cwd: dir })).stdout, '');
  const state = (await readState(s.repo))!;
  const basePack = state.packs.find((p) => p.kind === 'base')!;
  if (basePack.kind !== 'base') return t.fail();
  const log = await s.nginx.accessLog();
  t.deepEqual(log.map((e) => [e.uri, e.status]), [[`/${basePack.file}`, 200]], 'the base pack, once');
  // The daemon's own pack was only what the base lacks: the clone holds both packs.
  const packs = (await git(['count-objects', '-v'], { cwd: dir })).stdout;
  t.regex(packs, /packs: 2/);
  t.regex(s.daemon.proc.output(), /packfile URI/);
});

test('stock git clones a fully packed repository in blob mode: each blob pack named once, fsck is clean', async (t) => {
  const s = await setup(t, 'blob');
  const r = await stockClone(s, 'c');
  t.is(r.code, 0, r.stderr);
  const dir = join(s.work, 'c');
  await fsckClean(t, dir);
  await sameRefs(t, dir, s.repo);
  const state = (await readState(s.repo))!;
  const files = state.packs.filter((p) => p.kind === 'blob').map((p) => (p.kind === 'blob' ? `/${p.file}` : ''));
  t.true(files.length >= 2);
  const log = await s.nginx.accessLog();
  t.deepEqual(log.map((e) => e.uri).sort(), files.sort(), 'every blob pack, each once');
  t.true(log.every((e) => e.status === 200));
});

test('a client that does not ask for packfile URIs gets a complete pack from the daemon', async (t) => {
  const s = await setup(t, 'base');
  const r = await stockClone(s, 'c', [], false);
  t.is(r.code, 0, r.stderr);
  await fsckClean(t, join(s.work, 'c'));
  t.deepEqual(await s.nginx.accessLog(), []);
  // Protocol v0 goes to git upload-pack as before.
  const v0 = await run('git', ['-c', 'protocol.version=0', 'clone', s.daemon.url('repo.git'), join(s.work, 'v0')]);
  t.is(v0.code, 0, v0.stderr);
  await fsckClean(t, join(s.work, 'v0'));
  t.deepEqual(await s.nginx.accessLog(), []);
});

test('packfile-uris is advertised only for offloaded repositories', async (t) => {
  const s = await setup(t, 'base');
  await bigRepo(join(s.base, 'plain.git'), { big: 1 });
  const caps = async (path: string) => {
    const r = await runOk('git', ['-c', 'protocol.version=2', 'ls-remote', s.daemon.url(path)], { env: { GIT_TRACE_PACKET: '1' } });
    return r.stderr.split('\n').filter((l) => /packet: +\S+< fetch=/.test(l)).join('\n');
  };
  t.regex(await caps('repo.git'), /packfile-uris/);
  const plain = await caps('plain.git');
  t.regex(plain, /fetch=/);
  t.notRegex(plain, /packfile-uris/);
});

test('ls-refs answers as git upload-pack does (symrefs, peeled tags, prefixes, unborn HEAD)', async (t) => {
  const s = await setup(t, 'base');
  await git(['symbolic-ref', 'refs/heads/alias', 'refs/heads/main'], { cwd: s.repo });
  await git(['tag', '-a', '-m', 'nested', 'v1-nested', 'v1'], { cwd: s.repo });
  const stock = await gitDaemon(t, s.base);
  const ls = async (url: string, opts: string[] = [], patterns: string[] = []) => (await runOk('git', ['-c', 'protocol.version=2', 'ls-remote', '--symref', ...opts, url, ...patterns])).stdout;
  const all = await ls(s.daemon.url('repo.git'));
  t.is(all, await ls(stock.url('repo.git')));
  t.regex(all, /ref: refs\/heads\/main\tHEAD/);
  t.regex(all, /refs\/tags\/v1-nested\^\{\}/);
  t.is(await ls(s.daemon.url('repo.git'), ['--tags']), await ls(stock.url('repo.git'), ['--tags']));
  t.is(await ls(s.daemon.url('repo.git'), [], ['refs/heads/ma*']), await ls(stock.url('repo.git'), [], ['refs/heads/ma*']));
  // An unborn HEAD: git 2.39 clones it as an empty repository on the right branch.
  await git(['symbolic-ref', 'HEAD', 'refs/heads/not-yet'], { cwd: s.repo });
  const r = await stockClone(s, 'u');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /HEAD points to an unborn branch|nonexistent ref/);
  // Hidden refs are neither listed nor fetchable.
  await git(['config', 'uploadpack.hideRefs', 'refs/heads/topic'], { cwd: s.repo });
  t.notRegex(await ls(s.daemon.url('repo.git')), /refs\/heads\/topic/);
});

test('a fetch after new commits upstream gets only the new objects, inline', async (t) => {
  const s = await setup(t, 'base');
  const r = await stockClone(s, 'c');
  t.is(r.code, 0, r.stderr);
  const dir = join(s.work, 'c');
  const stockFetch = (cwd: string) => () => run('git', ['-c', 'protocol.version=2', '-c', 'fetch.uriprotocols=http', 'fetch'], { cwd });
  await fetchAfterCommit(t, s, dir, { bigBytes: 50_000, fetch: stockFetch(dir), uris: 0, why: 'no URI for a fetch that has the base' });
  await fsckClean(t, dir);

  // Blob mode: a fetch whose new commit brings a big blob published after a refresh gets it by URI.
  const b = await setup(t, 'blob');
  const c2 = await stockClone(b, 'c2');
  t.is(c2.code, 0, c2.stderr);
  const dir2 = join(b.work, 'c2');
  await fetchAfterCommit(t, b, dir2, { bigBytes: 150_000, refresh: true, fetch: stockFetch(dir2), uris: 1, why: 'the new blob pack only' });
  await fsckClean(t, dir2);
});

test('a shallow clone of an offloaded repository is answered in full by git upload-pack', async (t) => {
  const s = await setup(t, 'base');
  const r = await stockClone(s, 'c', ['--depth', '1']);
  t.is(r.code, 0, r.stderr);
  const dir = join(s.work, 'c');
  t.is((await git(['rev-list', '--count', 'HEAD'], { cwd: dir })).stdout.trim(), '1');
  await fsckClean(t, dir);
  t.deepEqual(await s.nginx.accessLog(), []);
});

test('a refresh takes effect on the next clone, without restarting the daemon', async (t) => {
  const s = await setup(t, 'base');
  const first = await stockClone(s, 'a');
  t.is(first.code, 0, first.stderr);
  await commitUpstream(s.repo);
  await runOk('git', ['tag', '-f', '-a', '-m', 'v1 again', 'v1', 'main'], { cwd: s.repo });
  const re = await mpgit(['offload', s.repo, '--publish', s.pub, '--base-url', `${s.nginx.baseUrl}/`, '--base', 'v1', '--refresh']);
  t.is(re.code, 0, re.stderr);
  const second = await stockClone(s, 'b');
  t.is(second.code, 0, second.stderr);
  await fsckClean(t, join(s.work, 'b'));
  const state = (await readState(s.repo))!;
  const live = state.packs.find((p) => p.kind === 'base' && p.retiredAt === null)!;
  const log = await s.nginx.accessLog();
  t.is(log.length, 2);
  t.is(log[1]!.uri, `/${(live as { file: string }).file}`);
  t.not(log[0]!.uri, log[1]!.uri);
});
