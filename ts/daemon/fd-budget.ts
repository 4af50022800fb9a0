// File descriptors: past RLIMIT_NOFILE, accept() fails with EMFILE and libuv closes such
// connections silently. The daemon looks first: near the limit it refuses new connections
// itself, with an ERR the client prints and one log line per burst, until some close.

import { readdirSync, readFileSync } from 'node:fs';

/** Descriptors kept free for what a connection needs next (service pipes, files, the log). */
const RESERVE = 24;

/** The soft RLIMIT_NOFILE, or null where it cannot be read (no /proc). */
function fdLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Events logged once per burst: the first after a quiet second, with a count of the rest. */
export class Burst {
  private at = 0;
  private unlogged = 0;

  /** log: this one opens a burst (log it); before: events since the last logged one. */
  hit(now = Date.now()): { log: boolean; before: number } {
    if (now - this.at < 1000) {
      this.unlogged++;
      return { log: false, before: 0 };
    }
    const before = this.unlogged;
    this.at = now;
    this.unlogged = 0;
    return { log: true, before };
  }
}

export class FdBudget {
  private readonly limit = fdLimit();
  /** Refusals for want of descriptors. */
  readonly refusals = new Burst();

  /** Whether a new connection may be taken now: descriptors in use stay RESERVE below the limit. */
  room(): { ok: true } | { ok: false; inUse: number; limit: number } {
    if (this.limit === null) return { ok: true };
    let inUse: number;
    try {
      inUse = readdirSync('/proc/self/fd').length;
    } catch {
      return { ok: true };
    }
    return inUse + RESERVE < this.limit ? { ok: true } : { ok: false, inUse, limit: this.limit };
  }

}
