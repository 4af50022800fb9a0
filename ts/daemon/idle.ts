// The daemon's --timeout for every connection, whatever the client does: a connection on which
// nothing has moved either way for that long is ended. git upload-pack's own --timeout covers
// only protocol v0 (v2 waits for the next command forever), relayed and in-process connections
// have none, and a client that half-closes, stops reading or vanishes must not hold a slot.

import type net from 'node:net';
import { connInfo } from '../net/socket.js';

/** What the watch needs of a connection. */
export interface Watched {
  socket: net.Socket;
  /** A service process has the socket itself (node's byte counts do not see its traffic). */
  handedOver: boolean;
}

/** Shortest and longest interval between two looks at the counters. */
const MIN_TICK_MS = 200;
const MAX_TICK_MS = 5000;

/**
 * Bytes moved on a connection so far: received, plus acknowledged by the client (bytes merely
 * sent would keep growing with retransmissions to a client that is gone). Null when unknown.
 */
export function traffic(w: Watched): number | null {
  const info = connInfo(w.socket);
  if (info) return info.bytesReceived + (info.bytesAcked ?? info.bytesSent);
  if (w.handedOver) return null; // no kernel counters (no addon): cannot tell, leave it to git
  return w.socket.bytesRead + w.socket.bytesWritten;
}

export class IdleWatch<K> {
  private readonly seen = new Map<K, { moved: number | null; since: number; fired: boolean }>();
  private timer: NodeJS.Timeout | null = null;
  private blind = false;

  constructor(
    /** The current --timeout in ms (0: none); read at each look, so a reload applies. */
    private readonly timeoutMs: () => number,
    private readonly entries: () => Iterable<[K, Watched]>,
    private readonly onIdle: (key: K) => void,
    /** Said once: a connection's traffic cannot be seen (no kernel counters). */
    private readonly onBlind: () => void = () => {},
  ) {}

  start(): void {
    if (this.timer) return;
    const tick = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor((this.timeoutMs() || MAX_TICK_MS * 4) / 4)));
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  forget(key: K): void {
    this.seen.delete(key);
  }

  private check(): void {
    const now = Date.now();
    const timeoutMs = this.timeoutMs();
    for (const [key, w] of this.entries()) {
      const moved = traffic(w);
      if (moved === null && !this.blind && !w.socket.destroyed) {
        this.blind = true;
        this.onBlind();
      }
      const s = this.seen.get(key);
      if (!s || moved !== s.moved) {
        this.seen.set(key, { moved, since: now, fired: false });
        continue;
      }
      if (moved === null || s.fired || timeoutMs <= 0 || now - s.since < timeoutMs) continue;
      s.fired = true;
      this.onIdle(key);
    }
  }
}
