// With file descriptors running out (a low RLIMIT_NOFILE via prlimit), the daemon refuses the
// connections it cannot take with an ERR the client prints, says so once per burst in its log
// instead of resetting them silently, and serves again as soon as descriptors are free.

import test from 'ava';
import net from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { freePort, git, MPGIT, run, start, tempDir } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { READY_RE } from './helpers/daemon.js';

test('out of file descriptors: refused with an ERR and one log line per burst, then served again', async (t) => {
  const base = await tempDir(t, 'mpgit-emfile-');
  const head = await makeRepo(join(base, 'tiny.git'));
  await writeFile(join(base, 'tiny.git', 'git-daemon-export-ok'), '');
  const port = await freePort();
  // No pending budget: here the descriptors are what runs out.
  const d = start(t, 'prlimit', ['--nofile=120', process.execPath, MPGIT, 'daemon', '--verbose', `--port=${port}`, '--listen=127.0.0.1', `--base-path=${base}`, '--max-pending=0', '--max-pending-per-address=0']);
  await d.waitFor(READY_RE, 30_000);
  const socks: net.Socket[] = [];
  t.teardown(() => socks.forEach((s) => s.destroy()));
  let told = 0;
  let closed = 0;
  for (let i = 0; i < 200; i++) {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('data', (c: Buffer) => c.toString().includes('ERR the server is out of file descriptors') && told++);
    s.on('error', () => {});
    s.on('close', () => closed++);
    socks.push(s);
  }
  await new Promise((r) => setTimeout(r, 3000));
  t.true(told > 0, 'refused clients hear why');
  t.is(told, closed, `every connection the daemon closed was told why (${told} told, ${closed} closed)`);
  const lines = d.output().split('\n').filter((l) => /Out of file descriptors: \d+ of 120 in use/.test(l));
  t.true(lines.length >= 1 && lines.length <= 4, `one line per burst, not per connection: ${lines.length}`);
  socks.forEach((s) => s.destroy());
  await new Promise((r) => setTimeout(r, 1500));
  const work = await tempDir(t, 'mpgit-emfile-work-');
  const c = await run('git', ['clone', '-q', `git://127.0.0.1:${port}/tiny.git`, join(work, 'c')]);
  t.is(c.code, 0, c.stderr);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, 'c') })).stdout.trim(), head);
});
