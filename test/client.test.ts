// mpgit clone / fetch / ls-remote against stock git daemon (v2, and forced to v0), with stock
// git judging the result: refs, objects, fsck, status, the work tree against git archive.

import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { FLUSH, pkt, pktLine, pktText, PktReader } from '../ts/pktline.js';
import { encodeV2Advertisement } from '../ts/protocol/capabilities.js';
import { initBare, makeRepo } from './helpers/repo.js';
import { freePort, git, MPGIT, mpgit, run, runOk, start, tempDir } from './helpers/proc.js';
import { gitDaemon } from './helpers/gitserve.js';
import { startDaemon } from './helpers/daemon.js';

/** A source repository with every kind of entry a checkout must handle. */
/** sourceRepo's src.git under a new base, served by git daemon, and an empty work directory. */
async function servedSource(t: ExecutionContext, o: { v0?: boolean } = {}) {
  const base = await tempDir(t);
  const src = await sourceRepo(t, base);
  const d = await gitDaemon(t, base, o);
  return { src, d, work: await tempDir(t) };
}

async function sourceRepo(t: ExecutionContext, base: string, name = 'src.git'): Promise<string> {
  const dir = join(base, name);
  await makeRepo(dir, { commits: 4 });
  const big = Array.from({ length: 4000 }, (_, i) => `line ${i} ${(i * 7919) % 1000}`).join('\n') + '\n';
  const stream =
    'commit refs/heads/main\ncommitter Test <test@example.com> 1700001000 +0000\ndata 8\nvariety\nfrom refs/heads/main^0\n' +
    'M 160000 1111111111111111111111111111111111111111 deps/submodule\n' +
    'M 100644 inline "name with spaces.txt"\ndata 6\nspace\n' +
    'M 100644 inline "caf\\303\\251/\\303\\274nicode.md"\ndata 4\nutf\n' +
    'M 100644 inline empty.txt\ndata 0\n' +
    `M 100644 inline a/b/c/d/e/deep.txt\ndata 5\ndeep\n\n` +
    `M 100644 inline big.txt\ndata ${Buffer.byteLength(big)}\n${big}\n`;
  await runOk('git', ['fast-import', '--quiet'], { cwd: dir, input: stream });
  return dir;
}

/** Adds a commit on `branch` changing a few files (so a fetch can get deltas against them). */
async function commitUpstream(dir: string, branch = 'main', n = 1): Promise<void> {
  let stream = '';
  for (let i = 0; i < n; i++) {
    const body = Array.from({ length: 4000 }, (_, k) => `line ${k} ${(k * 7919) % 1000}${k === 17 * (i + 1) ? ' changed' : ''}`).join('\n') + '\n';
    stream +=
      `commit refs/heads/${branch}\ncommitter Test <test@example.com> ${1700100000 + i * 60} +0000\ndata 7\nupdate\nfrom refs/heads/${branch}^0\n` +
      `M 100644 inline big.txt\ndata ${Buffer.byteLength(body)}\n${body}\n` +
      `M 100644 inline src/dir0/file0.txt\ndata 9\nchanged ${i}\n\n`;
  }
  await runOk('git', ['fast-import', '--quiet'], { cwd: dir, input: stream });
}

async function refs(gitDir: string, pattern: string[] = []): Promise<Map<string, string>> {
  const out = (await git(['--git-dir', gitDir, 'for-each-ref', '--format=%(objectname) %(refname)', ...pattern])).stdout;
  return new Map(out.split('\n').filter(Boolean).map((l) => [l.slice(41), l.slice(0, 40)] as [string, string]));
}

async function objects(gitDir: string): Promise<string> {
  const out = (await git(['--git-dir', gitDir, 'rev-list', '--objects', '--all'])).stdout;
  return out.split('\n').filter(Boolean).map((l) => l.slice(0, 40)).sort().join('\n');
}

