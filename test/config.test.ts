// git configuration as git reads it: every scope, -c and the GIT_CONFIG_* variables, include and
// includeIf, url.<base>.insteadOf; read through git and through mpgit's own parser alike.

import test, { type ExecutionContext } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readConfig } from '../ts/config/read.js';
import { gitDaemon } from './helpers/gitserve.js';
import { makeRepo } from './helpers/repo.js';
import { repoState } from './helpers/parity.js';
import { git, mpgit, run, tempDir } from './helpers/proc.js';

/** up.git served by git daemon, and an empty home of its own (no system config) for git and mpgit. */
async function servedWithHome(t: ExecutionContext) {
  const base = await tempDir(t);
  await makeRepo(join(base, 'up.git'));
  const d = await gitDaemon(t, base);
  const home = await tempDir(t);
  return { base, d, home, env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), GIT_CONFIG_NOSYSTEM: '1' } };
}

/** A home with every kind of configuration git reads, and a repository under ~/work. */
async function configuredHome(t: ExecutionContext) {
  const home = await tempDir(t);
  const xdg = join(home, 'xdg');
  mkdirSync(join(xdg, 'git'), { recursive: true });
  writeFileSync(join(xdg, 'git', 'config'), '[fetch]\n\tprune = true\n[core]\n\teditor = from-xdg\n');
  writeFileSync(
    join(home, '.gitconfig'),
    [
      '[core]',
      '\teditor = from-home  ; a comment',
      '[include]',
      '\tpath = extra.cfg',
      '[includeIf "gitdir:~/work/"]',
      '\tpath = ~/work.cfg',
      '[includeIf "gitdir/i:~/WORK/R/"]',
      '\tpath = icase.cfg',
      '[includeIf "gitdir:/elsewhere/"]',
      '\tpath = never.cfg',
      '[includeIf "onbranch:feat/"]',
      '\tpath = branch.cfg',
      '[Section.Sub] key = old syntax',
      '[url "git://127.0.0.1:1/"]',
      '\tinsteadOf = myhost:',
      '[x "Case Sensitive"]',
      '\tflag',
      '\tquoted = "  spaced \\"quoted\\" \\ttab" # trailing',
      '\tcontinued = one \\',
      'two',
      '',
    ].join('\n'),
  );
  writeFileSync(join(home, 'extra.cfg'), '[extra]\n\tvalue = 1\n[include]\n\tpath = nested/deeper.cfg\n');
  mkdirSync(join(home, 'nested'));
  writeFileSync(join(home, 'nested', 'deeper.cfg'), '[extra]\n\tvalue = 2\n');
  writeFileSync(join(home, 'work.cfg'), '[work]\n\tmatched = yes\n');
  writeFileSync(join(home, 'icase.cfg'), '[work]\n\ticase = yes\n');
  writeFileSync(join(home, 'never.cfg'), '[never]\n\tseen = yes\n');
  writeFileSync(join(home, 'branch.cfg'), '[branch-cond]\n\tmatched = yes\n');
  const system = join(home, 'system.cfg');
  writeFileSync(system, '[fetch]\n\tprune = false\n[sys]\n\tx = 1\n');
  const repo = join(home, 'work', 'r');
  await git(['init', '-q', '-b', 'feat/one', repo]);
  await git(['config', 'extensions.worktreeConfig', 'true'], { cwd: repo });
  await git(['config', '--worktree', 'wt.only', 'here'], { cwd: repo });
  await git(['config', 'local.key', 'local value'], { cwd: repo });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: xdg,
    GIT_CONFIG_SYSTEM: system,
    GIT_CONFIG_PARAMETERS: `'cmd.a'='it'\\''s' 'cmd.b' 'Cmd.Sub.C'='x=y'`,
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'count.zero',
    GIT_CONFIG_VALUE_0: 'v0',
    GIT_CONFIG_KEY_1: 'count.one',
    GIT_CONFIG_VALUE_1: '',
  };
  delete env.GIT_CONFIG_NOSYSTEM;
  delete env.GIT_DIR;
  return { home, repo, gitDir: join(repo, '.git'), env };
}

