// Connections that have not sent their request line (slow or idle clients) have a budget of
// their own: 100 clients sending a byte a second, reconnecting when dropped, some from the
// clones' own address, do not keep 8 stock git clones out.

import test from 'ava';
import net from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { git, run, tempDir } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { logLines, startDaemon } from './helpers/daemon.js';
import { requestLine } from './helpers/halfclose.js';

/** A client that sends its request one byte a second, reconnecting a second after it is dropped. */
function slowClient(port: number, localAddress: string, stopped: () => boolean, counts: { connects: number }): void {
  const bytes = requestLine('/tiny.git');
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  counts.connects++;
  let i = 0;
  const timer = setInterval(() => {
    if (i < bytes.length && !s.destroyed) s.write(bytes.subarray(i, ++i));
  }, 1000);
  s.on('error', () => {});
  s.on('data', () => {});
  s.on('close', () => {
    clearInterval(timer);
    if (!stopped()) setTimeout(() => slowClient(port, localAddress, stopped, counts), 1000);
  });
  const stop = setInterval(() => {
    if (stopped()) {
      clearInterval(stop);
      s.destroy();
    }
  }, 200);
}

test('100 one-byte-a-second clients do not keep stock git clones out', async (t) => {
  const base = await tempDir(t, 'mpgit-pending-');
  const head = await makeRepo(join(base, 'tiny.git'));
  await writeFile(join(base, 'tiny.git', 'git-daemon-export-ok'), '');
  const d = await startDaemon(t, [`--base-path=${base}`]);
  let stop = false;
  t.teardown(() => {
    stop = true;
  });
  const counts = { connects: 0 };
  // 60 from six other loopback addresses, 40 from the clones' own address.
  for (let i = 0; i < 100; i++) slowClient(d.port, i < 60 ? `127.0.0.${2 + (i % 6)}` : '127.0.0.1', () => stop, counts);
  // The first burst of 100 is more than --max-pending (64) fresh connections: the rest are
  // refused and come back a second later; from then on, slow clients are pushed out.
  await new Promise((r) => setTimeout(r, 2500));
  const work = await tempDir(t, 'mpgit-pending-clones-');
  const t0 = Date.now();
  const clones = await Promise.all(Array.from({ length: 8 }, (_, i) => run('git', ['clone', '-q', d.url('tiny.git'), join(work, `c${i}`)], { timeoutMs: 60_000 })));
  const ms = Date.now() - t0;
  stop = true;
  t.deepEqual(clones.map((c) => c.code), Array(8).fill(0), clones.map((c) => c.stderr).join('\n'));
  for (let i = 0; i < 8; i++) t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, `c${i}`) })).stdout.trim(), head);
  t.true(ms < 15_000, `8 clones took ${ms} ms`);
  t.deepEqual(logLines(d, /Too many connections/), []);
  // The budget did its work: slow clients were pushed out to make room.
  t.true(logLines(d, /Dropped: no request line after/).length > 0, d.proc.output().slice(-3000));
  t.true(counts.connects >= 100);
});