/** Every path under `dir` (but .git) with its type, mode, and content or link target. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      if (!rel && name === '.git') continue;
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, p));
      if (st.isSymbolicLink()) out.push(`link ${p} -> ${readlinkSync(join(dir, p))}`);
      else if (st.isDirectory()) {
        out.push(`dir ${p}`);
        walk(p);
      } else out.push(`file ${p} ${st.mode & 0o111 ? 'x' : '-'} ${createHash('sha1').update(readFileSync(join(dir, p))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

/** What stock git says about a fresh non-bare clone of `src`. */
async function assertCloneOf(t: ExecutionContext, dir: string, src: string): Promise<void> {
  const gitDir = join(dir, '.git');
  const srcRefs = await refs(src);
  const got = await refs(gitDir);
  for (const [name, oid] of srcRefs) {
    if (name.startsWith('refs/heads/')) t.is(got.get(`refs/remotes/origin/${name.slice(11)}`), oid, `origin/${name.slice(11)}`);
    else t.is(got.get(name), oid, name);
  }
  const head = (await git(['--git-dir', src, 'symbolic-ref', 'HEAD'])).stdout.trim();
  t.is((await git(['symbolic-ref', 'HEAD'], { cwd: dir })).stdout.trim(), head);
  t.is(got.get(head), srcRefs.get(head));
  t.is((await git(['symbolic-ref', 'refs/remotes/origin/HEAD'], { cwd: dir })).stdout.trim(), `refs/remotes/origin/${head.slice(11)}`);
  t.is(await objects(gitDir), await objects(src), 'rev-list --objects --all');
  const fsck = await run('git', ['fsck', '--full', '--strict'], { cwd: dir });
  t.is(fsck.code, 0, fsck.stderr);
  t.is(fsck.stdout + fsck.stderr, '', 'fsck is silent');
  // diff-files trusts the index's stat data; status would refresh it first.
  t.is((await run('git', ['diff-files', '--quiet'], { cwd: dir })).code, 0, 'git diff-files --quiet');
  t.is((await git(['status', '--porcelain', '--ignored'], { cwd: dir })).stdout, '', 'git status clean');
  const archive = await tempDir(t, 'mpgit-archive-');
  await runOk('sh', ['-c', `git --git-dir='${src}' archive --format=tar HEAD | tar -x -C '${archive}'`]);
  t.deepEqual(listing(dir), listing(archive), 'work tree equals git archive of HEAD');
  // The pack layer's .idx is the one git would write for the same pack.
  const packDir = join(gitDir, 'objects', 'pack');
  // A directory of the test's own: two tests can receive the same pack (same name).
  const refDir = await tempDir(t, 'mpgit-ref-idx-');
  for (const f of readdirSync(packDir).filter((n) => n.endsWith('.pack'))) {
    const idx = join(packDir, f.replace(/\.pack$/, '.idx'));
    const ref = join(refDir, `${f}.git.idx`);
    await git(['index-pack', '-o', ref, join(packDir, f)]);
    t.true(readFileSync(idx).equals(readFileSync(ref)), `${f}: .idx equals git index-pack's`);
  }
}

for (const v0 of [false, true]) {
  test(`clone from git daemon (protocol ${v0 ? 'v0, server without v2' : 'v2'}) equals the source`, async (t) => {
    const { src, d, work } = await servedSource(t, { v0 });
    const r = await mpgit(['clone', '-v', d.url('src.git'), 'out'], { cwd: work });
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /^Cloning into 'out'\.\.\./m);
    t.regex(r.stderr, new RegExp(`Server speaks protocol v${v0 ? 0 : 2}`));
    t.regex(r.stderr, /Connected to 127\.0\.0\.1 port \d+ over TCP/);
    await assertCloneOf(t, join(work, 'out'), src);
    t.deepEqual(readdirSync(work), ['out'], 'no temporary directory left');
    const cfg = readFileSync(join(work, 'out', '.git', 'config'), 'utf8');
    t.regex(cfg, /fetch = \+refs\/heads\/\*:refs\/remotes\/origin\/\*/);
    t.is((await git(['config', 'remote.origin.url'], { cwd: join(work, 'out') })).stdout.trim(), d.url('src.git'));
    t.is((await git(['config', 'branch.main.merge'], { cwd: join(work, 'out') })).stdout.trim(), 'refs/heads/main');
  });

  test(`fetch after new upstream commits gets a thin pack (protocol ${v0 ? 'v0' : 'v2'})`, async (t) => {
    const { src, d, work } = await servedSource(t, { v0 });
    // One clone by mpgit, one by git: fetch must work in both.
    const mine = await mpgit(['clone', '-q', d.url('src.git'), 'mine'], { cwd: work });
    t.is(mine.code, 0, mine.stderr);
    await git(['clone', '-q', d.url('src.git'), 'theirs'], { cwd: work });
    await commitUpstream(src, 'main', 2);
    await commitUpstream(src, 'topic', 1);
    await runOk('git', ['tag', '-a', '-m', 'two', 'v2.0', 'main'], { cwd: src });
    await runOk('git', ['tag', 'light', 'topic'], { cwd: src });
    for (const clone of ['mine', 'theirs']) {
      const dir = join(work, clone);
      const r = await mpgit(['fetch', '-v'], { cwd: dir });
      t.is(r.code, 0, r.stderr);
      t.regex(r.stderr, /From git:\/\/127\.0\.0\.1/);
      t.regex(r.stderr, /\.\.[0-9a-f]{7} +main -> origin\/main/);
      t.regex(r.stderr, /\[new tag\] +v2\.0 -> v2\.0/);
      t.regex(r.stderr, /thin pack: \d*[1-9]\d* bases? completed from local objects/, 'the pack was thin');
      const got = await refs(join(dir, '.git'));
      for (const [name, oid] of await refs(src)) {
        if (name.startsWith('refs/heads/')) t.is(got.get(`refs/remotes/origin/${name.slice(11)}`), oid, `${clone}: origin/${name.slice(11)}`);
        else t.is(got.get(name), oid, `${clone}: ${name}`);
      }
      t.is(await objects(join(dir, '.git')), await objects(src), `${clone}: rev-list --objects --all`);
      const fsck = await run('git', ['fsck', '--full', '--strict'], { cwd: dir });
      t.is(fsck.code, 0, fsck.stderr);
      const fetchHead = readFileSync(join(dir, '.git', 'FETCH_HEAD'), 'utf8');
      t.regex(fetchHead, new RegExp(`^${got.get('refs/remotes/origin/main')}\t\tbranch 'main' of ${d.url('src.git')}$`, 'm'));
      t.regex(fetchHead, /\tnot-for-merge\tbranch 'topic' of /);
      // git agrees that nothing is left to fetch.
      t.is((await git(['fetch', '--dry-run'], { cwd: dir })).stderr, '', 'git fetch --dry-run finds nothing new');
      const second = await mpgit(['fetch'], { cwd: dir });
      t.is(second.code, 0, second.stderr);
      t.is(second.stderr, '', 'an up-to-date fetch prints nothing');
    }
  });
}

