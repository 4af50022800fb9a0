// The daemon's lifecycle with transfers in flight: a clone of a 60 MB repository survives
// kill -9 of the daemon (git's upload-pack owns the socket) while a daemon restarted at once
// serves others; SIGTERM stops accepting and lets the transfer finish (exit 0), or terminates
// it when the grace period runs out; the pid file.

import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, git, tempDir } from './helpers/proc.js';
import { makeBulkRepo } from './helpers/repo.js';
import { startDaemon, type MpgitDaemonHandle } from './helpers/daemon.js';

/** The repository is at least this big on disk (the issue asks for 50 MB). */
const BIG_MB = 60;

// One big repository for the whole file (building it is the slow part).
let bigBase: Promise<{ base: string; head: string; packBytes: number }> | null = null;
function big(): Promise<{ base: string; head: string; packBytes: number }> {
  bigBase ??= (async () => {
    const base = await mkdtemp(join(tmpdir(), 'mpgit-life-'));
    const repo = join(base, 'big.git');
    const head = await makeBulkRepo(repo, BIG_MB);
    await writeFile(join(repo, 'git-daemon-export-ok'), '');
    // Loose and packed object bytes on disk (KiB in count-objects' output).
    const counts = (await git(['count-objects', '-v'], { cwd: repo })).stdout;
    const kib = (key: string) => Number(new RegExp(`^${key}: (\\d+)$`, 'm').exec(counts)?.[1] ?? 0);
    return { base, head, packBytes: (kib('size') + kib('size-pack')) * 1024 };
  })();
  return bigBase;
}
test.after.always(async () => {
  if (bigBase) await rm((await bigBase).base, { recursive: true, force: true });
});

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Bytes of pack the clone has received so far. */
async function received(work: string): Promise<number> {
  const dir = join(work, '.git', 'objects', 'pack');
  let n = 0;
  try {
    for (const f of await readdir(dir)) if (f.startsWith('tmp_pack_') || f.endsWith('.pack')) n += (await stat(join(dir, f))).size;
  } catch {
    // not created yet
  }
  return n;
}

interface Clone {
  child: ChildProcess;
  exited: Promise<number>;
  stderr: () => string;
  pause(): void;
  resume(): void;
}

/** `git clone` in a process group of its own, so that it can be paused and resumed whole. */
function startClone(t: ExecutionContext, url: string, work: string): Clone {
  const child = spawn('git', ['clone', '-q', url, work], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number>((r) => child.on('exit', (code, sig) => r(code ?? (sig ? 128 : 1))));
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGCONT');
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  });
  return { child, exited, stderr: () => err, pause: () => process.kill(-child.pid!, 'SIGSTOP'), resume: () => process.kill(-child.pid!, 'SIGCONT') };
}

/** Starts a clone and pauses it once upload-pack runs and some of the pack has arrived. */
async function cloneInFlight(t: ExecutionContext, d: MpgitDaemonHandle, work: string): Promise<{ clone: Clone; servicePid: number }> {
  const clone = startClone(t, d.url('big.git'), work);
  // v0 runs upload-pack on the socket; v2's fetch runs it for that one request (--stateless-rpc).
  const m = await d.proc.waitFor(/Serving '.*big\.git' with git upload-pack (--stateless-rpc )?--strict --timeout=600 \. \(pid (\d+)\)/, 60_000);
  const servicePid = Number(m[2]);
  t.teardown(() => {
    try {
      process.kill(-servicePid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  await until('1 MB of the pack received', async () => (await received(work)) > 1 << 20);
  clone.pause();
  return { clone, servicePid };
}

function connectable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('a clone in flight survives kill -9 of the daemon, and a daemon restarted at once serves', async (t) => {
  const { base, head, packBytes } = await big();
  t.true(packBytes >= 50 * 1024 * 1024, `repository of ${packBytes} bytes`);
  const d = await startDaemon(t, [`--base-path=${base}`]);
  const work = join(await tempDir(t), 'clone');
  const { clone, servicePid } = await cloneInFlight(t, d, work);
  const before = await received(work);
  t.true(before < packBytes, `only ${before} of ${packBytes} bytes received when the daemon dies`);

  d.proc.kill('SIGKILL');
  t.is(await d.proc.exited, 'SIGKILL');
  t.true(alive(servicePid), 'upload-pack outlives the daemon');

  // Restarted right away on the same port: the orphaned transfer holds no listening socket.
  const again = await startDaemon(t, [`--base-path=${base}`], { port: d.port });
  t.true(again.bindMs !== null && again.bindMs < 1000, `bound in ${again.bindMs} ms`);
  t.regex((await git(['ls-remote', again.url('big.git')])).stdout, /refs\/heads\/main/);

  clone.resume();
  t.is(await clone.exited, 0, clone.stderr());
  t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), head);
  const fsck = await git(['fsck', '--full', '--strict'], { cwd: work });
  t.is(fsck.stderr.trim(), '');
  // upload-pack exits once it has written the pack; give it a moment after the client is done.
  await until('upload-pack exits', async () => !alive(servicePid), 5_000);
});

test('SIGTERM stops accepting, lets the transfer in flight finish, and exits 0', async (t) => {
  const { base, head } = await big();
  const pidFile = join(await tempDir(t), 'daemon.pid');
  const d = await startDaemon(t, [`--base-path=${base}`, '--grace-period=120', `--pid-file=${pidFile}`]);
  t.is((await readFile(pidFile, 'utf8')).trim(), String(d.proc.child.pid));
  const work = join(await tempDir(t), 'clone');
  const { clone } = await cloneInFlight(t, d, work);

  d.proc.kill('SIGTERM');
  await d.proc.waitFor(/Shutting down: waiting up to 120 s for 1 connection in flight/);
  t.false(await connectable(d.port), 'no new connections once SIGTERM arrived');
  t.is(d.proc.child.exitCode, null, 'the daemon waits for the transfer');

  clone.resume();
  t.is(await clone.exited, 0, clone.stderr());
  t.is(await d.proc.exited, 0);
  t.regex(d.proc.output(), /Disconnected: upload-pack exited 0/);
  t.regex(d.proc.output(), /Stopped/);
  t.false(existsSync(pidFile), 'pid file removed');
  t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), head);
  await git(['fsck', '--full'], { cwd: work });
});

test('SIGTERM: when the grace period runs out the transfers are terminated, and the daemon exits 0', async (t) => {
  const { base } = await big();
  const d = await startDaemon(t, [`--base-path=${base}`, '--grace-period=1']);
  const work = join(await tempDir(t), 'clone');
  const { clone, servicePid } = await cloneInFlight(t, d, work);
  const t0 = Date.now();
  d.proc.kill('SIGTERM');
  t.is(await d.proc.exited, 0);
  t.true(Date.now() - t0 < 10_000);
  t.regex(d.proc.output(), /Grace period over: terminating 1 connection/);
  await until('upload-pack gone', async () => !alive(servicePid), 10_000);
  clone.resume();
  t.not(await clone.exited, 0, 'the clone was cut off');
});
