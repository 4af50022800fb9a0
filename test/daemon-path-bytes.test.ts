// Repository paths are bytes, as in git daemon: `git clone git://host/café.git` finds café.git
// (UTF-8 on disk) through mpgit daemon as through git daemon, and `mpgit clone` asks for it so.

import test from 'ava';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { git, mpgit, run, tempDir } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { startDaemon } from './helpers/daemon.js';
import { gitDaemon } from './helpers/gitserve.js';

test('café.git is served as git daemon serves it', async (t) => {
  const base = await tempDir(t, 'mpgit-bytes-');
  const head = await makeRepo(join(base, 'café.git'));
  await writeFile(join(base, 'café.git', 'git-daemon-export-ok'), '');
  const ours = await startDaemon(t, [`--base-path=${base}`]);
  const stock = await gitDaemon(t, base);
  const a = await run('git', ['ls-remote', ours.url('café.git')]);
  const b = await run('git', ['ls-remote', stock.url('café.git')]);
  t.is(b.code, 0, b.stderr);
  t.is(a.code, 0, a.stderr);
  t.is(a.stdout, b.stdout);
  const work = await tempDir(t, 'mpgit-bytes-work-');
  const c = await run('git', ['clone', '-q', ours.url('café.git'), join(work, 'stock-client')]);
  t.is(c.code, 0, c.stderr);
  const m = await mpgit(['clone', '-q', ours.url('café.git'), join(work, 'mpgit-client')]);
  t.is(m.code, 0, m.stderr);
  for (const dir of ['stock-client', 'mpgit-client']) t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, dir) })).stdout.trim(), head);
  t.regex(ours.proc.output(), /Request upload-pack for '\/café\.git'/);
});