test('clone and fetch from mpgit daemon; over MPTCP with mpgit daemon --mptcp', async (t) => {
  const base = await tempDir(t);
  const src = await sourceRepo(t, base);
  const d = await startDaemon(t, [`--base-path=${base}`, '--export-all', '--mptcp']);
  const work = await tempDir(t);
  const r = await mpgit(['clone', '-v', '--mptcp', d.url('src.git'), 'out'], { cwd: work });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /Connected to 127\.0\.0\.1 port \d+ over MPTCP\n/);
  t.regex(r.stderr, /MPTCP: \d+ subflows? \(\d+ used\)/);
  await assertCloneOf(t, join(work, 'out'), src);
  await commitUpstream(src);
  const f = await mpgit(['fetch', '-v'], { cwd: join(work, 'out'), env: { GIT_ENABLE_MPTCP: '1' } });
  t.is(f.code, 0, f.stderr);
  t.regex(f.stderr, /over MPTCP/);
  t.is((await git(['rev-parse', 'origin/main'], { cwd: join(work, 'out') })).stdout, (await git(['rev-parse', 'main'], { cwd: src })).stdout);
  t.is((await run('git', ['fsck', '--full'], { cwd: join(work, 'out') })).code, 0);
});

for (const v0 of [false, true]) {
  test(`fetch negotiates past 300 local-only commits and receives only what is new (protocol ${v0 ? 'v0' : 'v2'})`, async (t) => {
    const { src, d, work } = await servedSource(t, { v0 });
    const dir = join(work, 'c');
    const c = await mpgit(['clone', '-q', d.url('src.git'), dir]);
    t.is(c.code, 0, c.stderr);
    let local = '';
    for (let i = 0; i < 300; i++) {
      local += `commit refs/heads/local\ncommitter Me <me@example.com> ${1800000000 + i} +0000\ndata 6\nlocal\n${i === 0 ? 'from refs/heads/main^0\n' : ''}M 100644 inline mine-${i}.txt\ndata 4\n${String(i).padStart(3, '0')}\n\n`;
    }
    await runOk('git', ['fast-import', '--quiet'], { cwd: dir, input: local });
    await commitUpstream(src);
    const r = await mpgit(['fetch', '-v'], { cwd: dir });
    t.is(r.code, 0, r.stderr);
    const m = /Received (\d+) objects/.exec(r.stderr);
    t.truthy(m, r.stderr);
    t.true(Number(m![1]) < 10, `only the new commit's objects came (${m![1]})`);
    t.is((await git(['rev-parse', 'origin/main'], { cwd: dir })).stdout, (await git(['rev-parse', 'main'], { cwd: src })).stdout);
    t.is((await run('git', ['fsck', '--full'], { cwd: dir })).code, 0);
  });
}

test('a work tree of 3000 files (checked out by several threads) equals the source', async (t) => {
  const base = await tempDir(t);
  const src = join(base, 'wide.git');
  await initBare(src);
  let stream = '';
  for (let c = 0; c < 2; c++) {
    stream += `commit refs/heads/main\ncommitter T <t@example.com> ${1700000000 + c} +0000\ndata 5\nwide\n`;
    for (let i = 0; i < 3000; i++) {
      if (c && i % 3) continue;
      const body = `file ${i} rev ${c}\n${'x'.repeat(i % 700)}\n`;
      const mode = i % 97 === 0 ? '100755' : '100644';
      stream += `M ${mode} inline d${i % 40}/e${i % 7}/f${i}.txt\ndata ${Buffer.byteLength(body)}\n${body}`;
    }
    stream += `M 120000 inline d0/link\ndata 9\ne0/f0.txt\nM 160000 ${'2'.repeat(40)} d1/sub\n\n`;
  }
  await runOk('git', ['fast-import', '--quiet'], { cwd: src, input: stream });
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  const r = await mpgit(['clone', '-v', d.url('wide.git'), 'out'], { cwd: work });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /Checked out 3002 files/);
  await assertCloneOf(t, join(work, 'out'), src);
});

