// A client connection to a git:// server: MPTCP or TCP socket, the request line (asking for
// protocol v2), and the server's first answer. Reports the transport with -v.

import type net from 'node:net';
import { connect, connInfo } from '../net/socket.js';
import { PktReader } from '../pktline.js';
import { encodeRequest } from '../protocol/request.js';
import { readHandshake, type Handshake } from '../protocol/handshake.js';
import type { Wire } from '../protocol/wire.js';
import { endSession } from '../protocol/v2.js';
import { MpgitError } from '../errors.js';
import { hostHeader, type GitUrl } from './url.js';
import { humanBytes, type ProgressSink } from '../progress.js';
import { netMissing, type ConnInfo } from '../core/index.js';

/** Longest wait for a connect. */
export const CONNECT_TIMEOUT_MS = 15_000;
/**
 * Longest silence from the server. git's upload-pack sends a keepalive every 5 s while it
 * prepares a pack, so a minute of nothing means it is gone.
 */
export const IDLE_TIMEOUT_MS = Number(process.env.MPGIT_IDLE_TIMEOUT_MS) || 120_000;
/** Bytes buffered from the socket before it is paused. */
const READ_HIGH_WATER = 8 << 20;

export interface ConnectOptions {
  /** --mptcp given (GIT_ENABLE_MPTCP in the environment also turns MPTCP on). */
  mptcp?: boolean;
  /** Ask for this protocol version (2 unless told otherwise). */
  protocolVersion?: 0 | 2;
  /** -v: transport lines go here. */
  verbose?: ((line: string) => void) | null;
}

/** What each verb that talks to a remote (clone, fetch) takes besides its own flags. */
export interface RemoteVerbOptions extends ConnectOptions {
  /** Where messages (warnings, "Cloning into...") go; null with -q. */
  say: ((line: string) => void) | null;
  /** -v lines (transport), or null. */
  verbose: ((line: string) => void) | null;
  /** Progress meters (and remote progress), or null. */
  progress: ProgressSink | null;
  /** Ask for packfile URIs (default true; --no-packfile-uris turns it off). */
  packfileUris?: boolean;
}

/** MPTCP is wanted when asked on the command line or GIT_ENABLE_MPTCP is set (any value). */
export function mptcpWanted(flag: boolean | undefined): boolean {
  return !!flag || process.env.GIT_ENABLE_MPTCP !== undefined;
}

export class Connection implements Wire {
  readonly reader: PktReader;
  private closed = false;
  private lastInfo: ConnInfo | null = null;
  /** A v0 fetch has been sent (the connection then ends with the pack). */
  fetched = false;

  private constructor(
    readonly socket: net.Socket,
    readonly url: GitUrl,
    readonly handshake: Handshake,
    reader: PktReader,
    private readonly verbose: ((line: string) => void) | null,
  ) {
    this.reader = reader;
  }

  static async open(url: GitUrl, opts: ConnectOptions = {}): Promise<Connection> {
    const mptcp = mptcpWanted(opts.mptcp);
    if (mptcp) warnNoMptcp();
    const verbose = opts.verbose ?? null;
    const c = await connect(url.host, url.port, { mptcp, timeoutMs: CONNECT_TIMEOUT_MS });
    const socket = c.socket;
    // Errors surface through the reader; this keeps node from treating them as unhandled.
    socket.on('error', () => {});
    const info = connInfo(socket);
    if (verbose) {
      const addr = c.address.includes(':') ? `[${c.address}]` : c.address;
      let how: string;
      if (info?.mptcp) how = 'MPTCP';
      else if (!mptcp) how = 'TCP';
      else if (c.fallback) how = /^E[A-Z]+$/.test(c.fallback) ? `TCP (MPTCP refused by this kernel: ${c.fallback})` : `TCP (no MPTCP: ${c.fallback})`;
      else if (c.mptcpSocket) how = 'TCP (the server does not speak MPTCP)';
      else how = 'TCP';
      verbose(`Connected to ${addr} port ${c.port} over ${how}`);
    }
    const reader = new PktReader(socket, { timeoutMs: IDLE_TIMEOUT_MS, highWater: READ_HIGH_WATER, what: `the server at ${url.host}:${url.port}` });
    const version = opts.protocolVersion ?? 2;
    const wire = { reader, send: (d: Buffer) => sendOn(socket, d) };
    try {
      await wire.send(encodeRequest({ service: 'git-upload-pack', path: url.path, ...hostHeader(url), extra: version === 2 ? ['version=2'] : [] }));
      const handshake = await readHandshake(reader);
      if (verbose) verbose(`Server speaks protocol v${handshake.version}`);
      return new Connection(socket, url, handshake, reader, verbose);
    } catch (e) {
      socket.destroy();
      throw wrapSocketError(e, url);
    }
  }

  send(data: Buffer): Promise<void> {
    return sendOn(this.socket, data);
  }

  /** The kernel's counters for this connection (read before closing). */
  info(): ConnInfo | null {
    if (!this.closed) this.lastInfo = connInfo(this.socket) ?? this.lastInfo;
    return this.lastInfo;
  }

  /** Ends the session politely (v2 flush), reports subflows with -v, closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      // v2 ends a session with a flush where a command would start; v0 says "I want nothing"
      // with a flush instead of wants (after a v0 fetch there is nothing more to say).
      if ((this.handshake.version === 2 || !this.fetched) && !this.socket.destroyed) await endSession(this);
    } catch {
      // The server may have gone already; nothing is lost.
    }
    this.report();
    this.closed = true;
    this.socket.end();
    this.socket.destroy();
  }

  /** Drops the connection at once (errors). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private report(): void {
    const info = this.info();
    if (!this.verbose || !info) return;
    if (info.mptcp) {
      const per = info.perSubflow.map((s, i) => `#${i + 1} ${humanBytes(s.bytesReceived)} in`).join(', ');
      this.verbose(`MPTCP: ${info.subflows} subflow${info.subflows === 1 ? '' : 's'} (${info.subflowsUsed} used), ${humanBytes(info.bytesReceived)} received${per ? `: ${per}` : ''}`);
    } else this.verbose(`TCP: ${humanBytes(info.bytesReceived)} received`);
  }
}

function sendOn(socket: net.Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      reject(new MpgitError('MPGIT_CONNECTION', 'the connection to the server is closed', 'run the command again'));
      return;
    }
    socket.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** Errno codes of a connection, not of the file system (EEXIST, ENOSPC... pass as they are). */
const SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ENOTCONN', 'ESHUTDOWN', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_SOCKET_CLOSED']);

/** Socket errors (ECONNRESET, EPIPE...) as errors that say what happened. */
export function wrapSocketError(e: unknown, url: GitUrl): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (e instanceof MpgitError || !code || !SOCKET_CODES.has(code)) return e;
  return new MpgitError('MPGIT_CONNECTION', `lost the connection to ${url.host}:${url.port}: ${code}`, 'the server or the network dropped the connection; run the command again', { cause: e });
}

let warnedNoMptcp = false;

/** MPTCP asked for where only the native addon makes MPTCP sockets: one line, once per process. */
function warnNoMptcp(): void {
  const why = netMissing();
  if (!why || warnedNoMptcp) return;
  warnedNoMptcp = true;
  process.stderr.write(`warning: MPTCP asked for (--mptcp or GIT_ENABLE_MPTCP), but ${why}: connecting over TCP\n`);
}
