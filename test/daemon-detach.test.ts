// --syslog and --detach: the log reaches a syslog socket through util-linux's logger, tagged
// mpgit-daemon[pid] with each line's level; a missing logger is one warning, not an outage;
// --detach returns once the background daemon has bound (holding none of the caller's pipes),
// and fails naming the address when it cannot bind.

import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { alive, freePort, git, mpgit, run, start, tempDir, MPGIT } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { syslogSink } from './helpers/daemon.js';
import { SyslogWriter } from '../ts/daemon/syslog.js';

async function served(t: ExecutionContext): Promise<{ base: string; head: string }> {
  const base = await tempDir(t, 'mpgit-detach-');
  const head = await makeRepo(join(base, 'repo.git'));
  await writeFile(join(base, 'repo.git', 'git-daemon-export-ok'), '');
  return { base, head };
}

/** Session id of a process (field 6 of /proc/PID/stat). */
function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

/** Pids of the processes whose command line mentions `needle`. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kills a background daemon when the test ends, if it still runs. */
function reap(t: ExecutionContext, pid: number): void {
  t.teardown(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
}

const STAMP = '[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d';

test('--syslog: the log reaches syslog tagged mpgit-daemon[pid], facility daemon, each line with its level', async (t) => {
  const s = await served(t);
  const sink = await syslogSink(t);
  const port = await freePort();
  const d = start(t, process.execPath, [MPGIT, 'daemon', '--syslog', '--verbose', '--listen=127.0.0.1', `--port=${port}`, `--base-path=${s.base}`], {
    env: { MPGIT_SYSLOG_SOCKET: sink.socket },
  });
  const pid = d.child.pid!;
  await sink.waitFor(/Ready to rumble/);

  const work = join(s.base, 'work');
  await git(['clone', '-q', `git://127.0.0.1:${port}/repo.git`, work]);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), s.head);
  const refused = await run('git', ['ls-remote', `git://127.0.0.1:${port}/missing.git`]);
  t.regex(refused.stderr, /remote error: access denied or repository not exported/);
  await sink.waitFor(/\[\d+:2\] Disconnected/);

  // syslog's local format: <facility*8+severity>TIMESTAMP TAG[PID]: MESSAGE. daemon.info = 30,
  // daemon.notice = 29, daemon.err = 27.
  const head = (pri: number) => `^<${pri}>${STAMP} mpgit-daemon\\[${pid}\\]: `;
  t.regex(await sink.waitFor(/Ready to rumble/), new RegExp(`${head(29)}\\[${pid}\\] Ready to rumble: listening on 127\\.0\\.0\\.1:${port} \\(TCP\\)`));
  t.regex(await sink.waitFor(/\[\d+:1\] Connection from/), new RegExp(`${head(30)}\\[${pid}:1\\] Connection from 127\\.0\\.0\\.1:\\d+ \\(mptcp: no\\)$`));
  t.regex(await sink.waitFor(/\[\d+:1\] Request/), new RegExp(`${head(30)}\\[${pid}:1\\] Request upload-pack for '/repo\\.git'$`));
  t.regex(await sink.waitFor(/\[\d+:1\] Disconnected/), new RegExp(`${head(30)}\\[${pid}:1\\] Disconnected: upload-pack exited 0; mptcp no, 1 subflow carried it .* [1-9]\\d* bytes sent`));
  t.regex(await sink.waitFor(/missing\.git' does not appear/), new RegExp(`${head(27)}\\[${pid}:2\\] '.*missing\\.git' does not appear to be a git repository$`));
  t.is(d.output(), '', 'nothing on stderr: the log went to syslog');

  // SIGTERM: the last lines are flushed to syslog before the daemon exits.
  d.kill('SIGTERM');
  t.is(await d.exited, 0);
  t.regex(await sink.waitFor(/Stopped/), new RegExp(`${head(29)}\\[${pid}\\] Stopped$`));
  await until('logger exits with the daemon', () => processesWith(`--id=${pid}\0`).length === 0, 10_000);
});

test('--syslog without logger on PATH: one warning on stderr, and the daemon serves', async (t) => {
  const s = await served(t);
  // A PATH with git (the services need it) but no logger.
  const bin = await tempDir(t, 'mpgit-nologger-');
  await symlink((await run('sh', ['-c', 'command -v git'])).stdout.trim(), join(bin, 'git'));
  const port = await freePort();
  const pidFile = join(s.base, 'daemon.pid');
  const d = start(t, process.execPath, [MPGIT, 'daemon', '--syslog', '--verbose', '--listen=127.0.0.1', `--port=${port}`, `--base-path=${s.base}`, `--pid-file=${pidFile}`], {
    env: { PATH: bin },
  });
  await d.waitFor(/warning: --syslog: cannot run logger \(spawn logger ENOENT\); the log is dropped\. Install util-linux's logger, or use --log-destination=stderr\n/);
  await until('the pid file (written once every address is bound)', () => existsSync(pidFile));
  for (const i of [1, 2]) {
    await git(['clone', '-q', `git://127.0.0.1:${port}/repo.git`, join(s.base, `work${i}`)]);
    t.is((await git(['rev-parse', 'HEAD'], { cwd: join(s.base, `work${i}`) })).stdout.trim(), s.head);
  }
  t.is(d.output().match(/warning/g)?.length, 1, d.output());
  t.is(d.output().split('\n').filter((l) => l).length, 1, `only the warning on stderr:\n${d.output()}`);
  d.kill('SIGTERM');
  t.is(await d.exited, 0);
});

test('a stalled syslog never blocks the daemon: lines beyond the bounded queue are dropped, counted, and the count is logged once it drains', async (t) => {
  const sink = await syslogSink(t, { stallMs: 2000 });
  const w = new SyslogWriter({ socket: sink.socket, pid: 4242 });
  t.teardown(() => w.close());
  await w.opened;
  const t0 = Date.now();
  const n = 30_000; // ~2.7 MB: more than the queue, the pipe and the socket hold
  for (let i = 0; i < n; i++) w.write(`[4242] line ${i} ${'x'.repeat(80)}\n`, 'info');
  const took = Date.now() - t0;
  t.true(w.dropped > 0 && w.dropped < n, `dropped ${w.dropped} of ${n}`);
  t.true(took < 2000, `the writes returned while syslog read nothing (${took} ms)`);
  // The lines kept arrive once syslog reads again; the next line carries the count first.
  const kept = n - w.dropped - 1;
  await sink.waitFor(new RegExp(`\\] line ${kept} x`), 30_000);
  w.write('[4242] after the stall\n', 'notice');
  t.regex(await sink.waitFor(/dropped \d+ log lines/), new RegExp(`^<27>.* mpgit-daemon\\[4242\\]: \\[4242\\] syslog: dropped ${w.dropped} log lines: logger could not keep up$`));
  t.regex(await sink.waitFor(/after the stall/), /^<29>.* mpgit-daemon\[4242\]: \[4242\] after the stall$/);
  const lines = await sink.lines();
  t.is(lines.filter((l) => / line \d+ x/.test(l)).length, kept + 1, 'every line not counted as dropped arrived');
});

test('--detach --pid-file: returns 0 once bound, holding none of its pipes; the background daemon serves stock git', async (t) => {
  const s = await served(t);
  const sink = await syslogSink(t);
  const port = await freePort();
  const pidFile = join(s.base, 'daemon.pid');
  // run() waits for stdout and stderr to close: a daemon that kept them would hang it (then
  // the bound kills the command and the exit code is null).
  const r = await mpgit(['daemon', '--detach', '--verbose', `--pid-file=${pidFile}`, '--listen=127.0.0.1', `--port=${port}`, `--base-path=${s.base}`], {
    env: { MPGIT_SYSLOG_SOCKET: sink.socket },
    timeoutMs: 30_000,
  });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '');
  t.is(r.stderr, '');
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  t.true(pid > 0);
  reap(t, pid);
  t.true(alive(pid), 'the pid file names the running background daemon');
  t.is(sessionOf(pid), pid, 'it leads a session of its own (setsid): no terminal, no job control of the caller');
  t.regex(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /--no-detach/);

  const work = join(s.base, 'work');
  await git(['clone', '-q', `git://127.0.0.1:${port}/repo.git`, work]);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), s.head);
  await git(['fsck', '--strict'], { cwd: work });
  // --detach implies --syslog.
  t.regex(await sink.waitFor(/Ready to rumble/), new RegExp(`mpgit-daemon\\[${pid}\\]: \\[${pid}\\] Ready to rumble: listening on 127\\.0\\.0\\.1:${port}`));
  t.regex(await sink.waitFor(/Disconnected/), new RegExp(`mpgit-daemon\\[${pid}\\]: \\[${pid}:1\\] Disconnected: upload-pack exited 0`));

  process.kill(pid, 'SIGTERM');
  await until('the background daemon exits on SIGTERM', () => !alive(pid));
  t.false(existsSync(pidFile), 'the pid file is removed on the way out');
});