test('shallow clone (--depth 1), then fetch deepens nothing and stays consistent', async (t) => {
  const { src, d, work } = await servedSource(t);
  const r = await mpgit(['clone', '--depth', '1', d.url('src.git'), 'shallow'], { cwd: work });
  t.is(r.code, 0, r.stderr);
  const dir = join(work, 'shallow');
  const head = (await git(['rev-parse', 'HEAD'], { cwd: src })).stdout.trim();
  t.is(readFileSync(join(dir, '.git', 'shallow'), 'utf8'), `${head}\n`);
  t.is((await git(['rev-list', '--count', 'HEAD'], { cwd: dir })).stdout.trim(), '1');
  t.is((await git(['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim(), head);
  t.is((await git(['config', '--get-all', 'remote.origin.fetch'], { cwd: dir })).stdout.trim(), '+refs/heads/main:refs/remotes/origin/main');
  t.is((await run('git', ['fsck', '--full'], { cwd: dir })).code, 0);
  t.is((await run('git', ['diff-files', '--quiet'], { cwd: dir })).code, 0);
  t.is((await git(['status', '--porcelain'], { cwd: dir })).stdout, '');
  const archive = await tempDir(t, 'mpgit-archive-');
  await runOk('sh', ['-c', `git --git-dir='${src}' archive --format=tar HEAD | tar -x -C '${archive}'`]);
  t.deepEqual(listing(dir), listing(archive));

  await commitUpstream(src);
  const f = await mpgit(['fetch'], { cwd: dir });
  t.is(f.code, 0, f.stderr);
  const newHead = (await git(['rev-parse', 'main'], { cwd: src })).stdout.trim();
  t.is((await git(['rev-parse', 'origin/main'], { cwd: dir })).stdout.trim(), newHead);
  t.is((await git(['rev-list', '--count', 'origin/main'], { cwd: dir })).stdout.trim(), '2');
  t.is((await run('git', ['fsck', '--full'], { cwd: dir })).code, 0);
});

test('clone --branch, --bare, and a branch given as a tag', async (t) => {
  const { src, d, work } = await servedSource(t);
  const topic = (await git(['rev-parse', 'topic'], { cwd: src })).stdout.trim();

  const tb = await mpgit(['clone', '-q', '--branch', 'topic', d.url('src.git'), 'topic'], { cwd: work });
  t.is(tb.code, 0, tb.stderr);
  t.is((await git(['symbolic-ref', 'HEAD'], { cwd: join(work, 'topic') })).stdout.trim(), 'refs/heads/topic');
  t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, 'topic') })).stdout.trim(), topic);
  t.is((await git(['status', '--porcelain'], { cwd: join(work, 'topic') })).stdout, '');

  const b = await mpgit(['clone', '--bare', d.url('src.git')], { cwd: work });
  t.is(b.code, 0, b.stderr);
  t.regex(b.stderr, /Cloning into bare repository 'src\.git'/);
  const bare = join(work, 'src.git');
  t.deepEqual(await refs(bare), await refs(src));
  t.is((await git(['config', 'core.bare'], { cwd: bare })).stdout.trim(), 'true');
  t.is((await run('git', ['fsck', '--full'], { cwd: bare })).code, 0);
  t.false(existsSync(join(bare, 'index')));

  const tagged = await mpgit(['clone', '-q', '-b', 'v1.0', d.url('src.git'), 'tagged'], { cwd: work });
  t.is(tagged.code, 0, tagged.stderr);
  const peeled = (await git(['rev-parse', 'v1.0^{commit}'], { cwd: src })).stdout.trim();
  t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, 'tagged') })).stdout.trim(), peeled);
  t.not((await run('git', ['symbolic-ref', '-q', 'HEAD'], { cwd: join(work, 'tagged') })).code, 0, 'detached HEAD');

  const missing = await mpgit(['clone', '-b', 'nope', d.url('src.git'), 'nope'], { cwd: work });
  t.is(missing.code, 128);
  t.regex(missing.stderr, /Remote branch nope not found/);
  t.false(existsSync(join(work, 'nope')));
});

