// Listening sockets. Every address asked for gets its own socket (IPv6 ones IPV6_V6ONLY), made
// in Rust so that it can be MPTCP and always has SO_REUSEADDR (a restarted daemon binds while
// old connections sit in TIME-WAIT). An address that fails to bind is retried with backoff up to
// the bind timeout; then the daemon fails naming it. It never runs on a subset of its addresses
// (the Debian git-daemon bug). Sockets passed by systemd (LISTEN_FDS) are adopted as they are.

import net from 'node:net';
import { closeSync } from 'node:fs';
import { core, netMissing } from '../core/index.js';
import { resolveAll } from '../net/socket.js';
import { MpgitError } from '../errors.js';
import { hostPort, type DaemonLog } from './log.js';

export interface Listener {
  server: net.Server;
  address: string;
  port: number;
  /** The socket is MPTCP (null: unknown, for sockets from systemd without the addon). */
  mptcp: boolean | null;
  from: 'bind' | 'systemd';
}

export interface BindOptions {
  /** Addresses (or host names) asked for; empty means every address (0.0.0.0 and ::). */
  listen: string[];
  port: number;
  mptcp: boolean;
  bindTimeoutMs: number;
  log: DaemonLog;
  onConnection: (socket: net.Socket, listener: Listener) => void;
  backlog?: number;
}

/** The kernel's listen backlog for our sockets. */
const BACKLOG = 511;
/** First wait between bind attempts; doubles up to BIND_RETRY_MAX_MS. */
const BIND_RETRY_FIRST_MS = 100;
const BIND_RETRY_MAX_MS = 1000;
/** errnos that may clear up by themselves: a dying daemon's socket, an address being configured. */
const RETRYABLE = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);

const ERRNO_TEXT: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address',
  EACCES: 'permission denied',
  EAFNOSUPPORT: 'address family not supported',
  EINVAL: 'invalid argument',
};

export class BindError extends MpgitError {
  readonly address: string;
  readonly errno: string;
  constructor(address: string, errno: string, detail: string, hint: string) {
    super('MPGIT_BIND', `cannot listen on ${address}: ${errno}${ERRNO_TEXT[errno] ? ` (${ERRNO_TEXT[errno]})` : ''}${detail}`, hint);
    this.name = 'BindError';
    this.address = address;
    this.errno = errno;
  }
}

function hintFor(errno: string, port: number): string {
  switch (errno) {
    case 'EADDRINUSE':
      return `another process listens on port ${port} (see \`ss -ltnp 'sport = :${port}'\`): stop it, or choose another --port`;
    case 'EADDRNOTAVAIL':
      return 'no network interface has that address: check --listen';
    case 'EACCES':
      return 'ports below 1024 need root or CAP_NET_BIND_SERVICE: run with --port 9418 or above, or as root';
    case 'EAFNOSUPPORT':
      return 'this host has no IPv6 (or no IPv4): leave that address out of --listen';
    default:
      return 'check --listen and --port';
  }
}

/**
 * Accepted sockets start paused (the request line is read on our terms), and stay writable
 * after the client's FIN: a client may shut down its sending side once its request is out
 * (`nc -N`, scripts), and still gets its whole answer, as from git daemon.
 */
const SERVER_OPTIONS: net.ServerOpts = { pauseOnConnect: true, allowHalfOpen: true };

/** One bound-and-listening socket: its descriptor (made in Rust) or a node server (no addon). */
type Bound = { fd: number; mptcp: boolean; fallback: string | null } | { server: net.Server };

async function bindOnce(ip: string, port: number, mptcp: boolean, backlog: number): Promise<Bound> {
  if (core.net) return core.net.listenSocket(ip, port, mptcp, backlog);
  // Without the addon: node's own listener (libuv sets SO_REUSEADDR on it too).
  const server = net.createServer(SERVER_OPTIONS);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ip, port, backlog, ipv6Only: ip.includes(':'), exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server };
}

/** Idle time before the first keepalive probe on accepted connections. */
const KEEPALIVE_IDLE_MS = 10_000;

function errnoOf(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code ? code : 'EUNKNOWN';
}

function adopt(b: Bound, opts: Pick<BindOptions, 'log' | 'onConnection'>, from: Listener['from'], ip: string | null): Promise<Listener> {
  const server = 'server' in b ? b.server : net.createServer(SERVER_OPTIONS);
  const listener: Listener = { server, address: ip ?? '', port: 0, mptcp: 'server' in b ? false : b.mptcp, from };
  server.on('connection', (socket: net.Socket) => {
    // Keepalive on an MPTCP socket applies to every subflow: a link that dies while the
    // transfer is idle (pack still being computed) is noticed before data queues behind it.
    socket.setKeepAlive(true, KEEPALIVE_IDLE_MS);
    opts.onConnection(socket, listener);
  });
  server.on('error', (e) => opts.log.error('accept-error', `accept on ${hostPort(listener.address, listener.port)}: ${(e as Error).message}`, { code: errnoOf(e) }));
  const finish = () => {
    const a = server.address() as net.AddressInfo | null;
    if (a) {
      listener.address = a.address;
      listener.port = a.port;
    }
    return listener;
  };
  if ('server' in b) return Promise.resolve(finish());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd: b.fd }, () => {
      server.off('error', reject);
      resolve(finish());
    });
  });
}

function closeBound(b: Bound): void {
  if ('server' in b) b.server.close();
  else {
    try {
      closeSync(b.fd);
    } catch {
      // already closed
    }
  }
}

