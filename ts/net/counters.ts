// A connection's MPTCP/TCP counters (bytes, subflows), read from its socket or descriptor, and
// combined over the readings taken while it winds down.

import type net from 'node:net';
import { core, type ConnInfo } from '../core/index.js';
import { connInfo } from './socket.js';

/** A connection's socket, or the descriptor to read its counters from (inetd). */
export interface Connection {
  socket: net.Socket | null;
  infoFd: number | null;
}

/** Reads the counters of the connection (null when it is not a socket or already gone). */
export function readCounters(c: Connection): ConnInfo | null {
  if (c.socket) return connInfo(c.socket);
  if (c.infoFd === null || !core.net) return null;
  try {
    return core.net.connInfo(c.infoFd);
  } catch {
    return null;
  }
}

/** Interval of counter readings while a finished transfer's last bytes leave. */
const SETTLE_POLL_MS = 50;

/**
 * After the service process exits: the socket it shared with us is in blocking mode now (the
 * child's stdio must be), so we never read it again. We watch the counters until the bytes
 * sent stop growing (the kernel has sent what the service wrote), bounded by `waitMs`.
 */
export async function settleCounters(c: Connection, waitMs: number): Promise<ConnInfo | null> {
  let info = readCounters(c);
  const deadline = Date.now() + waitMs;
  while (info && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    const next = readCounters(c);
    if (!next) break;
    const moved = next.bytesSent !== info.bytesSent;
    info = laterReading(info, next);
    if (!moved) break;
  }
  return info;
}

/**
 * Counters read at two moments: bytes from the later reading (the client has everything by
 * then), subflows from whichever saw more (subflows close as the connection winds down).
 */
export function laterReading(a: ConnInfo | null, b: ConnInfo | null): ConnInfo | null {
  if (!a || !b) return b ?? a;
  return { ...b, subflows: Math.max(a.subflows, b.subflows), subflowsUsed: Math.max(a.subflowsUsed, b.subflowsUsed) };
}
