// --syslog: log lines piped to one long-lived `logger` (util-linux), which sends each one to
// /dev/log (or the unix socket in $MPGIT_SYSLOG_SOCKET) tagged "mpgit-daemon[<daemon pid>]",
// facility daemon, with the line's level. The daemon never waits for it: lines beyond a bounded
// queue are dropped and counted; a logger that cannot start or dies is reported once on stderr
// and the daemon serves on without a log.

// Not git (ts/git.ts runs that): logger, the system's syslog client.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Level } from './log.js';

export const SYSLOG_TAG = 'mpgit-daemon';
/** A unix socket to send syslog lines to instead of /dev/log (tests, chroots). */
export const SYSLOG_SOCKET_ENV = 'MPGIT_SYSLOG_SOCKET';

/** Bytes waiting for logger beyond which lines are dropped (a stuck syslog must not grow us). */
const MAX_QUEUED_BYTES = 1 << 20;
/** Longest message logger sends (its default, 1 KiB, would cut long lines). */
const MAX_MESSAGE_BYTES = 8192;
/** How long close() lets logger send what is queued. */
const CLOSE_WAIT_MS = 2000;
/** logger's own error output kept for the warning. */
const MAX_STDERR = 2048;

// <facility * 8 + severity> for logger --prio-prefix: daemon (3); err (3), notice (5), info (6).
const PRIORITY: Record<Level, number> = { error: 27, notice: 29, info: 30 };

export interface SyslogOptions {
  /** The pid the lines carry: the daemon's (git daemon's lines carry its own). */
  pid?: number;
  /** Unix socket to write to; default $MPGIT_SYSLOG_SOCKET, else logger's own (/dev/log). */
  socket?: string;
  /** Where the one warning goes (default stderr). */
  warn?: (text: string) => void;
}

export class SyslogWriter {
  /** Lines not sent: the queue was full, or logger is gone. */
  dropped = 0;
  /** Resolves once logger has started or failed to (a failure is warned about by then). */
  readonly opened: Promise<void>;
  private readonly child: ChildProcess;
  private readonly pid: number;
  private readonly warn: (text: string) => void;
  private gone = false;
  private closing = false;
  private warned = false;
  /** Dropped because logger was slow, not yet reported in the log itself. */
  private unreported = 0;
  private stderr = '';
  private readonly closed: Promise<void>;

  constructor(opts: SyslogOptions = {}) {
    this.pid = opts.pid ?? process.pid;
    this.warn = opts.warn ?? ((text) => process.stderr.write(text));
    const socket = opts.socket ?? process.env[SYSLOG_SOCKET_ENV] ?? null;
    const args = [
      `--id=${this.pid}`,
      '-t', SYSLOG_TAG,
      '-p', 'daemon.info',
      '--prio-prefix',
      '-S', String(MAX_MESSAGE_BYTES),
      // A missing or refusing socket makes logger exit, so that it is reported, not silent.
      '--socket-errors=on',
      ...(socket ? ['-u', socket] : []),
    ];
    this.child = spawn('logger', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child.stdin!.on('error', () => {}); // EPIPE once logger is gone: reported by 'close'
    this.child.stderr!.on('data', (c: Buffer) => {
      if (this.stderr.length < MAX_STDERR) this.stderr += c.toString('utf8').slice(0, MAX_STDERR - this.stderr.length);
    });
    let started = () => {};
    let ended = () => {};
    this.opened = new Promise((resolve) => (started = resolve));
    this.closed = new Promise((resolve) => (ended = resolve));
    this.child.once('spawn', () => started());
    // A logger that never started emits no 'close'; later errors (a failed kill) change nothing.
    this.child.on('error', (e) => {
      if (this.child.pid === undefined) {
        this.fail(`cannot run logger (${e.message}); the log is dropped. Install util-linux's logger, or use --log-destination=stderr`);
        started();
        ended();
      }
    });
    this.child.once('close', (code, signal) => {
      if (!this.closing) {
        const why = this.stderr.trim().replace(/\s*\n\s*/g, '; ');
        this.fail(`logger exited (${code ?? signal})${why ? `: ${why}` : ''}; the log is dropped from now on`);
      }
      this.gone = true;
      ended();
    });
  }

  /** Queues one line (ending in "\n"); drops it when logger is gone or too far behind. */
  write(line: string, level: Level): void {
    if (this.gone || this.closing) {
      this.dropped++;
      return;
    }
    const stdin = this.child.stdin!;
    if (stdin.writableLength > MAX_QUEUED_BYTES) {
      this.dropped++;
      this.unreported++;
      return;
    }
    if (this.unreported) {
      const n = this.unreported;
      this.unreported = 0;
      stdin.write(`<${PRIORITY.error}>[${this.pid}] syslog: dropped ${n} log line${n === 1 ? '' : 's'}: logger could not keep up\n`);
    }
    stdin.write(`<${PRIORITY[level]}>${line.endsWith('\n') ? line : `${line}\n`}`);
  }

  /** Lets logger send what is queued (bounded), then ends it. */
  async close(): Promise<void> {
    if (this.closing) return this.closed;
    this.closing = true;
    if (this.gone) return;
    this.child.stdin!.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CLOSE_WAIT_MS)));
    if (await Promise.race([this.closed.then(() => false), late])) this.child.kill('SIGKILL');
    clearTimeout(timer);
  }

  private fail(text: string): void {
    this.gone = true;
    if (this.warned) return;
    this.warned = true;
    this.warn(`warning: --syslog: ${text}\n`);
  }
}
