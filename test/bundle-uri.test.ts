// Bundle URIs on both ends, with nginx as the bundle server: `mpgit offload --bundles` and
// `mpgit daemon` serving git 2.55 (transfer.bundleURI) and git 2.39 (--bundle-uri); `mpgit
// clone` from a git 2.55 `git daemon` that advertises bundles; a clone killed mid-bundle that
// resumes with a Range request; a bundle with wrong bytes skipped; `mpgit fetch` taking only the
// newest bundle (fetch.bundleURI, fetch.bundleCreationToken); nested bundle lists; an unreachable
// bundle server given up on quickly. Stock git judges every result.

import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freePort, git, mpgit, MPGIT, run, runOk, start } from './helpers/proc.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { bigRepo, checkClone, commitUpstream, fsckClean, mpgitDaemon, offloadDirs, type MpgitDaemon } from './helpers/offload.js';
import { currentGit } from './helpers/current-git.js';
import { RESUME_DIR } from '../ts/client/resume.js';
import { readState } from '../ts/offload/state.js';

const FAST_RETRY = { MPGIT_URI_BACKOFF_MS: '100' };

async function refsUnder(dir: string, prefix: string): Promise<string[]> {
  return (await git(['for-each-ref', '--format=%(refname) %(objectname)', prefix], { cwd: dir })).stdout.split('\n').filter(Boolean);
}

interface Bundled {
  repo: string;
  pub: string;
  work: string;
  nginx: Nginx;
  daemon: MpgitDaemon;
  /** The live bundles' file names, oldest first. */
  bundles(): Promise<string[]>;
}

/** A repository offloaded with `--base main --bundles`, nginx serving the publish directory. */
async function bundled(t: ExecutionContext, opts: { spec?: Parameters<typeof bigRepo>[1]; limitRate?: number; base?: string } = {}): Promise<Bundled> {
  const { base, pub, work } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  await bigRepo(repo, opts.spec);
  const nginx = await startNginx(t, pub, { limitRate: opts.limitRate });
  const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', `${nginx.baseUrl}/`, '--base', opts.base ?? 'main', '--bundles']);
  if (r.code !== 0) throw new Error(`mpgit offload: ${r.stderr}`);
  const daemon = await mpgitDaemon(t, base);
  const bundles = async () => (await readState(repo))!.bundles.filter((b) => b.retiredAt === null).sort((a, b) => a.creationToken - b.creationToken).map((b) => b.file);
  return { repo, pub, work, nginx, daemon, bundles };
}

test('git 2.55 with transfer.bundleURI clones from mpgit daemon, taking the bundle from nginx', async (t) => {
  // The bundle one commit behind main: the fetch after it brings that commit.
  const s = await bundled(t, { base: 'main~1' });
  const [file] = await s.bundles();
  const dir = join(s.work, 'c');
  const r = await runOk(await currentGit(), ['-c', 'transfer.bundleURI=true', 'clone', s.daemon.url('repo.git'), dir], { env: { GIT_PROTOCOL: 'version=2' } });
  t.notRegex(r.stderr, /warning/, r.stderr);
  const log = await s.nginx.accessLog();
  t.deepEqual(
    log.map((e) => [e.uri, e.status]),
    [[`/${file}`, 200]],
  );
  t.is(log[0]!.bytes, statSync(join(s.pub, file!)).size);
  t.deepEqual(await refsUnder(dir, 'refs/bundles/'), [`refs/bundles/mpgit/base ${(await git(['rev-parse', 'main~1'], { cwd: s.repo })).stdout.trim()}`]);
  await checkClone(t, dir, s.repo);
  // The daemon said so: one bundle list sent in-process, and the rest from the answer
  // `mpgit offload` prepared for a clone that has the bundle.
  t.regex(s.daemon.proc.output(), /1 bundle lists/);
  t.regex(s.daemon.proc.output(), /fetch: cached answer .*; 0 packfile URIs/);
});