test('ls-remote prints what git ls-remote prints (v2 and v0)', async (t) => {
  const base = await tempDir(t);
  await sourceRepo(t, base);
  for (const v0 of [false, true]) {
    const d = await gitDaemon(t, base, { v0 });
    for (const args of [[], ['--symref'], ['--heads'], ['--tags'], ['--refs'], ['main', 'v1*']]) {
      const url = d.url('src.git');
      const mine = await mpgit(['ls-remote', ...args.filter((a) => a.startsWith('-')), url, ...args.filter((a) => !a.startsWith('-'))]);
      const theirs = await git(['ls-remote', ...args.filter((a) => a.startsWith('-')), url, ...args.filter((a) => !a.startsWith('-'))]);
      t.is(mine.code, 0, mine.stderr);
      t.is(mine.stdout, theirs.stdout, `ls-remote ${args.join(' ')} (${v0 ? 'v0' : 'v2'})`);
    }
  }
});

test('empty repository: clone warns and leaves an unborn branch', async (t) => {
  const base = await tempDir(t);
  await git(['init', '-q', '--bare', '-b', 'trunk', join(base, 'empty.git')]);
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  const r = await mpgit(['clone', d.url('empty.git')], { cwd: work });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /You appear to have cloned an empty repository/);
  const dir = join(work, 'empty');
  t.is((await git(['symbolic-ref', 'HEAD'], { cwd: dir })).stdout.trim(), 'refs/heads/trunk');
  t.is((await git(['status', '--porcelain'], { cwd: dir })).stdout, '');
});

test('progress: git-style meters with --progress, nothing with -q', async (t) => {
  const base = await tempDir(t);
  await sourceRepo(t, base);
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  const loud = await mpgit(['clone', '--progress', d.url('src.git'), 'loud'], { cwd: work });
  t.is(loud.code, 0, loud.stderr);
  t.regex(loud.stderr, /remote: Enumerating objects: \d+, done\./);
  t.regex(loud.stderr, /remote: Total \d+ \(delta \d+\)/);
  t.regex(loud.stderr, /Receiving objects: 100% \((\d+)\/\1\), [\d.]+ (bytes|KiB|MiB)( \| [\d.]+ (bytes|KiB|MiB|GiB)\/s)?, done\.\n/);
  t.regex(loud.stderr, /Resolving deltas: 100% \((\d+)\/\1\), done\.\n/);
  const quiet = await mpgit(['clone', '-q', '--progress', d.url('src.git'), 'quiet'], { cwd: work });
  t.is(quiet.code, 0);
  t.is(quiet.stderr, '');
  t.is(quiet.stdout, '');
});

test('MPTCP clone on loopback reports MPTCP, and falls back to TCP against a TCP-only server', async (t) => {
  const base = await tempDir(t);
  const src = await sourceRepo(t, base);
  const mp = await gitDaemon(t, base, { mptcp: true });
  const work = await tempDir(t);
  const r = await mpgit(['clone', '-v', mp.url('src.git'), 'mp'], { cwd: work, env: { GIT_ENABLE_MPTCP: '' } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /Connected to 127\.0\.0\.1 port \d+ over MPTCP\n/);
  t.regex(r.stderr, /MPTCP: \d+ subflows? \(\d+ used\), [\d.]+ (KiB|MiB|bytes) received/);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, 'mp') })).stdout, (await git(['rev-parse', 'HEAD'], { cwd: src })).stdout);

  const plain = await gitDaemon(t, base);
  const f = await mpgit(['clone', '-v', '--mptcp', plain.url('src.git'), 'tcp'], { cwd: work });
  t.is(f.code, 0, f.stderr);
  t.regex(f.stderr, /over TCP \(the server does not speak MPTCP\)/);
});