test('mpgit\'s parser reads every scope, include and includeIf exactly as git config --list does', async (t) => {
  const { gitDir, env } = await configuredHome(t);
  for (const dir of [gitDir, null]) {
    const byGit = readConfig(dir, env);
    const byParser = readConfig(dir, { ...env, MPGIT_CONFIG_PARSER: '1' });
    t.is(byGit.reader, 'git');
    t.is(byParser.reader, 'parser');
    t.deepEqual(byParser.entries, byGit.entries, dir ? 'in the repository' : 'outside any repository');
  }
  const { entries, config } = readConfig(gitDir, env);
  const scopes = new Set(entries.map((e) => e.scope));
  t.deepEqual([...scopes].sort(), ['command', 'global', 'local', 'system', 'worktree']);
  t.is(config.get('core.editor'), 'from-home');
  t.is(config.get('extra.value'), '2');
  t.is(config.get('work.matched'), 'yes');
  t.is(config.get('work.icase'), 'yes');
  t.is(config.get('never.seen'), undefined);
  t.is(config.get('branch-cond.matched'), 'yes');
  t.is(config.get('x.Case Sensitive.quoted'), '  spaced "quoted" \ttab');
  t.is(config.get('cmd.a'), "it's");
  t.is(config.getBool('cmd.b'), true);
  t.is(config.get('count.zero'), 'v0');
  t.true(config.getBool('fetch.prune'));
});

test('fetch.prune from the global config, or from mpgit -c, prunes as git fetch does', async (t) => {
  const { base, d, home, env } = await servedWithHome(t);
  for (const who of ['git', 'mpgit', 'mpgit-c']) await git(['clone', '-q', d.url('up.git'), join(home, who)], { env });
  await git(['branch', '-D', 'topic'], { cwd: join(base, 'up.git') });
  writeFileSync(join(home, '.gitconfig'), '[fetch]\n\tprune = true\n');
  await git(['fetch', '-q'], { cwd: join(home, 'git'), env });
  const m = await mpgit(['fetch', '-q'], { cwd: join(home, 'mpgit'), env });
  t.is(m.code, 0, m.stderr);
  t.is(await repoState(join(home, 'mpgit')), await repoState(join(home, 'git')));
  t.notRegex(await repoState(join(home, 'mpgit')), /origin\/topic/);
  writeFileSync(join(home, '.gitconfig'), '');
  const c = await mpgit(['-c', 'fetch.prune=true', 'fetch', '-q'], { cwd: join(home, 'mpgit-c'), env });
  t.is(c.code, 0, c.stderr);
  t.notRegex(await repoState(join(home, 'mpgit-c')), /origin\/topic/);
});

test('url.<base>.insteadOf: mpgit clone myhost:repo clones as git does (config file or -c)', async (t) => {
  const { d, home, env } = await servedWithHome(t);
  writeFileSync(join(home, '.gitconfig'), `[url "git://127.0.0.1:${d.port}/"]\n\tinsteadOf = myhost:\n`);
  const g = await run('git', ['clone', '-q', 'myhost:up.git', 'g'], { cwd: home, env });
  const m = await mpgit(['clone', '-q', 'myhost:up.git', 'm'], { cwd: home, env });
  t.is(g.code, 0, g.stderr);
  t.is(m.code, 0, m.stderr);
  t.is(await repoState(join(home, 'm')), await repoState(join(home, 'g')));
  // fetch and ls-remote rewrite the remote's URL the same way.
  t.is((await mpgit(['fetch'], { cwd: join(home, 'm'), env })).code, 0);
  const ls = await mpgit(['ls-remote', 'myhost:up.git'], { cwd: home, env });
  t.regex(ls.stdout, /\trefs\/heads\/main\n/);
  writeFileSync(join(home, '.gitconfig'), '');
  const c = await mpgit(['-c', `url.git://127.0.0.1:${d.port}/.insteadOf=other:`, 'clone', '-q', 'other:up.git', 'c'], { cwd: home, env });
  t.is(c.code, 0, c.stderr);
});

test('without git the parser reads the configuration and says so once', async (t) => {
  const { home, env } = await configuredHome(t);
  const base = await tempDir(t);
  await makeRepo(join(base, 'up.git'));
  const d = await gitDaemon(t, base);
  writeFileSync(join(home, 'extra.cfg'), `[url "git://127.0.0.1:${d.port}/"]\n\tinsteadOf = nogit:\n`);
  const emptyPath = await tempDir(t);
  const r = await mpgit(['ls-remote', 'nogit:up.git'], { cwd: home, env: { ...env, PATH: emptyPath } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /\trefs\/heads\/main\n/);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: git is not installed'));
  t.is(warnings.length, 1, r.stderr);
});
