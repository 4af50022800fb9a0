// Connections that have not sent their request line yet ("pending") have a budget of their own,
// apart from --max-connections: a client that connects and then sends nothing, or a byte a
// second, must not keep real clones out. A real client sends its request within a round trip;
// one that has waited longer than STALE_MS is "stale", and is the first to go when the budget
// is full: an address holding --max-pending-per-address gives up its own oldest stale one,
// and past --max-pending the oldest stale one overall goes. Only when every waiting connection
// is fresh is the newcomer refused: to delay a clone, clients must open more than --max-pending
// connections within STALE_MS, again and again.

import { ClientGoneError } from '../errors.js';

/** How long a client may take over its request line before others may push it out. */
export const STALE_MS = 1000;

/** What a dropped connection's request reader fails with (logged by the daemon already). */
export class PendingDroppedError extends ClientGoneError {
  constructor(why: string) {
    super(why);
    this.name = 'PendingDroppedError';
  }
}

export interface PendingEntry {
  address: string;
  since: number;
}

export interface Admission<E> {
  /** Stale connections to drop to make room. */
  evict: E[];
  /** No room: refuse the newcomer (every connection waiting is fresh). */
  refuse: boolean;
}

export class PendingBudget<E extends PendingEntry> {
  /** In arrival order: the first is the oldest. */
  private readonly waiting = new Set<E>();

  /** The limits are read at each admission (0: none), so a reload applies. */
  constructor(private readonly limits: () => { maxPending: number; maxPerAddress: number }) {}

  get size(): number {
    return this.waiting.size;
  }

  /** Decides on a new connection; unless refused, it is counted as pending. */
  admit(entry: E, now = Date.now()): Admission<E> {
    const { maxPending, maxPerAddress } = this.limits();
    const evict: E[] = [];
    const dropOldestStale = (pred: (e: E) => boolean): boolean => {
      for (const e of this.waiting) {
        if (!pred(e)) continue;
        if (now - e.since < STALE_MS) return false; // the oldest is fresh: so are the others
        this.waiting.delete(e);
        evict.push(e);
        return true;
      }
      return false;
    };
    // One address over its share makes room among its own connections first.
    if (maxPerAddress > 0) {
      let mine = 0;
      for (const e of this.waiting) if (e.address === entry.address) mine++;
      if (mine >= maxPerAddress) dropOldestStale((e) => e.address === entry.address);
    }
    if (maxPending > 0 && this.waiting.size >= maxPending && !dropOldestStale(() => true)) return { evict, refuse: true };
    this.waiting.add(entry);
    return { evict, refuse: false };
  }

  /** The connection sent its request line, or ended. */
  done(entry: E): void {
    this.waiting.delete(entry);
  }
}