/** The addresses to bind: each --listen resolved, or 0.0.0.0 and :: (the latter optional). */
async function targets(listen: string[]): Promise<{ ip: string; optional: boolean }[]> {
  if (!listen.length) return [{ ip: '0.0.0.0', optional: false }, { ip: '::', optional: true }];
  const out: { ip: string; optional: boolean }[] = [];
  for (const host of listen) {
    let ips: string[];
    try {
      ips = await resolveAll(host);
    } catch (e) {
      throw new BindError(host, 'ENOTFOUND', `: cannot resolve the name (${(e as Error).message})`, 'give --listen an IP address or a name this host resolves');
    }
    for (const ip of ips) if (!out.some((o) => o.ip === ip)) out.push({ ip, optional: false });
  }
  return out;
}

/**
 * Binds every address, retrying those that fail with EADDRINUSE/EADDRNOTAVAIL until the bind
 * timeout. All or nothing: on failure every socket already bound is closed.
 */
export async function bindListeners(opts: BindOptions): Promise<Listener[]> {
  const backlog = opts.backlog ?? BACKLOG;
  const want = await targets(opts.listen);
  if (opts.mptcp && !core.net) opts.log.notice('mptcp-fallback', `${netMissing()}: listening with plain TCP`, { reason: netMissing() });
  const bound = new Map<string, Bound>();
  const warned = new Set<string>();
  const skipped = new Set<string>();
  const deadline = Date.now() + opts.bindTimeoutMs;
  let wait = BIND_RETRY_FIRST_MS;
  let mptcpFallbackLogged = false;
  try {
    for (;;) {
      let retry: { addr: string; errno: string; message: string } | null = null;
      for (const { ip, optional } of want) {
        if (bound.has(ip) || skipped.has(ip)) continue;
        try {
          const b = await bindOnce(ip, opts.port, opts.mptcp, backlog);
          bound.set(ip, b);
          if (!('server' in b) && opts.mptcp && !b.mptcp && !mptcpFallbackLogged) {
            mptcpFallbackLogged = true;
            opts.log.notice('mptcp-fallback', `MPTCP is not available (the kernel refused it with ${b.fallback}): listening with plain TCP`, { reason: b.fallback });
          }
        } catch (e) {
          const errno = errnoOf(e);
          const addr = hostPort(ip, opts.port);
          if (optional && errno === 'EAFNOSUPPORT') {
            opts.log.notice('bind-skip', `not listening on ${addr}: this host has no IPv6 (${errno})`, { address: ip, errno });
            skipped.add(ip);
            continue;
          }
          if (!RETRYABLE.has(errno)) throw new BindError(addr, errno, '', hintFor(errno, opts.port));
          retry ??= { addr, errno, message: (e as Error).message };
          if (!warned.has(ip)) {
            warned.add(ip);
            if (opts.bindTimeoutMs > 0) {
              opts.log.notice('bind-retry', `cannot bind ${addr} yet (${errno}); retrying for up to ${opts.bindTimeoutMs / 1000} s`, { address: ip, port: opts.port, errno });
            }
          }
        }
      }
      if (!retry) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        const detail = opts.bindTimeoutMs > 0 ? `; still failing after retrying for ${opts.bindTimeoutMs / 1000} s` : '';
        throw new BindError(retry.addr, retry.errno, detail, hintFor(retry.errno, opts.port));
      }
      await new Promise((r) => setTimeout(r, Math.min(wait, left)));
      wait = Math.min(wait * 2, BIND_RETRY_MAX_MS);
    }
    const listeners: Listener[] = [];
    try {
      for (const [ip, b] of bound) {
        listeners.push(await adopt(b, opts, 'bind', ip));
        bound.delete(ip); // node owns it now
      }
    } catch (e) {
      for (const l of listeners) l.server.close();
      throw e;
    }
    return listeners;
  } catch (e) {
    for (const b of bound.values()) closeBound(b);
    throw e;
  }
}

/** First descriptor systemd passes (SD_LISTEN_FDS_START). */
const SD_LISTEN_FDS_START = 3;
/** More than this many passed sockets is a misconfiguration, not a daemon. */
const MAX_SYSTEMD_FDS = 64;

/** The listening sockets systemd passed to this process (socket activation), if any. */
export async function systemdListeners(opts: Pick<BindOptions, 'log' | 'onConnection'>, env: NodeJS.ProcessEnv = process.env): Promise<Listener[] | null> {
  if (!env.LISTEN_FDS || env.LISTEN_PID !== String(process.pid)) return null;
  const n = Number(env.LISTEN_FDS);
  // sd_listen_fds(unset_environment=1): the service processes must not think they were activated.
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SYSTEMD_FDS) {
    throw new MpgitError('MPGIT_BIND', `LISTEN_FDS=${JSON.stringify(String(n))} is not a count of 1 to ${MAX_SYSTEMD_FDS} sockets`, 'check the systemd socket unit');
  }
  const out: Listener[] = [];
  for (let fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
    let mptcp: boolean | null = null;
    try {
      mptcp = core.net ? core.net.connInfo(fd).mptcp : null;
    } catch {
      mptcp = null;
    }
    try {
      const l = await adopt({ fd, mptcp: false, fallback: null }, opts, 'systemd', null);
      l.mptcp = mptcp;
      out.push(l);
    } catch (e) {
      for (const l of out) l.server.close();
      throw new MpgitError('MPGIT_BIND', `socket ${fd} passed by systemd cannot be listened on: ${(e as Error).message}`, 'the socket unit must pass stream (TCP or MPTCP) sockets');
    }
  }
  return out;
}
