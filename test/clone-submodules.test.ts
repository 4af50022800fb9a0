// clone --recurse-submodules: a git:// submodule is cloned by mpgit and adopted by git's
// submodule machinery; the result is what git clone --recurse-submodules makes.

import test from 'ava';
import { join } from 'node:path';
import { gitDaemon } from './helpers/gitserve.js';
import { makeRepo } from './helpers/repo.js';
import { git, mpgit, run, tempDir } from './helpers/proc.js';

test('mpgit clone --recurse-submodules gives the submodules git gives', async (t) => {
  const base = await tempDir(t);
  await makeRepo(join(base, 'sub.git'));
  const d = await gitDaemon(t, base);
  const home = await tempDir(t);
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.com' };
  const work = join(home, 'super-work');
  await git(['init', '-q', '-b', 'main', work], { env });
  await git(['submodule', 'add', '-q', d.url('sub.git'), 'lib/sub'], { cwd: work, env });
  await git(['commit', '-q', '-m', 'add sub'], { cwd: work, env });
  await git(['clone', '-q', '--bare', work, join(base, 'super.git')], { env });

  const g = await run('git', ['clone', '-q', '--recurse-submodules', d.url('super.git'), 'g'], { cwd: home, env });
  const m = await mpgit(['clone', '-q', '--recurse-submodules', d.url('super.git'), 'm'], { cwd: home, env });
  t.is(g.code, 0, g.stderr);
  t.is(m.code, 0, m.stderr);
  const state = async (dir: string) => {
    const at = (p: string, args: string[]) => git(['-C', join(home, dir, p), ...args], { env }).then((r) => r.stdout);
    return [
      await at('.', ['submodule', 'status', '--recursive']),
      await at('.', ['config', '--local', '--list']),
      await at('lib/sub', ['for-each-ref', '--format=%(refname) %(objectname) %(symref)']),
      await at('lib/sub', ['config', '--local', '--list']),
      await at('lib/sub', ['status', '--porcelain']),
      await at('lib/sub', ['rev-parse', '--git-dir']),
    ].join('--\n').replaceAll(join(home, dir), 'CLONE');
  };
  t.is(await state('m'), await state('g'));
  // Without -q: mpgit says it cloned the submodule itself.
  const loud = await mpgit(['clone', '--recurse-submodules', d.url('super.git'), 'loud'], { cwd: home, env });
  t.is(loud.code, 0, loud.stderr);
  t.true(loud.stderr.includes(`Cloning into '${join(home, 'loud', 'lib', 'sub')}'...`), loud.stderr);
});
