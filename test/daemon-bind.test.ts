// Binding, after the Debian git-daemon bug: a second daemon on a busy port fails naming the
// address and EADDRINUSE; a daemon never runs bound to a subset of its addresses; an address
// freed during the bind timeout is taken; a restart with connections in TIME-WAIT listens at
// once; IPv4 and IPv6 get a socket each; systemd socket activation.

import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { freePort, git, mpgit, run, runOk, start, tempDir, MPGIT } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { READY_RE, startDaemon } from './helpers/daemon.js';

async function base(t: ExecutionContext): Promise<string> {
  const dir = await tempDir(t, 'mpgit-bind-');
  await makeRepo(join(dir, 'repo.git'));
  await writeFile(join(dir, 'repo.git', 'git-daemon-export-ok'), '');
  return dir;
}

function connectable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('a second daemon on the same port fails within the bind timeout, naming the address and EADDRINUSE', async (t) => {
  const dir = await base(t);
  const first = await startDaemon(t, [`--base-path=${dir}`]);
  const t0 = Date.now();
  const r = await mpgit(['daemon', `--base-path=${dir}`, '--listen=127.0.0.1', `--port=${first.port}`, '--reuseaddr', '--bind-timeout=1']);
  const took = Date.now() - t0;
  t.not(r.code, 0);
  t.regex(r.stderr, new RegExp(`fatal: cannot listen on 127\\.0\\.0\\.1:${first.port}: EADDRINUSE \\(address already in use\\); still failing after retrying for 1 s`));
  t.regex(r.stderr, /retrying for up to 1 s/);
  t.regex(r.stderr, new RegExp(`hint: another process listens on port ${first.port}`));
  t.true(took >= 1000 && took < 15_000, `exited after ${took} ms`);
  // SO_REUSEADDR on both did not let the second one share the port: the first still serves.
  t.regex((await git(['ls-remote', first.url('repo.git')])).stdout, /refs\/heads\/main/);
});