test('where the kernel refuses MPTCP (net.mptcp.enabled=0), --mptcp falls back to TCP and says so', async (t) => {
  const base = await tempDir(t);
  const src = await sourceRepo(t, base);
  // A network namespace of our own, with MPTCP switched off in it.
  const ns = `mpgit-client-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  await runOk('ip', ['netns', 'add', ns]);
  t.teardown(() => run('ip', ['netns', 'del', ns]));
  await runOk('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  await runOk('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.mptcp.enabled=0']);
  const execPath = (await git(['--exec-path'])).stdout.trim();
  const daemon = start(t, 'ip', ['netns', 'exec', ns, join(execPath, 'git-daemon'), `--base-path=${base}`, '--export-all', '--verbose', '--listen=127.0.0.1', '--port=9418']);
  await daemon.waitFor(/Ready to rumble/);
  const work = await tempDir(t);
  const r = await run('ip', ['netns', 'exec', ns, process.execPath, MPGIT, 'clone', '-v', '--mptcp', 'git://127.0.0.1/src.git', join(work, 'out')]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /over TCP \(MPTCP refused by this kernel: E[A-Z]+\)/);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, 'out') })).stdout, (await git(['rev-parse', 'HEAD'], { cwd: src })).stdout);
});

test('without the native addon (MPGIT_CORE=wasm) clone works the same, over TCP, and says why', async (t) => {
  const { src, d, work } = await servedSource(t);
  const r = await mpgit(['clone', '-v', '--mptcp', d.url('src.git'), 'out'], { cwd: work, env: { MPGIT_CORE: 'wasm' } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /over TCP \(no MPTCP: native addon unavailable \(not tried: MPGIT_CORE=wasm\)\)/);
  await assertCloneOf(t, join(work, 'out'), src);
});

test('URLs: IPv6 literals work; other schemes and missing repositories are clear errors', async (t) => {
  const base = await tempDir(t);
  await sourceRepo(t, base);
  const work = await tempDir(t);
  const bad = await mpgit(['clone', 'https://example.com/x.git'], { cwd: work });
  t.is(bad.code, 128); // as git: a URL it cannot use is fatal, not a usage error
  t.regex(bad.stderr, /unsupported URL scheme "https".*git:\/\/host\[:port\]\/path/);
  const scp = await mpgit(['ls-remote', 'git@example.com:x.git'], { cwd: work });
  t.regex(scp.stderr, /scp-style.*git:\/\//);

  const d = await gitDaemon(t, base);
  const none = await mpgit(['clone', d.url('nope.git')], { cwd: work });
  t.is(none.code, 128);
  t.regex(none.stderr, /fatal: remote error: access denied or repository not exported: \/nope\.git\n/);
  t.deepEqual(readdirSync(work), [], 'nothing left behind');

  const refused = await mpgit(['ls-remote', 'git://127.0.0.1:1/src.git']);
  t.is(refused.code, 128);
  t.regex(refused.stderr, /^fatal: unable to connect to 127\.0\.0\.1:\n127\.0\.0\.1\[0: 127\.0\.0\.1\]: errno=Connection refused\n/);

  // An IPv6 literal in the URL, against a daemon listening on ::1 only.
  const port6 = await freePort('::1');
  const execPath = (await git(['--exec-path'])).stdout.trim();
  const daemon6 = start(t, join(execPath, 'git-daemon'), [`--base-path=${base}`, '--export-all', '--reuseaddr', '--verbose', '--listen=::1', `--port=${port6}`]);
  await daemon6.waitFor(/Ready to rumble/);
  const ls6 = await mpgit(['ls-remote', '-v', `git://[::1]:${port6}/src.git`]);
  t.is(ls6.code, 0, ls6.stderr);
  t.regex(ls6.stderr, /Connected to \[::1\] port \d+/);
  t.regex(ls6.stdout, /\trefs\/heads\/main\n/);
});

/**
 * A server that speaks just enough v2 to get to the pack, then misbehaves: it sends the pack
 * cut short, with a flipped byte, hangs up in the middle, or reports a fatal error on band 3.
 */
async function badServer(t: ExecutionContext, pack: Buffer, head: string, mode: 'truncate' | 'corrupt' | 'hangup' | 'band3' | 'stall'): Promise<number> {
  const server = net.createServer(async (sock) => {
    sock.on('error', () => {});
    const reader = new PktReader(sock, { timeoutMs: 10_000 });
    try {
      await reader.expect(); // the request line
      sock.write(encodeV2Advertisement({ lsRefs: ['unborn'], fetch: ['shallow'] }));
      for (;;) {
        const first = await reader.read();
        if (!first || first.kind === 'flush') break;
        const command = pktText(first);
        for (let p = await reader.expect(); p.kind !== 'flush'; p = await reader.expect());
        if (command === 'command=ls-refs') {
          sock.write(Buffer.concat([pktLine(`${head} HEAD symref-target:refs/heads/main`), pktLine(`${head} refs/heads/main`), FLUSH]));
          continue;
        }
        const body = Buffer.from(pack);
        if (mode === 'corrupt') body[Math.floor(body.length / 2)]! ^= 0x5a;
        const cut = mode === 'truncate' || mode === 'hangup' || mode === 'stall' ? body.subarray(0, Math.floor(body.length * 0.6)) : body;
        const out: Buffer[] = [pktLine('packfile'), pkt(Buffer.concat([Buffer.from([2]), Buffer.from('Counting objects: 100% (3/3), done.\n')]))];
        for (let at = 0; at < cut.length; at += 1000) out.push(pkt(Buffer.concat([Buffer.from([1]), cut.subarray(at, at + 1000)])));
        if (mode === 'band3') out.splice(3, 0, pkt(Buffer.concat([Buffer.from([3]), Buffer.from('upload-pack: out of disk space')])));
        sock.write(Buffer.concat(out));
        if (mode === 'hangup') {
          sock.destroy();
          return;
        }
        if (mode === 'stall') return; // the rest never comes, the connection stays open
        sock.write(FLUSH);
      }
      sock.end();
    } catch {
      sock.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** A complete pack of main, as upload-pack would send it. */
function packOf(src: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn('git', ['pack-objects', '--revs', '--stdout', '-q'], { cwd: src, stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`pack-objects exited ${code}`))));
    child.stdin.end('refs/heads/main\n');
  });
}

