// What `mpgit offload` prepares for the daemon: the answer to a clone of the advertised refs,
// cached before the first clone (stock git and mpgit served from one entry, no pack-objects
// run), recomputed by the first clone after a ref moved and prepared again by --refresh; a
// reachability bitmap written where there is none; a base gone from the repository. The git
// the daemon runs is seen through a wrapper on its PATH that logs every command line.

import test, { type ExecutionContext } from 'ava';
import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git, mpgit, run, runOk, tempDir } from './helpers/proc.js';
import type { Nginx } from './helpers/nginx.js';
import { startDaemon, type MpgitDaemonHandle } from './helpers/daemon.js';
import { bigRepo, commitUpstream, fsckClean, offloadedRepo, sameRefs } from './helpers/offload.js';
import { CACHE_DIR, cloneKey } from '../ts/offload/cache.js';
import { cloneWants } from '../ts/offload/warm.js';
import { readState } from '../ts/offload/state.js';

interface Setup {
  base: string;
  pub: string;
  work: string;
  repo: string;
  nginx: Nginx;
  daemon: MpgitDaemonHandle;
  /** The git command lines the daemon ran so far. */
  gitCalls(): Promise<string[]>;
  offload(extra?: string[]): Promise<{ stdout: string; stderr: string }>;
}