test('--detach on a taken port exits non-zero naming the address, and leaves nothing running', async (t) => {
  const s = await served(t);
  const sink = await syslogSink(t);
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const pidFile = join(s.base, 'daemon.pid');
  const r = await mpgit(['daemon', '--detach', `--pid-file=${pidFile}`, '--listen=127.0.0.1', `--port=${port}`, '--bind-timeout=1', `--base-path=${s.base}`], {
    env: { MPGIT_SYSLOG_SOCKET: sink.socket },
    timeoutMs: 30_000,
  });
  t.is(r.code, 128, r.stderr);
  t.regex(r.stderr, new RegExp(`^fatal: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE \\(address already in use\\); still failing after retrying for 1 s\\nhint: another process listens on port ${port}`));
  t.is(r.stdout, '');
  t.false(existsSync(pidFile));
  t.deepEqual(processesWith(pidFile), [], 'no background daemon is left');
  // The background daemon's syslog says why it stopped, too.
  t.regex(await sink.waitFor(/fatal/), new RegExp(`^<27>${STAMP} mpgit-daemon\\[\\d+\\]: \\[\\d+\\] fatal: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
});

test('--detach, --syslog and --base-path-relaxed: usage errors', async (t) => {
  const dir = await tempDir(t);
  const cases: [string[], RegExp][] = [
    [['--detach', '--inetd'], /fatal: --detach is incompatible with --inetd/],
    [['--syslog', '--log-destination=none'], /fatal: --syslog contradicts --log-destination=none/],
    [['--base-path-relaxed', dir], /fatal: --base-path-relaxed needs --base-path/],
    [['--log-destination=journal'], /error: option `log-destination' Allowed choices are stderr, syslog, file, none\., not 'journal'/],
  ];
  for (const [args, re] of cases) {
    const r = await mpgit(['daemon', ...args], { timeoutMs: 30_000 });
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
  }
  // Every flag is a config key too: {"detach": true, "inetd": true} is refused the same way.
  const file = join(dir, 'daemon.json');
  await writeFile(file, JSON.stringify({ detach: true, inetd: true }));
  const r = await mpgit(['daemon', '--config', file], { timeoutMs: 30_000 });
  t.is(r.code, 129);
  t.regex(r.stderr, /--detach is incompatible with --inetd/);
});
