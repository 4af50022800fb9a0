// --detach: the command starts the same command line again in a new session (setsid), with
// --no-detach and the log on syslog, stdin/stdout/stderr on /dev/null, and returns once that
// background daemon has bound every address; if it fails (or does not get ready in time), the
// command prints its error and exits non-zero, so that a bad --listen is never silent. The two
// talk over one pipe, fd 3 of the background daemon: warnings and the fatal error as text
// lines, then the ready line, after which the daemon closes it: the command's own stdin,
// stdout and stderr are never held by the daemon (`$(mpgit daemon --detach)` returns).

// Not git (ts/git.ts runs that): this same program, as the background daemon.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, writeSync } from 'node:fs';
import type net from 'node:net';
import type { DaemonConfig } from './config.js';

/** Tells the background daemon which descriptor leads back to the waiting command. */
export const READY_FD_ENV = 'MPGIT_DAEMON_READY_FD';
const READY_FD = 3;
/** Beyond --bind-timeout: the background daemon's start (node, the addon, logger). */
const READY_MARGIN_MS = 15_000;
/** Text relayed from the background daemon before it is ready (its warnings and error). */
const MAX_RELAYED = 64 * 1024;
/** Marks the line that says the daemon is ready (the log's own ready line). */
const READY_RE = /^Ready to rumble/;

/**
 * Starts the daemon in the background and waits until it is ready. Resolves with the exit
 * status for the command: 0 once every address is bound, else the daemon's (after printing
 * its error on stderr). `logDestinationGiven`: keep the log where the settings say.
 */
export function detach(cfg: DaemonConfig, logDestinationGiven: boolean): Promise<number> {
  const script = process.argv.slice(1, 2);
  const args = process.argv.slice(2);
  // --no-detach after the user's own flags wins over their --detach and the config file's.
  const extra = ['--no-detach', ...(logDestinationGiven ? [] : ['--log-destination=syslog'])];
  const end = args.indexOf('--'); // flags after "--" would be taken as directories
  const argv = end < 0 ? [...args, ...extra] : [...args.slice(0, end), ...extra, ...args.slice(end)];
  const child = spawn(process.execPath, [...process.execArgv, ...script, ...argv], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [READY_FD_ENV]: String(READY_FD) },
  });
  const waitMs = cfg.bindTimeout * 1000 + READY_MARGIN_MS;
  const channel = child.stdio[READY_FD] as net.Socket;

  return new Promise<number>((resolve) => {
    let pending = '';
    let relayed = 0;
    let done = false;
    const finish = (code: number, message?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (message) process.stderr.write(message);
      channel.destroy();
      child.unref();
      resolve(code);
    };
    const killChild = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // its session: the daemon and its logger
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      killChild();
      finish(128, `fatal: the daemon (pid ${child.pid}) was not ready within ${waitMs / 1000} s: stopped it\nhint: its log went to ${cfg.logDestination === 'stderr' && logDestinationGiven ? '/dev/null' : 'syslog'}; run it without --detach to watch it start\n`);
    }, waitMs);
    // Ctrl-C while waiting: no daemon is left behind half started.
    const onSignal = () => {
      killChild();
      finish(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    channel.on('error', () => {});
    channel.on('data', (c: Buffer) => {
      pending += c.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (READY_RE.test(line)) return finish(0);
        relayed += line.length + 1;
        if (relayed <= MAX_RELAYED) process.stderr.write(`${line}\n`);
      }
      if (pending.length > MAX_RELAYED) pending = pending.slice(0, MAX_RELAYED);
    });
    child.on('error', (e) => finish(128, `fatal: cannot start the daemon in the background: ${e.message}\n`));
    // 'close': the daemon has exited and everything it wrote has been read.
    child.on('close', (code, signal) => {
      if (pending) process.stderr.write(`${pending}\n`);
      const status = code ?? 128;
      finish(
        status === 0 ? 128 : status,
        relayed || pending ? undefined : `fatal: the daemon exited (${signal ?? code}) before it was ready\nhint: its log went to syslog; run it without --detach to see why\n`,
      );
    });
  });
}

/** In the background daemon: the pipe to the command waiting for it (null when not detached). */
export class ReadyChannel {
  private constructor(private fd: number | null) {}

  /** Takes the channel named in the environment (and removes it there: services must not see it). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ReadyChannel | null {
    const v = env[READY_FD_ENV];
    delete env[READY_FD_ENV];
    if (v !== String(READY_FD)) return null;
    try {
      const st = fstatSync(READY_FD);
      if (!st.isSocket() && !st.isFIFO()) return null;
    } catch {
      return null;
    }
    return new ReadyChannel(READY_FD);
  }

  /** Sends text to the waiting command; false once the channel is closed (or broken). */
  send(text: string): boolean {
    if (this.fd === null) return false;
    try {
      writeSync(this.fd, text);
      return true;
    } catch {
      this.close(); // the command is gone (EPIPE): nothing more to tell it
      return false;
    }
  }

  /** Says the daemon is ready and closes the channel: the command exits 0. */
  ready(line: string): void {
    this.send(`${line}\n`);
    this.close();
  }

  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = null;
  }
}
