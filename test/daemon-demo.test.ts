// `mpgit demo`: creates the demo repository once (deterministically) and serves it; the printed
// `git clone` line works with stock git.

import test from 'ava';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { freePort, git, MPGIT, runOk, start, tempDir } from './helpers/proc.js';
import { READY_RE } from './helpers/daemon.js';

test('mpgit demo serves a repository that stock git clones, the same one every time', async (t) => {
  const state = await tempDir(t, 'mpgit-demo-');
  const heads: string[] = [];
  for (const round of [1, 2]) {
    const port = await freePort();
    const demo = start(t, process.execPath, [MPGIT, 'demo', `--dir=${state}`, `--port=${port}`, '--listen=127.0.0.1']);
    const line = await demo.waitFor(/^ {4}(git clone git:\/\/127\.0\.0\.1:(\d+)\/demo)$/m);
    t.is(Number(line[2]), port);
    t.regex(demo.output(), READY_RE);
    const work = join(state, `clone${round}`);
    const argv = line[1]!.split(' ').slice(1);
    await runOk('git', [...argv, work]);
    t.regex(await readFile(join(work, 'README.md'), 'utf8'), /served by `mpgit daemon`/);
    t.is((await git(['tag'], { cwd: work })).stdout.trim(), 'v1.0');
    t.is((await git(['rev-list', '--count', 'HEAD'], { cwd: work })).stdout.trim(), '4');
    await git(['fsck', '--strict'], { cwd: work });
    heads.push((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim());
    await demo.waitFor(/Disconnected: upload-pack exited 0/);
    demo.kill('SIGTERM');
    t.is(await demo.exited, 0);
  }
  // The second run reused the repository; fixed authors and dates give fixed ids anywhere.
  t.is(heads[0], heads[1]);
  t.is(heads[0], '739058f42b28c5d48e57014ff1cca4b196f17106');
});
