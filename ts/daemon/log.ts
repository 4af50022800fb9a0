// The daemon's log: git daemon's human lines ("[pid] Connection from ...") on stderr or syslog
// (syslog.ts), or one JSON object per event. Levels follow git daemon: errors (refusals,
// failures) always, the per-connection story only with --verbose; lifecycle notices (ready,
// MPTCP fallback, bind retries, shutdown) always, since operators and scripts wait for them.

export type Level = 'error' | 'notice' | 'info';

export interface LogOptions {
  format: 'human' | 'json';
  verbose: boolean;
  /** Where lines go; default stderr. null discards them (--log-destination=none). */
  write?: ((line: string, level: Level) => void) | null;
  /** Resolves once the destination can take lines (the syslog writer has started). */
  opened?: Promise<void>;
  /** Flushes what is queued and releases the destination (bounded). */
  close?: () => Promise<void>;
  /** Opens the destination again (a log file after rotation); returns an error text or null. */
  reopen?: () => string | null;
}

export type Fields = Record<string, unknown>;

/** A log's three levels, each one event: what the daemon's log and a connection's share. */
abstract class Levels {
  abstract emit(level: Level, event: string, text: string, fields?: Fields): void;

  error(event: string, text: string, fields?: Fields): void {
    this.emit('error', event, text, fields);
  }
  notice(event: string, text: string, fields?: Fields): void {
    this.emit('notice', event, text, fields);
  }
  info(event: string, text: string, fields?: Fields): void {
    this.emit('info', event, text, fields);
  }
}

export class DaemonLog extends Levels {
  private readonly write: ((line: string, level: Level) => void) | null;

  constructor(private readonly opts: LogOptions) {
    super();
    this.write = opts.write === undefined ? (line) => process.stderr.write(line) : opts.write;
  }

  get verbose(): boolean {
    return this.opts.verbose;
  }

  get format(): 'human' | 'json' {
    return this.opts.format;
  }

  /** A reload: format and verbosity change at once (the destination needs a restart). */
  reconfigure(o: { format: 'human' | 'json'; verbose: boolean }): void {
    this.opts.format = o.format;
    this.opts.verbose = o.verbose;
  }

  /** Reopens a log file (SIGUSR1); false when there is none to reopen. */
  reopen(): { reopened: boolean; error: string | null } {
    if (!this.opts.reopen) return { reopened: false, error: null };
    return { reopened: true, error: this.opts.reopen() };
  }

  /** Resolves once the destination takes lines (a missing syslog writer has been reported). */
  opened(): Promise<void> {
    return this.opts.opened ?? Promise.resolve();
  }

  /** Flushes and releases the destination; call before the process exits. */
  close(): Promise<void> {
    return this.opts.close?.() ?? Promise.resolve();
  }

  /** One event. `text` is the human line (without the "[pid] " prefix); `fields` go into JSON. */
  emit(level: Level, event: string, text: string, fields: Fields = {}, tag = String(process.pid)): void {
    if (!this.write) return;
    if (level === 'info' && !this.opts.verbose) return;
    if (this.opts.format === 'json') {
      const obj = { time: new Date().toISOString(), level, event, pid: process.pid, ...fields, msg: text };
      this.write(`${JSON.stringify(obj)}\n`, level);
    } else {
      // One line per event: a newline inside a message (git's stderr, a hook's output) must not
      // let a client forge log lines.
      this.write(`[${tag}] ${text.replace(/[\r\n]+/g, ' ')}\n`, level);
    }
  }

  /** The log of one connection: human lines tagged "[pid:conn]", JSON with "conn". */
  connection(id: number): ConnLog {
    return new ConnLog(this, id);
  }
}

export class ConnLog extends Levels {
  constructor(
    private readonly log: DaemonLog,
    readonly id: number,
  ) {
    super();
  }

  emit(level: Level, event: string, text: string, fields: Fields = {}): void {
    this.log.emit(level, event, text, { conn: this.id, ...fields }, `${process.pid}:${this.id}`);
  }
}

/** "127.0.0.1:9418" / "[::1]:9418", as git daemon writes addresses. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
