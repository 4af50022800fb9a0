// At load: 200 clients that half-close right after their request (8 at a time) each get the
// whole advertisement; no connection slot or descriptor is left behind, so 8 real clones that
// follow all get in; and SIGTERM then finds nothing in flight and exits at once.

import test from 'ava';
import { join } from 'node:path';
import { readdir, writeFile } from 'node:fs/promises';
import { freePort, git, run, tempDir } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { logLines, startDaemon } from './helpers/daemon.js';
import { gitDaemon } from './helpers/gitserve.js';
import { halfClose, pktLines, requestLine } from './helpers/halfclose.js';

const CLIENTS = 200;
const AT_ONCE = 8;
const CLONES = 8;

async function waitUntil(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('200 half-closing clients, then 8 stock git clones: every answer whole, no slot leaked, SIGTERM exits at once', async (t) => {
  const base = await tempDir(t, 'mpgit-halfload-');
  const head = await makeRepo(join(base, 'tiny.git'));
  await writeFile(join(base, 'tiny.git', 'git-daemon-export-ok'), '');
  const metricsPort = await freePort();
  const d = await startDaemon(t, [`--base-path=${base}`, `--metrics-listen=127.0.0.1:${metricsPort}`]);
  // The daemon's own count of open connections (Prometheus gauge).
  const open = async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const m = /^mpgit_connections_current (\d+)/m.exec(text);
    if (!m) throw new Error(`no mpgit_connections_current in /metrics:\n${text.slice(0, 2000)}`);
    return Number(m[1]);
  };
  const pid = d.proc.child.pid!;
  const fds = async () => (await readdir(`/proc/${pid}/fd`)).length;
  const fdsBefore = await fds();
  const send = Buffer.concat([requestLine('/tiny.git'), Buffer.from('0000')]);
  const expected = pktLines((await halfClose((await gitDaemon(t, base)).port, send)).bytes);
  t.true(expected.length > 2, 'git daemon answers a half-closing client');

  let whole = 0;
  const bad: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: AT_ONCE }, async () => {
      while (next < CLIENTS) {
        next++;
        const r = await halfClose(d.port, send, 30_000);
        const got = pktLines(r.bytes);
        if (r.closed && JSON.stringify(got) === JSON.stringify(expected)) whole++;
        else if (bad.length < 3) bad.push(`closed=${r.closed} after ${r.ms} ms: ${JSON.stringify(got).slice(0, 300)}`);
      }
    }),
  );
  t.is(whole, CLIENTS, `every half-closing client got the whole advertisement; others:\n${bad.join('\n')}`);

  // Every connection is over in the daemon: one Disconnected line per connection, descriptors back.
  const connections = () => logLines(d, /Connection from/).length;
  const ended = () => logLines(d, /Disconnected/).length;
  await waitUntil('every connection logged as ended', () => ended() === connections(), 20_000).catch(() => {});
  t.is(ended(), connections(), `${connections()} connections, ${ended()} ended`);
  t.is(connections(), CLIENTS);
  await waitUntil('no connection open', async () => (await open()) === 0, 10_000).catch(() => {});
  t.is(await open(), 0, 'the daemon counts no open connection');
  await waitUntil('descriptors released', async () => (await fds()) <= fdsBefore, 10_000).catch(() => {});
  t.true((await fds()) <= fdsBefore, `descriptors: ${fdsBefore} before, ${await fds()} after`);

  const work = await tempDir(t, 'mpgit-halfload-clones-');
  const clones = await Promise.all(Array.from({ length: CLONES }, (_, i) => run('git', ['clone', '-q', d.url('tiny.git'), join(work, `c${i}`)], { timeoutMs: 60_000 })));
  t.deepEqual(clones.map((c) => c.code), Array(CLONES).fill(0), clones.map((c) => c.stderr).join('\n'));
  for (let i = 0; i < CLONES; i++) t.is((await git(['rev-parse', 'HEAD'], { cwd: join(work, `c${i}`) })).stdout.trim(), head);
  t.is(logLines(d, /Too many connections/).length, 0);

  await waitUntil('the clones logged as ended', async () => ended() === connections() && (await open()) === 0, 10_000).catch(() => {});
  t.is(await open(), 0, 'no connection open after the clones');
  const t0 = Date.now();
  d.proc.kill('SIGTERM');
  const code = await d.proc.exited;
  const ms = Date.now() - t0;
  t.is(code, 0);
  t.true(ms < 5000, `SIGTERM to exit: ${ms} ms`);
  t.deepEqual(logLines(d, /Shutting down: waiting|Grace period over/), [], 'no connection was still in flight');
});