for (const [mode, expected] of [
  ['truncate', /fatal: .*(truncated|ends|trailer|incomplete)/i],
  ['corrupt', /fatal: .*(corrupt|checksum|mismatch|inflate|invalid|bad)/i],
  ['hangup', /fatal: the server hung up in the middle of the pack/],
  ['band3', /fatal: remote error: upload-pack: out of disk space/],
] as const) {
  test(`a server that sends a ${{ truncate: 'truncated pack', corrupt: 'corrupt pack', hangup: 'hang-up mid-pack', band3: 'fatal error on band 3' }[mode]} gives a clear error and leaves nothing behind`, async (t) => {
    const base = await tempDir(t);
    const src = await sourceRepo(t, base);
    const head = (await git(['rev-parse', 'main'], { cwd: src })).stdout.trim();
    const pack = await packOf(src);
    const port = await badServer(t, pack, head, mode);
    const work = await tempDir(t);
    const r = await mpgit(['clone', '--progress', `git://127.0.0.1:${port}/repo.git`, 'target'], { cwd: work });
    t.is(r.code, 128, r.stderr);
    t.log(r.stderr);
    t.regex(r.stderr, expected);
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
    t.deepEqual(readdirSync(work), [], 'no target directory, no temporary directory');
  });
}

test('a server that stalls mid-pack: the wait is bounded, and an interrupted clone leaves nothing behind', async (t) => {
  const base = await tempDir(t);
  const src = await sourceRepo(t, base);
  const head = (await git(['rev-parse', 'main'], { cwd: src })).stdout.trim();
  const port = await badServer(t, await packOf(src), head, 'stall');
  const work = await tempDir(t);
  const r = await mpgit(['clone', `git://127.0.0.1:${port}/repo.git`, 'target'], { cwd: work, env: { MPGIT_IDLE_TIMEOUT_MS: '1500' } });
  t.is(r.code, 128, r.stderr);
  t.regex(r.stderr, /fatal: waiting for the server at 127\.0\.0\.1:\d+ timed out after 1500 ms/);
  t.deepEqual(readdirSync(work), []);

  const running = start(t, process.execPath, [MPGIT, 'clone', `git://127.0.0.1:${port}/repo.git`, 'target'], { cwd: work });
  await running.waitFor(/Cloning into 'target'/);
  // Let it receive the part of the pack the server sends before stalling.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(readdirSync(work).length, 1, 'the clone is under way in a temporary directory');
  running.kill('SIGINT');
  t.is(await running.exited, 130);
  t.deepEqual(readdirSync(work), [], 'nothing left after SIGINT');
});

test('clone and fetch keep reflogs as git does (git reflog, @{1})', async (t) => {
  const { src, d, work } = await servedSource(t);
  // Same identity and clock for both: the logs must then be the same bytes.
  const env = { GIT_COMMITTER_NAME: 'Reflog Tester', GIT_COMMITTER_EMAIL: 'reflog@example.com', GIT_COMMITTER_DATE: '1700000000 +0100' };
  const mine = await mpgit(['clone', '-q', d.url('src.git'), 'mine'], { cwd: work, env });
  t.is(mine.code, 0, mine.stderr);
  const theirs = await run('git', ['clone', '-q', d.url('src.git'), 'theirs'], { cwd: work, env });
  t.is(theirs.code, 0, theirs.stderr);
  const logs = (dir: string, ref: string) => readFileSync(join(work, dir, '.git', 'logs', ref), 'utf8');
  for (const ref of ['HEAD', 'refs/heads/main', 'refs/remotes/origin/HEAD']) t.is(logs('mine', ref), logs('theirs', ref), `logs/${ref}`);
  t.regex(logs('mine', 'HEAD'), /^0{40} [0-9a-f]{40} Reflog Tester <reflog@example\.com> 1700000000 \+0100\tclone: from git:\/\/127\.0\.0\.1:\d+\/src\.git\n$/);

  await commitUpstream(src);
  const f = await mpgit(['fetch', '-q'], { cwd: join(work, 'mine'), env });
  t.is(f.code, 0, f.stderr);
  const g = await run('git', ['fetch', '-q'], { cwd: join(work, 'theirs'), env });
  t.is(g.code, 0, g.stderr);
  t.is(logs('mine', 'refs/remotes/origin/main'), logs('theirs', 'refs/remotes/origin/main'));
  t.regex(logs('mine', 'refs/remotes/origin/main'), /\tfetch -q: fast-forward\n$/);
  // Stock git reads them: origin/main@{1} is where it was before the fetch.
  const before = (await git(['rev-parse', 'origin/main@{1}'], { cwd: join(work, 'mine') })).stdout.trim();
  t.is(before, (await git(['rev-parse', 'HEAD'], { cwd: join(work, 'mine') })).stdout.trim());
  t.is((await git(['reflog', 'show', '--format=%gs', 'HEAD'], { cwd: join(work, 'mine') })).stdout, `clone: from ${d.url('src.git')}\n`);
});

