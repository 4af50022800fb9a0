// contrib/systemd: the daemon started exactly as the units start it (the service's ExecStart,
// the socket's ListenStream) through systemd-socket-activate, and stock git cloning through it;
// the MPTCP socket unit's socket (made here the way systemd makes it for SocketProtocol=mptcp,
// which this machine's systemd predates) is served as MPTCP.

import test from 'ava';
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, git, MPGIT, ROOT, run, start, tempDir } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { READY_RE } from './helpers/daemon.js';
import { core } from '../ts/core/index.js';

const UNITS = join(ROOT, 'contrib', 'systemd');

/** `Key=value` lines of a unit file (last one wins, as systemd reads them). */
async function unit(name: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const line of (await readFile(join(UNITS, name), 'utf8')).split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (kv) m.set(kv[1]!, kv[2]!);
  }
  return m;
}

/** The service's ExecStart with the installed paths pointed at this checkout and a test config. */
async function execStart(config: string): Promise<string[]> {
  const exec = (await unit('mpgit-daemon.service')).get('ExecStart')!;
  const argv = exec.split(/\s+/);
  if (argv[0] !== '/usr/bin/mpgit' || !argv.includes('--config=/etc/mpgit/daemon.json')) throw new Error(`unexpected ExecStart: ${exec}`);
  return [process.execPath, MPGIT, ...argv.slice(1).map((a) => (a === '--config=/etc/mpgit/daemon.json' ? `--config=${config}` : a))];
}

async function setup(t: Parameters<Parameters<typeof test>[1]>[0]) {
  const dir = await tempDir(t);
  await makeRepo(join(dir, 'srv', 'r.git'));
  const config = join(dir, 'daemon.json');
  await writeFile(config, JSON.stringify({ basePath: join(dir, 'srv'), exportAll: true, cacheDir: join(dir, 'cache'), verbose: true }));
  return { dir, config };
}

test('the service and socket units: systemd-socket-activate starts the daemon as they do; git clones through it', async (t) => {
  const which = await run('sh', ['-c', 'command -v systemd-socket-activate']);
  if (which.code !== 0) {
    t.fail('systemd-socket-activate is missing: install the systemd package (.ci/setup lists it)');
    return;
  }
  const { dir, config } = await setup(t);
  const sock = await unit('mpgit-daemon.socket');
  t.is(sock.get('ListenStream'), '9418');
  t.is(sock.get('Service'), 'mpgit-daemon.service');
  const port = await freePort();
  const sa = start(t, 'systemd-socket-activate', ['-l', `127.0.0.1:${port}`, ...(await execStart(config))]);
  await sa.waitFor(/Listening on 127\.0\.0\.1:\d+ as 3/);
  await git(['clone', '-q', `git://127.0.0.1:${port}/r.git`, join(dir, 'c1')]);
  await sa.waitFor(READY_RE);
  t.regex(sa.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${port} \\(TCP\\) \\(sockets from systemd\\)`));
  await git(['clone', '-q', `git://127.0.0.1:${port}/r.git`, join(dir, 'c2')]);
  await git(['fsck', '--no-dangling'], { cwd: join(dir, 'c2') });
  await sa.waitFor(/access: upload-pack .*cache=hit/);
  // ExecReload: SIGHUP to the main process re-reads the config.
  t.is((await unit('mpgit-daemon.service')).get('ExecReload'), '/bin/kill -HUP $MAINPID');
  sa.kill('SIGHUP');
  await sa.waitFor(/Received SIGHUP: config reloaded/);
  sa.kill('SIGTERM');
  t.is(await sa.exited, 0);
});

test('the MPTCP socket unit: a SocketProtocol=mptcp socket is served as MPTCP', async (t) => {
  const net = core.net;
  if (!net) {
    t.fail('the native addon is needed to make an MPTCP socket: run `npm run build:native`');
    return;
  }
  const sock = await unit('mpgit-daemon-mptcp.socket');
  const plain = await unit('mpgit-daemon.socket');
  t.is(sock.get('SocketProtocol'), 'mptcp');
  for (const k of ['ListenStream', 'Service', 'Backlog']) t.is(sock.get(k), plain.get(k), k);
  const { dir, config } = await setup(t);
  const port = await freePort();
  const made = net.listenSocket('127.0.0.1', port, true, 511);
  t.true(made.mptcp, `the kernel refused MPTCP (${made.fallback})`);
  // What systemd does: the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID=<the service's pid>.
  const argv = await execStart(config);
  const child = spawn('sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', 'sh', ...argv], { stdio: ['ignore', 'pipe', 'pipe', made.fd] });
  closeSync(made.fd);
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const waitFor = async (re: RegExp) => {
    const deadline = Date.now() + 30_000;
    while (!re.test(out)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${re} did not appear; output:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitFor(READY_RE);
  t.regex(out, new RegExp(`listening on 127\\.0\\.0\\.1:${port} \\(MPTCP\\) \\(sockets from systemd\\)`));
  await git(['clone', '-q', `git://127.0.0.1:${port}/r.git`, join(dir, 'c')]);
  await waitFor(/access: upload-pack /);
  child.kill('SIGTERM');
  t.is(await exited, 0);
});