/** A daemon whose git runs through a wrapper that logs its arguments. */
async function setup(t: ExecutionContext, opts: { dropBitmap?: boolean; base?: string } = {}): Promise<Setup> {
  const o = await offloadedRepo(t, {}, async (repo) => {
    if (opts.dropBitmap) for (const n of await readdir(join(repo, 'objects', 'pack'))) if (n.endsWith('.bitmap')) await rm(join(repo, 'objects', 'pack', n));
  });
  const { base, pub, work, repo, nginx } = o;
  const offload = (extra: string[] = []) => o.offload(['--base', opts.base ?? 'main~1', ...extra]);
  const shim = await tempDir(t, 'mpgit-git-shim-');
  const realGit = (await runOk('sh', ['-c', 'command -v git'])).stdout.trim();
  const calls = join(shim, 'calls.log');
  await writeFile(join(shim, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\nexec '${realGit}' "$@"\n`);
  await chmod(join(shim, 'git'), 0o755);
  await writeFile(calls, '');
  const daemon = await startDaemon(t, [`--base-path=${base}`, '--export-all', '--reuseaddr'], { env: { PATH: `${shim}:${process.env.PATH}` } });
  const gitCalls = async () => (await readFile(calls, 'utf8')).split('\n').filter(Boolean);
  return { base, pub, work, repo, nginx, daemon, gitCalls, offload };
}

const packObjectsRuns = async (s: Setup) => (await s.gitCalls()).filter((l) => l.startsWith('pack-objects')).length;

function stockClone(s: Setup, dir: string) {
  return run('git', ['-c', 'protocol.version=2', '-c', 'fetch.uriprotocols=http', 'clone', '--bare', s.daemon.url('repo.git'), join(s.work, dir)], { timeoutMs: 120_000 });
}

function mpClone(s: Setup, dir: string) {
  return mpgit(['clone', '--bare', s.daemon.url('repo.git'), join(s.work, dir)], { timeoutMs: 120_000 });
}

/** fsck clean, and the clone's branches and tags are the server's. */
async function cloneIsRight(t: ExecutionContext, dir: string, repo: string): Promise<void> {
  await fsckClean(t, dir);
  await sameRefs(t, dir, repo);
}

async function cacheEntries(repo: string): Promise<string[]> {
  return (await readdir(join(repo, CACHE_DIR)).catch(() => [] as string[])).filter((n) => n.endsWith('.pack') && !n.startsWith('.'));
}

test('after `mpgit offload` the first clone, by stock git and by mpgit, is served from the prepared answer: no pack-objects runs', async (t) => {
  const s = await setup(t);
  const prep = await s.offload();
  t.regex(prep.stderr, /clone answer cached: 1 packfile URI \+ inline pack of/);
  t.is((await cacheEntries(s.repo)).length, 1, 'one answer serves both kinds of client');

  const a = await stockClone(s, 'a');
  t.is(a.code, 0, a.stderr);
  await cloneIsRight(t, join(s.work, 'a'), s.repo);
  const b = await mpClone(s, 'b');
  t.is(b.code, 0, b.stderr);
  await cloneIsRight(t, join(s.work, 'b'), s.repo);

  t.is(await packObjectsRuns(s), 0, (await s.gitCalls()).join('\n'));
  t.is(s.daemon.proc.output().match(/fetch: cached answer/g)?.length, 2, s.daemon.proc.output());
  t.is((await cacheEntries(s.repo)).length, 1);
  // Both got the base pack by URI and only the rest from the daemon.
  const state = (await readState(s.repo))!;
  const basePack = state.packs.find((p) => p.kind === 'base')!;
  t.deepEqual((await s.nginx.accessLog()).map((e) => e.uri), [`/${(basePack as { file: string }).file}`, `/${(basePack as { file: string }).file}`]);
});

test('after a ref moves the first clone computes its answer and caches it; --refresh prepares the answer again', async (t) => {
  const s = await setup(t);
  await s.offload();
  await commitUpstream(s.repo, { bigBytes: 50_000 });
  const a = await stockClone(s, 'a');
  t.is(a.code, 0, a.stderr);
  await cloneIsRight(t, join(s.work, 'a'), s.repo);
  t.is(await packObjectsRuns(s), 1, 'the new refs were not prepared: pack-objects ran once');
  const b = await mpClone(s, 'b');
  t.is(b.code, 0, b.stderr);
  await cloneIsRight(t, join(s.work, 'b'), s.repo);
  t.is(await packObjectsRuns(s), 1, 'the second clone was served from what the first cached');

  // Another push, then a refresh: fast-import left a second pack, so the repository is
  // repacked with a bitmap, and the answer for the new refs is ready before anyone asks.
  await commitUpstream(s.repo, { time: 1700200000 });
  const re = await s.offload(['--refresh']);
  t.regex(re.stderr, /wrote a reachability bitmap/);
  t.regex(re.stderr, /clone answer cached/);
  const packDir = (await readdir(join(s.repo, 'objects', 'pack'))).sort();
  t.is(packDir.filter((n) => n.endsWith('.pack')).length, 1, packDir.join(' '));
  t.is(packDir.filter((n) => n.endsWith('.bitmap')).length, 1, packDir.join(' '));
  const c = await stockClone(s, 'c');
  t.is(c.code, 0, c.stderr);
  await cloneIsRight(t, join(s.work, 'c'), s.repo);
  t.is(await packObjectsRuns(s), 1, 'served from the answer --refresh prepared');
});

test('offload writes a reachability bitmap where there is none; stock git and mpgit clone the bitmapped repository correctly', async (t) => {
  const s = await setup(t, { dropBitmap: true });
  const prep = await s.offload();
  t.regex(prep.stderr, /wrote a reachability bitmap/);
  const names = await readdir(join(s.repo, 'objects', 'pack'));
  const packs = names.filter((n) => n.endsWith('.pack'));
  t.is(packs.length, 1);
  t.true(names.includes(packs[0]!.replace(/\.pack$/, '.bitmap')), names.join(' '));
  // Present already: a second run leaves the packs alone.
  const again = await s.offload(['--refresh']);
  t.notRegex(again.stderr, /reachability bitmap/);
  t.deepEqual((await readdir(join(s.repo, 'objects', 'pack'))).sort(), names.sort());

  // Without the prepared answer the daemon's pack-objects runs, on the bitmapped repository.
  await rm(join(s.repo, CACHE_DIR), { recursive: true, force: true });
  const a = await stockClone(s, 'a');
  t.is(a.code, 0, a.stderr);
  await cloneIsRight(t, join(s.work, 'a'), s.repo);
  await rm(join(s.repo, CACHE_DIR), { recursive: true, force: true });
  const b = await mpClone(s, 'b');
  t.is(b.code, 0, b.stderr);
  await cloneIsRight(t, join(s.work, 'b'), s.repo);
  t.is(await packObjectsRuns(s), 2);
  t.is((await s.nginx.accessLog()).length, 2, 'the base pack by URI, each time');
});

test('the cache key is the content asked for: the scheme list and a no-op include-tag do not split it', async (t) => {
  const dir = join(await tempDir(t), 'repo.git');
  await bigRepo(dir);
  const pub = await tempDir(t);
  const r = await mpgit(['offload', dir, '--publish', pub, '--base-url', 'http://cdn.example/p/', '--base', 'main~1']);
  t.is(r.code, 0, r.stderr);
  const state = await readState(dir);
  const wants = await cloneWants(dir);
  const head = (await git(['rev-parse', 'main'], { cwd: dir })).stdout.trim();
  const tag = (await git(['rev-parse', 'v1'], { cwd: dir })).stdout.trim();
  t.true(wants.includes(head) && wants.includes(tag));
  const key = (req: Partial<Parameters<typeof cloneKey>[2]>) => cloneKey(dir, state, { wants, ofsDelta: true, includeTag: false, protocols: ['http'], ...req });
  // Stock git (http, no include-tag) and mpgit (http,https, include-tag) ask for the same pack.
  t.is(await key({}), await key({ includeTag: true, protocols: ['http', 'https'] }));
  // A client that takes no URI of ours gets everything inline: another answer.
  t.not(await key({}), await key({ protocols: ['https'] }));
  t.not(await key({}), await key({ protocols: null }));
  t.not(await key({}), await key({ ofsDelta: false }));
  // Without the tag among the wants, include-tag could add it: then it counts.
  const noTag = wants.filter((w) => w !== tag);
  t.not(await key({ wants: noTag }), await key({ wants: noTag, includeTag: true }));
});

test('a base gone from the repository (its tag deleted, objects pruned): clones are answered plainly', async (t) => {
  const s = await setup(t, { base: 'v1' });
  await s.offload();
  const state = (await readState(s.repo))!;
  const basePack = state.packs.find((p) => p.kind === 'base')!;
  if (basePack.kind !== 'base') return t.fail();
  t.not(basePack.object, basePack.commit, 'the base is an annotated tag');
  await git(['tag', '-d', 'v1'], { cwd: s.repo });
  await git(['gc', '--prune=now', '-q'], { cwd: s.repo });
  t.is((await run('git', ['cat-file', '-e', basePack.object], { cwd: s.repo })).code, 1, 'the tag object is gone');
  const a = await stockClone(s, 'a');
  t.is(a.code, 0, a.stderr);
  await cloneIsRight(t, join(s.work, 'a'), s.repo);
  t.deepEqual(await s.nginx.accessLog(), [], 'no URI named');
  t.regex(s.daemon.proc.output(), /plain: base [0-9a-f]{40} is gone from the repository/);
});