test('a bare clone keeps no reflogs, as git', async (t) => {
  const base = await tempDir(t);
  await sourceRepo(t, base);
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  const r = await mpgit(['clone', '-q', '--bare', d.url('src.git'), 'b.git'], { cwd: work });
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(join(work, 'b.git', 'logs')));
});

test('fetch --prune deletes remote-tracking refs of deleted branches; fetch.prune and --no-prune as in git', async (t) => {
  const base = await tempDir(t);
  const src = await sourceRepo(t, base);
  await git(['--git-dir', src, 'branch', 'old', 'main~1']);
  await git(['--git-dir', src, 'branch', 'feature/x', 'main~2']);
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  const c = await mpgit(['clone', '-q', d.url('src.git'), 'c'], { cwd: work });
  t.is(c.code, 0, c.stderr);
  const dir = join(work, 'c');
  const tracking = async () => [...(await refs(join(dir, '.git'), ['refs/remotes/'])).keys()].sort();
  t.deepEqual(await tracking(), ['refs/remotes/origin/HEAD', 'refs/remotes/origin/feature/x', 'refs/remotes/origin/main', 'refs/remotes/origin/old', 'refs/remotes/origin/topic']);

  await git(['--git-dir', src, 'branch', '-D', 'old']);
  const keep = await mpgit(['fetch'], { cwd: dir });
  t.is(keep.code, 0, keep.stderr);
  t.true((await tracking()).includes('refs/remotes/origin/old'), 'without --prune the ref stays, as in git');

  const p = await mpgit(['fetch', '--prune'], { cwd: dir });
  t.is(p.code, 0, p.stderr);
  t.regex(p.stderr, /^ - \[deleted\] +\(none\) +-> origin\/old$/m);
  t.deepEqual(await tracking(), ['refs/remotes/origin/HEAD', 'refs/remotes/origin/feature/x', 'refs/remotes/origin/main', 'refs/remotes/origin/topic']);

  // fetch.prune in the config prunes without the flag; --no-prune overrides it.
  await git(['--git-dir', src, 'branch', '-D', 'feature/x']);
  await git(['config', 'fetch.prune', 'true'], { cwd: dir });
  const held = await mpgit(['fetch', '--no-prune'], { cwd: dir });
  t.is(held.code, 0, held.stderr);
  t.true((await tracking()).includes('refs/remotes/origin/feature/x'));
  const byConfig = await mpgit(['fetch', '-q'], { cwd: dir });
  t.is(byConfig.code, 0, byConfig.stderr);
  t.deepEqual(await tracking(), ['refs/remotes/origin/HEAD', 'refs/remotes/origin/main', 'refs/remotes/origin/topic']);
  const fsck = await run('git', ['fsck', '--full'], { cwd: dir });
  t.is(fsck.code, 0, fsck.stderr);
  t.is((await git(['status', '--porcelain'], { cwd: dir })).stdout, '');
});

test('fetch --depth deepens a shallow clone, --unshallow completes it (v2 and v0), as git fetch does', async (t) => {
  for (const v0 of [false, true]) {
    const { src, d, work } = await servedSource(t, { v0 });
    const r = await mpgit(['clone', '-q', '--depth', '1', d.url('src.git'), 'c'], { cwd: work });
    t.is(r.code, 0, r.stderr);
    const dir = join(work, 'c');
    const count = async () => (await git(['rev-list', '--count', 'origin/main'], { cwd: dir })).stdout.trim();
    t.is(await count(), '1');

    const deeper = await mpgit(['fetch', '-q', '--depth', '3'], { cwd: dir });
    t.is(deeper.code, 0, deeper.stderr);
    t.is(await count(), '3', `v${v0 ? 0 : 2}: --depth 3`);
    const third = (await git(['rev-parse', 'main~2'], { cwd: src })).stdout.trim();
    t.is(readFileSync(join(dir, '.git', 'shallow'), 'utf8'), `${third}\n`);
    t.is((await run('git', ['fsck', '--full'], { cwd: dir })).code, 0);

    const all = await mpgit(['fetch', '-q', '--unshallow'], { cwd: dir });
    t.is(all.code, 0, all.stderr);
    t.false(existsSync(join(dir, '.git', 'shallow')), 'a complete repository has no shallow file');
    t.is(await count(), (await git(['rev-list', '--count', 'main'], { cwd: src })).stdout.trim());
    t.is(await objects(join(dir, '.git')), await objects(src));
    const fsck = await run('git', ['fsck', '--full', '--strict'], { cwd: dir });
    t.is(fsck.code, 0, fsck.stderr);
    t.is((await git(['status', '--porcelain'], { cwd: dir })).stdout, '');

    const again = await mpgit(['fetch', '--unshallow'], { cwd: dir });
    t.not(again.code, 0);
    t.regex(again.stderr, /--unshallow on a complete repository does not make sense/);
  }
});
