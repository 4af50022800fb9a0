// Sockets for daemon and client: MPTCP when asked and the kernel allows it, TCP otherwise.
// The sockets are made in Rust (IPPROTO_MPTCP is not reachable from node's net module) and
// adopted by node through their descriptors.

import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { core, netMissing, passedOverNative, type ConnInfo } from '../core/index.js';
import { MpgitError, TimeoutError } from '../errors.js';

export interface Connected {
  socket: net.Socket;
  /** The socket was created as MPTCP (the peer may still make it fall back to TCP). */
  mptcpSocket: boolean;
  /** Why MPTCP was not used although asked for, if it was not. */
  fallback: string | null;
  address: string;
  port: number;
}

/** getaddrinfo's words for node's codes (gai_strerror), as git prints them. */
const LOOKUP_ERRORS: Record<string, string> = {
  ENOTFOUND: 'Name or service not known',
  EAI_AGAIN: 'Temporary failure in name resolution',
  EAI_FAIL: 'Non-recoverable failure in name resolution',
  ENODATA: 'No address associated with hostname',
};

/** Every address of `host`, IPv6 and IPv4, in the resolver's order. */
export async function resolveAll(host: string, port = 9418): Promise<string[]> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (net.isIP(bare)) return [bare];
  let found: { address: string }[];
  try {
    found = await lookup(bare, { all: true, verbatim: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new MpgitError('MPGIT_DNS', `unable to look up ${host} (port ${port}) (${LOOKUP_ERRORS[code] ?? code})`, 'check the host name in the URL, and the network (DNS)', { cause: e });
  }
  if (!found.length) throw new MpgitError('MPGIT_DNS', `unable to look up ${host} (port ${port}) (${LOOKUP_ERRORS.ENODATA})`, 'check the host name in the URL');
  return found.map((a) => a.address);
}

/** strerror's words for a connect error, from node's code or the Rust error's text. */
function errnoText(e: unknown): string {
  const msg = (e as Error).message ?? String(e);
  const os = /: ([^:]+?) \(os error \d+\)$/.exec(msg);
  if (os) return os[1]!;
  const byCode: Record<string, string> = { ECONNREFUSED: 'Connection refused', ETIMEDOUT: 'Connection timed out', EHOSTUNREACH: 'No route to host', ENETUNREACH: 'Network is unreachable' };
  return byCode[(e as NodeJS.ErrnoException).code ?? ''] ?? msg;
}

/** Connects to host:port, trying each address in turn; MPTCP when `mptcp` and possible. */
export async function connect(host: string, port: number, opts: { mptcp: boolean; timeoutMs: number }): Promise<Connected> {
  const addrs = await resolveAll(host, port);
  const errors: string[] = [];
  for (const [i, address] of addrs.entries()) {
    try {
      return await connectOne(address, port, opts);
    } catch (e) {
      // git's lines: "host[0: 127.0.0.1]: errno=Connection refused"
      errors.push(`${host}[${i}: ${address}]: errno=${errnoText(e)}`);
    }
  }
  throw new MpgitError('MPGIT_CONNECT', `unable to connect to ${host}:\n${errors.join('\n')}`, `check that the daemon is running and listens on port ${port}`);
}

async function connectOne(address: string, port: number, opts: { mptcp: boolean; timeoutMs: number }): Promise<Connected> {
  if (core.net) {
    const made = await core.net.connectSocket(address, port, opts.mptcp, opts.timeoutMs);
    const socket = new net.Socket({ fd: made.fd, readable: true, writable: true });
    // As on the daemon's side: keepalive reaches every MPTCP subflow.
    socket.setKeepAlive(true, 10_000);
    return { socket, mptcpSocket: made.mptcp, fallback: opts.mptcp && !made.mptcp ? made.fallback : null, address, port };
  }
  // Without the addon: plain TCP through node.
  const socket = net.connect({ host: address, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`connect to ${address}:${port}`, opts.timeoutMs));
    }, opts.timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return { socket, mptcpSocket: false, fallback: opts.mptcp ? why() : null, address, port };
}

/** Why a connection asked to be MPTCP is node's TCP: no native addon, or one without sockets (Windows). */
function why(): string | null {
  const skipped = passedOverNative();
  return skipped ? `native addon unavailable (${skipped})` : netMissing();
}

/** The descriptor behind a node socket (for the kernel's counters). */
export function socketFd(socket: net.Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** MPTCP/TCP counters of a live connection, or null when they cannot be read. */
export function connInfo(socket: net.Socket): ConnInfo | null {
  const fd = socketFd(socket);
  if (fd === null || !core.net) return null;
  try {
    return core.net.connInfo(fd);
  } catch {
    return null;
  }
}
