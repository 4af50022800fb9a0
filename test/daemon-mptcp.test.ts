// `mpgit daemon --mptcp`: listening sockets made with IPPROTO_MPTCP; an MPTCP client is
// reported as MPTCP (and the kernel's `ss -M` agrees while the connection is open), a plain TCP
// client keeps working on the same listener; at close the log says how many subflows carried
// the connection and the bytes sent; where the kernel refuses MPTCP the daemon falls back to TCP
// and says so once.

import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { freePort, git, run, runOk, start, tempDir, MPGIT } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { logLines, READY_RE, startDaemon } from './helpers/daemon.js';
import { core } from '../ts/core/index.js';
import { encodeRequest } from '../ts/protocol/request.js';

async function base(t: ExecutionContext): Promise<{ dir: string; head: string }> {
  const dir = await tempDir(t, 'mpgit-mptcp-');
  const head = await makeRepo(join(dir, 'repo.git'));
  await writeFile(join(dir, 'repo.git', 'git-daemon-export-ok'), '');
  return { dir, head };
}

/** Opens a connection (MPTCP through the addon, or plain TCP), sends a v0 request, waits for the refs. */
async function heldRequest(t: ExecutionContext, port: number, mptcp: boolean): Promise<net.Socket> {
  let socket: net.Socket;
  if (mptcp) {
    const made = await core.net!.connectSocket('127.0.0.1', port, true, 5000);
    t.true(made.mptcp, 'the client socket is MPTCP');
    socket = new net.Socket({ fd: made.fd, readable: true, writable: true });
  } else {
    socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
  }
  t.teardown(() => socket.destroy());
  socket.write(encodeRequest({ service: 'git-upload-pack', path: '/repo.git', host: '127.0.0.1', extra: [] }));
  // upload-pack advertises its refs, then waits for our wants: the connection stays open.
  await new Promise<void>((resolve, reject) => {
    let got = '';
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('0000')) resolve();
    });
    socket.once('error', reject);
  });
  return socket;
}

test('an MPTCP client is reported as MPTCP (ss -M agrees), a plain TCP client on the same listener as TCP', async (t) => {
  if (!core.net) return t.fail(`the native addon is needed for an MPTCP client: ${core.loadError}`);
  const { dir } = await base(t);
  const d = await startDaemon(t, [`--base-path=${dir}`, '--mptcp']);
  t.regex(d.proc.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${d.port} \\(MPTCP\\)`));

  const mp = await heldRequest(t, d.port, true);
  const tcp = await heldRequest(t, d.port, false);
  t.is(logLines(d, new RegExp(`Connection from 127\\.0\\.0\\.1:${mp.localPort} \\(mptcp: yes\\)`)).length, 1, d.proc.output());
  t.is(logLines(d, new RegExp(`Connection from 127\\.0\\.0\\.1:${tcp.localPort} \\(mptcp: no\\)`)).length, 1, d.proc.output());

  // The kernel's view while both are open: only the first is an MPTCP connection.
  const ss = (await runOk('ss', ['-HMn'])).stdout;
  t.regex(ss, new RegExp(`127\\.0\\.0\\.1:${d.port}\\s+127\\.0\\.0\\.1:${mp.localPort}\\b`), ss);
  t.notRegex(ss, new RegExp(`127\\.0\\.0\\.1:${tcp.localPort}\\b`), ss);

  mp.end('0000'); // no wants: upload-pack ends the session
  tcp.end('0000');
  const closed = await d.proc.waitFor(/\[\d+:1\] Disconnected: upload-pack exited 0; mptcp yes, (\d+) subflows? carried it \((\d+) open\), (\d+) bytes sent, (\d+) bytes received/);
  t.true(Number(closed[1]) >= 1);
  t.true(Number(closed[3]) > 0);
  await d.proc.waitFor(/\[\d+:2\] Disconnected: upload-pack exited 0; mptcp no, 1 subflow carried it/);
});

test('stock git under mptcpize clones over MPTCP; plain git clones over TCP; the close lines count subflows and bytes', async (t) => {
  const which = await run('sh', ['-c', 'command -v mptcpize']);
  if (which.code !== 0) return t.fail('mptcpize is missing: install the mptcpize package (.ci/setup lists it)');
  const { dir, head } = await base(t);
  const d = await startDaemon(t, [`--base-path=${dir}`, '--mptcp']);
  await runOk('mptcpize', ['run', 'git', 'clone', '-q', d.url('repo.git'), join(dir, 'mp')]);
  await git(['clone', '-q', d.url('repo.git'), join(dir, 'tcp')]);
  for (const w of ['mp', 'tcp']) t.is((await git(['rev-parse', 'HEAD'], { cwd: join(dir, w) })).stdout.trim(), head);
  const first = await d.proc.waitFor(/\[\d+:1\] Disconnected: upload-pack exited 0; mptcp yes, (\d+) subflows? carried it \(\d+ open\), (\d+) bytes sent/);
  t.true(Number(first[1]) >= 1 && Number(first[2]) > 1000, first[0]);
  const second = await d.proc.waitFor(/\[\d+:2\] Disconnected: upload-pack exited 0; mptcp no, 1 subflow carried it \(1 open\), (\d+) bytes sent/);
  t.true(Number(second[1]) > 1000, second[0]);
  t.regex(d.proc.output(), /\[\d+:1\] Connection from 127\.0\.0\.1:\d+ \(mptcp: yes\)/);
  t.regex(d.proc.output(), /\[\d+:2\] Connection from 127\.0\.0\.1:\d+ \(mptcp: no\)/);
});

test('where the kernel refuses MPTCP, --mptcp falls back to TCP and says so once', async (t) => {
  const { dir, head } = await base(t);
  const ns = `mpgit-nomptcp-${randomBytes(4).toString('hex')}`;
  await runOk('ip', ['netns', 'add', ns]);
  t.teardown(() => run('ip', ['netns', 'del', ns]));
  await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await runOk('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.mptcp.enabled=0']);
  const port = await freePort();
  const d = start(t, 'ip', ['netns', 'exec', ns, process.execPath, MPGIT, 'daemon', '--mptcp', '--verbose', `--base-path=${dir}`, '--listen=127.0.0.1', '--listen=::1', `--port=${port}`]);
  await d.waitFor(READY_RE);
  t.is(d.output().match(/MPTCP is not available \(the kernel refused it with ENOPROTOOPT\): listening with plain TCP/g)?.length, 1, d.output());
  t.regex(d.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${port} \\(TCP\\), \\[::1\\]:${port} \\(TCP\\)`));
  const work = join(dir, 'clone');
  await runOk('ip', ['netns', 'exec', ns, 'git', 'clone', '-q', `git://127.0.0.1:${port}/repo.git`, work]);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), head);
  t.regex(d.output(), /Connection from 127\.0\.0\.1:\d+ \(mptcp: no\)/);
});
