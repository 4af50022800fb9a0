// git clone and mpgit clone with the same flags against the same git daemon: the same refs,
// config, HEAD, work tree and exit status; errors with the same exit code and git's words.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitDaemon } from './helpers/gitserve.js';
import { makeRepo } from './helpers/repo.js';
import { both, firstLines, repoState } from './helpers/parity.js';
import { freePort, git, MPGIT, tempDir } from './helpers/proc.js';

// Machine-wide and personal git configuration stay out of both sides.
const isolated = (home: string): NodeJS.ProcessEnv => ({ HOME: home, XDG_CONFIG_HOME: join(home, '.config'), GIT_CONFIG_NOSYSTEM: '1' });

async function upstream(t: Parameters<Parameters<typeof test>[1]>[0]) {
  const base = await tempDir(t);
  const repo = join(base, 'up.git');
  await makeRepo(repo, { commits: 4 });
  // A lightweight tag on the side branch only, and a ref outside heads/tags (a mirror takes it).
  await git(['tag', 'side', 'topic'], { cwd: repo });
  await git(['update-ref', 'refs/pull/1/head', 'topic'], { cwd: repo });
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  return { url: d.url('up.git'), work, port: d.port, env: isolated(work) };
}

const FLAG_SETS = [
  [],
  ['-n'],
  ['--no-checkout'],
  ['--single-branch'],
  ['--single-branch', '-b', 'topic'],
  ['--depth', '1'],
  ['--depth', '1', '--no-single-branch'],
  ['-o', 'up'],
  ['--origin=up', '--single-branch'],
  ['--no-tags'],
  ['--single-branch', '--no-tags'],
  ['--mirror'],
  ['--bare'],
  ['--bare', '-o', 'up'],
  ['-b', 'v1.0'],
];

test('each clone flag writes the refs, config, HEAD and work tree git writes', async (t) => {
  const { url, work, env } = await upstream(t);
  for (const [i, flags] of FLAG_SETS.entries()) {
    const dir = join(work, `case${i}`);
    mkdirSync(dir);
    const r = await both(['clone', '-q', ...flags, url, '%T'], { dir, env, cwd: work });
    t.is(r.mpgit.code, r.git.code, `${flags.join(' ')}: exit status; mpgit said ${r.mpgit.stderr}`);
    t.is(r.mpgit.stderr, r.git.stderr, `${flags.join(' ')}: messages`);
    t.is(await repoState(join(dir, 'mpgit')), await repoState(join(dir, 'git')), `${flags.join(' ')}: repository`);
  }
});

test('usage errors exit 129 with git\'s first line and a usage line', async (t) => {
  const work = await tempDir(t);
  // In a repository: git looks for one before it parses fetch's options.
  await git(['init', '-q', work]);
  const cases = [['clone', '--bogus', 'x'], ['clone', '-Z', 'x'], ['clone'], ['clone', 'a', 'b', 'c'], ['clone', '--depth'], ['fetch', '--bogus'], ['ls-remote', '--bogus']];
  for (const args of cases) {
    const r = await both(args, { dir: work, cwd: work, env: isolated(work) });
    t.is(r.mpgit.code, 129, `${args.join(' ')}: ${r.mpgit.stderr}`);
    t.is(r.git.code, 129);
    t.is(firstLines(r.mpgit).first, firstLines(r.git).first, args.join(' '));
    t.regex(r.mpgit.stderr, new RegExp(`^usage: mpgit ${args[0]} `, 'm'));
  }
  // No command at all: the help, and git's exit status for it.
  const none = await both([], { dir: work, cwd: work });
  t.is(none.mpgit.code, none.git.code);
  const bogus = await both(['bogus-command'], { dir: work, cwd: work });
  t.is(bogus.mpgit.code, bogus.git.code);
  t.is(firstLines(bogus.mpgit).first, firstLines(bogus.git).first.replace(/git/g, 'mpgit').replace('a mpgit', 'an mpgit'));
});

test('fatal errors exit 128 worded as git words them, with the hint on the next line', async (t) => {
  const { url, work, port, env } = await upstream(t);
  const closed = await freePort();
  const notEmpty = join(work, 'full');
  mkdirSync(notEmpty);
  writeFileSync(join(notEmpty, 'f'), 'x');
  const cases: [string, string[]][] = [
    ['connection refused', ['clone', `git://127.0.0.1:${closed}/up.git`, '%T']],
    ['no such repository', ['clone', `git://127.0.0.1:${port}/nope.git`, '%T']],
    ['target not empty', ['clone', url, notEmpty]],
  ];
  for (const [what, args] of cases) {
    const r = await both(args, { dir: work, cwd: work, env });
    t.is(r.mpgit.code, 128, what);
    t.is(r.git.code, 128, what);
    const [g, m] = [r.git.stderr.split('\n'), r.mpgit.stderr.split('\n')];
    const fatal = g.findIndex((l) => l.startsWith('fatal:'));
    // git's lines up to and including the fatal one (and its continuation), then our hint.
    const gitLines = g.slice(0, fatal + 1).concat(g.slice(fatal + 1).filter((l) => l.length && !l.startsWith('hint')));
    t.deepEqual(m.slice(0, gitLines.length).map((l) => l.replace(/mpgit/g, 'git')), gitLines.map((l) => l.replace(/mpgit/g, 'git')), what);
    t.regex(m[gitLines.length] ?? '', /^hint: /, what);
  }
});

test('a DNS failure is worded as git words it (in a network namespace without network)', async (t) => {
  const work = await tempDir(t);
  // No traffic leaves: unshare gives both a namespace with nothing but a down loopback.
  const inNs = (cmd: string[]) => spawnSync('unshare', ['--net', ...cmd], { cwd: work, encoding: 'utf8', env: { ...process.env, ...isolated(work) } });
  const g = inNs(['git', 'clone', 'git://no-such-host.invalid/x.git', join(work, 'g')]);
  const m = inNs([process.execPath, MPGIT, 'clone', 'git://no-such-host.invalid/x.git', join(work, 'm')]);
  t.is(m.status, 128, m.stderr);
  t.is(g.status, 128);
  const fatal = (s: string) => s.split('\n').find((l) => l.startsWith('fatal:'));
  t.is(fatal(m.stderr), fatal(g.stderr));
  t.regex(m.stderr, /^fatal: unable to look up no-such-host\.invalid \(port 9418\) \(.+\)\nhint: /m);
});

test('a target the user may not write is worded as git words it', async (t) => {
  const { url, work, env } = await upstream(t);
  const ro = join(work, 'ro');
  mkdirSync(ro);
  chmodSync(ro, 0o555);
  chmodSync(work, 0o755);
  // As an unprivileged user (root may write anywhere).
  const asNobody = (cmd: string[]) => spawnSync(cmd[0]!, cmd.slice(1), { cwd: ro, uid: 65534, gid: 65534, encoding: 'utf8', env: { ...process.env, ...env, HOME: ro } });
  const g = asNobody(['git', 'clone', url, 'demo']);
  const m = asNobody([process.execPath, MPGIT, 'clone', url, 'demo']);
  t.is(g.status, 128, g.stderr);
  t.is(m.status, 128, m.stderr);
  t.is(m.stderr.split('\n')[0], g.stderr.split('\n')[0]);
  t.regex(m.stderr, /^fatal: could not create work tree dir 'demo': Permission denied\nhint: /);
});