test('a daemon never runs bound to a subset of its addresses', async (t) => {
  const dir = await base(t);
  const first = await startDaemon(t, [`--base-path=${dir}`]);
  // 127.0.0.2 is free, 127.0.0.1 is taken: the daemon must not settle for 127.0.0.2 alone.
  const second = start(t, process.execPath, [MPGIT, 'daemon', `--base-path=${dir}`, '--listen=127.0.0.2', '--listen=127.0.0.1', `--port=${first.port}`, '--bind-timeout=2']);
  await second.waitFor(/cannot bind 127\.0\.0\.1:\d+ yet \(EADDRINUSE\)/);
  t.false(/Ready to rumble/.test(second.output()));
  const code = await second.exited;
  t.not(code, 0);
  t.regex(second.output(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: EADDRINUSE`));
  t.notRegex(second.output(), /Ready to rumble/);
  t.false(await connectable('127.0.0.2', first.port), 'nothing is left listening on 127.0.0.2');
});

test('an address freed within the bind timeout is bound, and the daemon serves', async (t) => {
  const dir = await base(t);
  const first = await startDaemon(t, [`--base-path=${dir}`]);
  const second = start(t, process.execPath, [MPGIT, 'daemon', `--base-path=${dir}`, '--listen=127.0.0.1', `--port=${first.port}`, '--bind-timeout=30', '--verbose']);
  await second.waitFor(/cannot bind 127\.0\.0\.1:\d+ yet \(EADDRINUSE\); retrying for up to 30 s/);
  first.proc.kill('SIGTERM');
  t.is(await first.proc.exited, 0);
  await second.waitFor(READY_RE);
  t.regex((await git(['ls-remote', `git://127.0.0.1:${first.port}/repo.git`])).stdout, /refs\/heads\/main/);
  t.regex(second.output(), /Request upload-pack for '\/repo\.git'/);
});

test('a daemon restarted with connections in TIME-WAIT listens again at once', async (t) => {
  const dir = await base(t);
  const first = await startDaemon(t, [`--base-path=${dir}`]);
  // Connections the server closes first leave TIME-WAIT on the server's side: refusals (the
  // daemon hangs up after its ERR) and protocol v0 clones (upload-pack exits after the pack).
  // Which side closes first is a race on a loaded machine: connect until the server holds one
  // (bounded), so that the restart below really meets a TIME-WAIT.
  await git(['-c', 'protocol.version=0', 'clone', '-q', first.url('repo.git'), join(dir, 'c0')]);
  const serverTimeWait = () => runOk('ss', ['-Htan', 'state', 'time-wait', `( sport = :${first.port} )`]);
  const serverSide = new RegExp(`127\\.0\\.0\\.1:${first.port}\\s`);
  let tw = await serverTimeWait();
  for (let i = 0; i < 30 && !serverSide.test(tw.stdout); i++) {
    await run('git', ['ls-remote', first.url('missing.git')]);
    tw = await serverTimeWait();
  }
  t.regex(tw.stdout, serverSide, `server-side TIME-WAIT expected:\n${tw.stdout}`);

  first.proc.kill('SIGKILL');
  await first.proc.exited;
  // Control: without SO_REUSEADDR the port cannot be bound now (what git-daemon without
  // --reuseaddr hits), so the TIME-WAIT above is real.
  const plain = await run('perl', ['-MSocket', '-e', `socket(S,PF_INET,SOCK_STREAM,0) or die; bind(S, sockaddr_in(${first.port}, inet_aton("127.0.0.1"))) or die "bind: $!\\n"; print "bound\\n"`]);
  t.regex(plain.stderr, /bind: Address already in use/, `control bind: ${plain.stdout}${plain.stderr}`);

  const second = await startDaemon(t, [`--base-path=${dir}`], { port: first.port });
  t.notRegex(second.proc.output(), /retrying/);
  t.true(second.bindMs !== null && second.bindMs < 1000, `bound in ${second.bindMs} ms`);
  await git(['clone', '-q', second.url('repo.git'), join(dir, 'c1')]);
});

test('IPv4 and IPv6 each get their own socket (IPV6_V6ONLY)', async (t) => {
  const dir = await base(t);
  const both = await startDaemon(t, [`--base-path=${dir}`, '--listen=127.0.0.1', '--listen=::1']);
  t.regex(both.proc.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${both.port} \\(TCP\\), \\[::1\\]:${both.port} \\(TCP\\)`));
  const ss = (await runOk('ss', ['-Hltn', `( sport = :${both.port} )`])).stdout;
  t.regex(ss, new RegExp(`127\\.0\\.0\\.1:${both.port}`));
  t.regex(ss, new RegExp(`\\[::1\\]:${both.port}`));
  t.regex((await git(['ls-remote', `git://[::1]:${both.port}/repo.git`])).stdout, /refs\/heads\/main/);
  t.regex(both.proc.output(), /Connection from \[::1\]:\d+/);

  // A daemon on :: leaves 0.0.0.0 of the same port to another socket, and the reverse.
  const v6 = await startDaemon(t, [`--base-path=${dir}`, '--listen=::']);
  const v4 = await startDaemon(t, [`--base-path=${dir}`, '--listen=0.0.0.0'], { port: v6.port });
  t.regex((await git(['ls-remote', `git://127.0.0.1:${v4.port}/repo.git`])).stdout, /refs\/heads\/main/);
  t.regex((await git(['ls-remote', `git://[::1]:${v6.port}/repo.git`])).stdout, /refs\/heads\/main/);
  t.regex(v4.proc.output(), /Connection from 127\.0\.0\.1/);
  t.regex(v6.proc.output(), /Connection from \[::1\]/);
});

test('serves the listening socket passed by systemd socket activation (LISTEN_FDS)', async (t) => {
  const dir = await base(t);
  const port = await freePort();
  const which = await run('sh', ['-c', 'command -v systemd-socket-activate']);
  if (which.code !== 0) {
    t.fail('systemd-socket-activate is missing: install the systemd package (.ci/setup lists it)');
    return;
  }
  // systemd-socket-activate binds, then execs the daemon on the first connection with
  // LISTEN_FDS=1 / LISTEN_PID set, as systemd does for a socket unit.
  const sa = start(t, 'systemd-socket-activate', ['-l', `127.0.0.1:${port}`, process.execPath, MPGIT, 'daemon', '--verbose', `--base-path=${dir}`, '--port=1']);
  await sa.waitFor(/Listening on 127\.0\.0\.1:\d+ as 3/);
  t.regex((await git(['ls-remote', `git://127.0.0.1:${port}/repo.git`])).stdout, /refs\/heads\/main/);
  await sa.waitFor(READY_RE);
  t.regex(sa.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${port} \\(TCP\\) \\(sockets from systemd\\)`));
  t.regex(sa.output(), /Request upload-pack for '\/repo\.git'/);
  t.regex((await git(['ls-remote', `git://127.0.0.1:${port}/repo.git`])).stdout, /refs\/heads\/main/);
});