test("git 2.39's clone --bundle-uri=<published bundle> from mpgit daemon", async (t) => {
  const s = await bundled(t);
  const [file] = await s.bundles();
  const dir = join(s.work, 'c');
  await git(['clone', `--bundle-uri=${s.nginx.baseUrl}/${file}`, s.daemon.url('repo.git'), dir]);
  t.deepEqual(
    (await s.nginx.accessLog()).map((e) => [e.uri, e.status]),
    [[`/${file}`, 200]],
  );
  t.is((await refsUnder(dir, 'refs/bundles/')).length, 1);
  await checkClone(t, dir, s.repo);
});

test('mpgit clone from a git 2.55 daemon whose repository advertises a bundle takes the bundle', async (t) => {
  const { base, pub, work } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  await bigRepo(repo);
  const nginx = await startNginx(t, pub);
  const g = await currentGit();
  await runOk(g, ['bundle', 'create', '-q', join(pub, 'all.bundle'), '--all'], { cwd: repo });
  for (const [k, v] of [
    ['uploadpack.advertiseBundleURIs', 'true'],
    ['bundle.version', '1'],
    ['bundle.mode', 'all'],
    ['bundle.heuristic', 'creationToken'],
    ['bundle.all.uri', `${nginx.baseUrl}/all.bundle`],
    ['bundle.all.creationToken', '1'],
  ]) await runOk(g, ['config', k!, v!], { cwd: repo });
  const port = await freePort();
  // git-daemon itself (`git daemon` would run it as a child that outlives a kill of the parent).
  const execPath = (await runOk(g, ['--exec-path'])).stdout.trim();
  const daemon = start(t, join(execPath, 'git-daemon'), [`--base-path=${base}`, '--export-all', '--reuseaddr', '--verbose', '--listen=127.0.0.1', `--port=${port}`], {
    // Its upload-pack must be 2.55's too (2.39's has no bundle-uri).
    env: { PATH: `${dirname(g)}:${process.env.PATH}`, GIT_EXEC_PATH: execPath },
  });
  await daemon.waitFor(/Ready to rumble/);
  const dir = join(work, 'c');
  const r = await mpgit(['clone', '-v', `git://127.0.0.1:${port}/repo.git`, dir], { env: FAST_RETRY });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(
    (await nginx.accessLog()).map((e) => [e.uri, e.status]),
    [['/all.bundle', 200]],
  );
  t.regex(r.stderr, /The bundles carry every ref asked for/);
  t.true((await refsUnder(dir, 'refs/bundles/heads/')).length >= 2, 'main and topic from the bundle');
  await checkClone(t, dir, repo);
});

