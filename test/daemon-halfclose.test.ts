// Clients that half-close (FIN after their request, still reading) get their whole answer, as
// from git daemon, over v0 and v2, from git upload-pack and from the in-process v2 server of
// offloaded repositories; and a connection whose client stops talking ends within --timeout.

import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { git, mpgit, run, tempDir } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { logLines, startDaemon } from './helpers/daemon.js';
import { gitDaemon } from './helpers/gitserve.js';
import { bigRepo, offloadDirs } from './helpers/offload.js';
import { startNginx } from './helpers/nginx.js';
import { halfClose, pktLines, requestLine, v2Command } from './helpers/halfclose.js';
import { holdConnection } from './helpers/daemon.js';

async function served(t: ExecutionContext): Promise<{ base: string; head: string }> {
  const base = await tempDir(t, 'mpgit-halfclose-');
  const head = await makeRepo(join(base, 'tiny.git'));
  await writeFile(join(base, 'tiny.git', 'git-daemon-export-ok'), '');
  return { base, head };
}

test('half-closing clients get the same whole answer as from git daemon (v0 and v2, with and without bytes after the request)', async (t) => {
  const s = await served(t);
  const ours = await startDaemon(t, [`--base-path=${s.base}`]);
  const stock = await gitDaemon(t, s.base);
  const v2 = ['version=2'];
  const cases: [string, Buffer][] = [
    ['v0, request then FIN', requestLine('/tiny.git')],
    ['v0, request and flush then FIN', Buffer.concat([requestLine('/tiny.git'), Buffer.from('0000')])],
    ['v2, request then FIN', requestLine('/tiny.git', v2)],
    ['v2, ls-refs then FIN', Buffer.concat([requestLine('/tiny.git', v2), v2Command('ls-refs', ['symrefs', 'peel', 'ref-prefix HEAD', 'ref-prefix refs/heads/'])])],
    ['v2, fetch then FIN', Buffer.concat([requestLine('/tiny.git', v2), v2Command('fetch', [`want ${s.head}`, 'no-progress', 'ofs-delta', 'done'])])],
  ];
  for (const [what, bytes] of cases) {
    const [a, b] = await Promise.all([halfClose(ours.port, bytes), halfClose(stock.port, bytes)]);
    t.true(b.closed && b.bytes.length > 0, `${what}: git daemon answers (${b.bytes.length} bytes)`);
    t.true(a.closed, `${what}: mpgit closes the connection once it has answered`);
    t.deepEqual(pktLines(a.bytes), pktLines(b.bytes), `${what}: the same answer as git daemon`);
  }
  // Every connection ended, none is left in the daemon.
  await ours.proc.waitFor(new RegExp(`(Disconnected[^\\n]*\\n[^]*){${cases.length}}`), 10_000);
  t.is(logLines(ours, /Disconnected/).length, cases.length, ours.proc.output());
});

test('the in-process v2 server (offloaded repository) answers ls-refs and fetch sent before a FIN', async (t) => {
  const { base, pub } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  const head = await bigRepo(repo, { big: 2, bigBytes: 50_000 });
  const nginx = await startNginx(t, pub);
  const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', `${nginx.baseUrl}/`, '--base', 'v1']);
  t.is(r.code, 0, r.stderr);
  const ours = await startDaemon(t, [`--base-path=${base}`, '--export-all']);
  const stock = await gitDaemon(t, base);
  const v2 = requestLine('/repo.git', ['version=2']);
  const afterAdvert = (lines: string[]) => lines.slice(lines.indexOf('<flush>') + 1);

  const lsRefs = v2Command('ls-refs', ['symrefs', 'peel', 'ref-prefix HEAD', 'ref-prefix refs/']);
  const [a, b] = await Promise.all([halfClose(ours.port, Buffer.concat([v2, lsRefs])), halfClose(stock.port, Buffer.concat([v2, lsRefs]))]);
  t.true(a.closed);
  t.regex(pktLines(a.bytes).join('\n'), /packfile-uris/, 'served in-process (packfile-uris advertised)');
  t.deepEqual(afterAdvert(pktLines(a.bytes)), afterAdvert(pktLines(b.bytes)), 'ls-refs: the refs git upload-pack lists');
  t.true(afterAdvert(pktLines(a.bytes)).length > 2);

  const fetch = v2Command('fetch', [`want ${head}`, 'no-progress', 'ofs-delta', 'done']);
  const f = await halfClose(ours.port, Buffer.concat([v2, fetch]));
  t.true(f.closed);
  const lines = afterAdvert(pktLines(f.bytes));
  t.is(lines[0], 'packfile\n', lines.slice(0, 3).join('|'));
  t.is(lines.at(-1), '<flush>', 'the answer is complete');
  t.true(lines.filter((l) => l.startsWith('<band 1')).length > 0, 'pack data sent');
  await ours.proc.waitFor(/offload session: 1 commands, 1 packs/);
});

test('a connection whose client stops talking ends within --timeout (v2 upload-pack has no timeout of its own)', async (t) => {
  const s = await served(t);
  const d = await startDaemon(t, [`--base-path=${s.base}`, '--timeout=2']);
  // A v2 client that reads the capability advertisement and then says nothing more: git's
  // upload-pack would wait for its command forever.
  const sock = await holdConnection(t, d.port);
  sock.write(requestLine('/tiny.git', ['version=2']));
  const t0 = Date.now();
  let got = 0;
  sock.on('data', (c: Buffer) => (got += c.length));
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 15_000);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  const ms = Date.now() - t0;
  t.true(closed, 'the daemon ended the connection');
  t.true(got > 0, 'the advertisement arrived');
  t.true(ms >= 1500 && ms < 8000, `closed after ${ms} ms (--timeout=2)`);
  await d.proc.waitFor(/Timeout: no traffic for 2 s/, 5000);
  await d.proc.waitFor(/Disconnected \(with error\)/, 5000);
  // A clone that keeps moving is not cut, however long it takes in all.
  const work = join(await tempDir(t), 'c');
  const c = await run('git', ['clone', '-q', d.url('tiny.git'), work]);
  t.is(c.code, 0, c.stderr);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), s.head);
});