test('mpgit clone killed during a bundle download resumes on the next run (nginx logs a 206)', async (t) => {
  // A ~3 MB bundle at 1 MB/s: time to kill the client part-way.
  const s = await bundled(t, { spec: { big: 8, bigBytes: 400_000 }, limitRate: 1_000_000 });
  const [file] = await s.bundles();
  const total = statSync(join(s.pub, file!)).size;
  const dir = join(s.work, 'c');
  const downloads = join(dir, RESUME_DIR, 'bundles');
  const client = start(t, process.execPath, [MPGIT, 'clone', s.daemon.url('repo.git'), dir]);
  const deadline = Date.now() + 60_000;
  const partSize = () => {
    const part = existsSync(downloads) ? readdirSync(downloads).find((n) => n.endsWith('.bundle.part')) : undefined;
    return part ? statSync(join(downloads, part)).size : 0;
  };
  while (partSize() < 800_000) {
    if (Date.now() > deadline || client.child.exitCode !== null) throw new Error(`no partial bundle to interrupt:\n${client.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  client.kill('SIGKILL');
  await client.exited;
  const kept = partSize();
  t.true(kept >= 800_000 && kept < total, `partial ${kept} of ${total}`);

  const r = await mpgit(['clone', s.daemon.url('repo.git'), dir], { env: FAST_RETRY, timeoutMs: 120_000 });
  t.is(r.code, 0, r.stderr);
  await checkClone(t, dir, s.repo);
  const log = (await s.nginx.accessLog()).filter((e) => e.uri === `/${file}`);
  t.is(log.length, 2);
  t.is(log[1]!.range, `bytes=${kept}-`);
  t.is(log[1]!.status, 206);
  t.is(log[1]!.bytes, total - kept, 'only the remainder was fetched again');
  t.is((await refsUnder(dir, 'refs/bundles/')).length, 1);
});

test('a bundle with wrong bytes is rejected with one warning, and the clone completes without it', async (t) => {
  const s = await bundled(t);
  const [file] = await s.bundles();
  // Flip a byte inside the pack (the header still parses): only the checksum can tell.
  const path = join(s.pub, file!);
  const bytes = readFileSync(path);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  writeFileSync(path, bytes);
  const dir = join(s.work, 'c');
  const r = await mpgit(['clone', s.daemon.url('repo.git'), dir], { env: FAST_RETRY });
  t.is(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  t.is(warnings.length, 1, r.stderr);
  t.regex(warnings[0]!, /bundles not used: .*corrupt/);
  t.deepEqual(await refsUnder(dir, 'refs/bundles/'), []);
  await checkClone(t, dir, s.repo);
  // The daemon sent the whole pack inline instead.
  t.regex(s.daemon.proc.output(), /inline pack \d+ bytes/);
});

test('mpgit fetch after an increment is published takes only the new bundle', async (t) => {
  const s = await bundled(t);
  const dir = join(s.work, 'c');
  const listUrl = `${s.nginx.baseUrl}/bundle-list`;
  const c = await mpgit(['clone', `--bundle-uri=${listUrl}`, s.daemon.url('repo.git'), dir], { env: FAST_RETRY });
  t.is(c.code, 0, c.stderr);
  t.is((await git(['config', 'fetch.bundleURI'], { cwd: dir })).stdout.trim(), listUrl);
  const [first] = await s.bundles();
  const token1 = (await git(['config', 'fetch.bundleCreationToken'], { cwd: dir })).stdout.trim();
  t.regex(first!, new RegExp(`^bundle-${token1}-`));

  const head = await commitUpstream(s.repo, { bigBytes: 100_000, time: 1700200000 });
  const o = await mpgit(['offload', s.repo, '--publish', s.pub, '--base-url', `${s.nginx.baseUrl}/`, '--base', 'main', '--refresh']);
  t.is(o.code, 0, o.stderr);
  const files = await s.bundles();
  t.is(files.length, 2);
  const n0 = (await s.nginx.accessLog()).length;
  const f = await mpgit(['fetch'], { cwd: dir, env: FAST_RETRY });
  t.is(f.code, 0, f.stderr);
  const log = (await s.nginx.accessLog()).slice(n0);
  t.deepEqual(
    log.map((e) => [e.uri, e.status]),
    [
      ['/bundle-list', 200],
      [`/${files[1]}`, 200],
    ],
  );
  t.is((await git(['rev-parse', 'refs/remotes/origin/main'], { cwd: dir })).stdout.trim(), head);
  t.is((await git(['rev-parse', 'refs/bundles/heads/main'], { cwd: dir })).stdout.trim(), head);
  t.regex(files[1]!, new RegExp(`^bundle-${(await git(['config', 'fetch.bundleCreationToken'], { cwd: dir })).stdout.trim()}-`));
  await fsckClean(t, dir);
  // Nothing new: the list is read, no bundle downloaded.
  const n1 = (await s.nginx.accessLog()).length;
  t.is((await mpgit(['fetch'], { cwd: dir })).code, 0);
  t.deepEqual(
    (await s.nginx.accessLog()).slice(n1).map((e) => e.uri),
    ['/bundle-list'],
  );
});

test('--no-bundle-uri and transfer.bundleURI=false clone without the bundles', async (t) => {
  const s = await bundled(t);
  for (const [name, args] of [
    ['flag', ['clone', '--no-bundle-uri']],
    ['config', ['-c', 'transfer.bundleURI=false', 'clone']],
  ] as const) {
    const dir = join(s.work, name);
    const r = await mpgit([...args, s.daemon.url('repo.git'), dir]);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(await refsUnder(dir, 'refs/bundles/'), []);
    await checkClone(t, dir, s.repo);
  }
  // The base pack still comes by packfile URI (that is not a bundle).
  t.deepEqual(
    (await s.nginx.accessLog()).filter((e) => e.uri.startsWith('/bundle')),
    [],
    'no bundle asked for',
  );
});

test('an unreachable bundle server is given up on after one retry, and the clone completes without it', async (t) => {
  const { base, pub, work } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  await bigRepo(repo);
  // The list names bundles on a server that is down (a port just freed: connection refused).
  const r0 = await mpgit(['offload', repo, '--publish', pub, '--base-url', `http://127.0.0.1:${await freePort()}/`, '--base', 'main', '--bundles']);
  t.is(r0.code, 0, r0.stderr);
  const daemon = await mpgitDaemon(t, base);
  const dir = join(work, 'c');
  // Packfile URIs off: they name the same server, and a pack promised by URI is not optional.
  const r = await mpgit(['clone', '--no-packfile-uris', daemon.url('repo.git'), dir], { env: FAST_RETRY });
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr.split('\n').filter((l) => /retrying in/.test(l)).length, 1, r.stderr);
  t.regex(r.stderr, /bundles not used/);
  t.deepEqual(await refsUnder(dir, 'refs/bundles/'), []);
  await checkClone(t, dir, repo);
});

test('a bundle list whose entries are bundle lists is followed, as git follows it; a cycle stops at depth 4', async (t) => {
  const s = await bundled(t);
  const [file] = await s.bundles();
  // top -> mirrors (mode any) -> the bundle; a dead mirror first, so "any" moves on to the next.
  writeFileSync(join(s.pub, 'inner-list'), `[bundle]\n\tversion = 1\n\tmode = all\n[bundle "b"]\n\turi = ${file}\n`);
  writeFileSync(join(s.pub, 'mirrors-list'), `[bundle]\n\tversion = 1\n\tmode = any\n[bundle "dead"]\n\turi = missing-list\n[bundle "m1"]\n\turi = inner-list\n`);
  writeFileSync(join(s.pub, 'top-list'), `[bundle]\n\tversion = 1\n\tmode = all\n[bundle "mirrors"]\n\turi = ${s.nginx.baseUrl}/mirrors-list\n`);
  const dir = join(s.work, 'c');
  const r = await mpgit(['clone', '-v', `--bundle-uri=${s.nginx.baseUrl}/top-list`, s.daemon.url('repo.git'), dir], { env: FAST_RETRY });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /Bundle list .*mirrors-list: 2 entries \(nested, depth 1\)/);
  t.true((await refsUnder(dir, 'refs/bundles/')).length > 0, 'the nested bundle was applied');
  await checkClone(t, dir, s.repo);
  // A list that names itself: followed to the limit, then the fetch carries everything.
  writeFileSync(join(s.pub, 'loop-list'), `[bundle]\n\tversion = 1\n\tmode = all\n[bundle "self"]\n\turi = loop-list\n`);
  const dir2 = join(s.work, 'c2');
  const l = await mpgit(['clone', `--bundle-uri=${s.nginx.baseUrl}/loop-list`, s.daemon.url('repo.git'), dir2], { env: FAST_RETRY });
  t.is(l.code, 0, l.stderr);
  t.regex(l.stderr, /exceeded bundle URI recursion limit \(4\)/);
  await checkClone(t, dir2, s.repo);
});
