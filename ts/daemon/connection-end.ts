// How a daemon connection ends: our last words (an ERR for a refusal), the client's close
// awaited (bounded) so that the kernel's counters say what it received, then the one
// "Disconnected" line and the one TransferRecord (access log, metrics).

import type { ConnInfo } from '../core/index.js';
import { laterReading, readCounters } from '../net/counters.js';
import { pkt } from '../pktline.js';
import type { TransferRecord } from './access.js';
import type { ServiceName } from './config.js';
import type { ConnectionContext, ConnectionIO, ConnectionResult } from './connection-types.js';
import { hostPort, type ConnLog } from './log.js';
import { releaseReading } from './request-reader.js';

/** How long after the service exits we wait for the client's close, to count the bytes it got. */
export const LINGER_MS = 2000;
/** Bound on what we read (and discard) from a client after refusing it. */
const DRAIN_MS = 1000;
const DRAIN_MAX_BYTES = 256 * 1024;

export type Outcome = Pick<TransferRecord, 'result' | 'refusal' | 'cache' | 'packfileUris'>;

/** The outcome of a connection that sent no request. */
export const GONE: Outcome = { result: 'gone', refusal: null, cache: null, packfileUris: 0 };

function mptcpText(m: boolean | null): string {
  return m === null ? 'unknown' : m ? 'yes' : 'no';
}

/**
 * Writes a last message and closes our sending side; then waits (bounded) for the client to
 * close too, discarding what it sends. Returns the connection's counters as of the client's
 * close (or the wait's end): by then the client has received what we sent.
 */
export async function finish(io: ConnectionIO, last: Buffer | null, waitMs: number): Promise<ConnInfo | null> {
  let info = readCounters(io);
  if (io.socket) {
    const s = io.socket;
    if (s.destroyed) return info;
    await new Promise<void>((resolve) => {
      let seen = 0;
      const timer = setTimeout(done, waitMs);
      function done() {
        // Before node closes the handle (right after 'end'), while the counters are readable.
        info = laterReading(info, readCounters(io));
        clearTimeout(timer);
        s.off('data', onData);
        s.off('end', done);
        s.off('close', done);
        s.off('error', done);
        resolve();
      }
      function onData(c: Buffer) {
        seen += c.length;
        if (seen > DRAIN_MAX_BYTES) done();
      }
      s.on('data', onData);
      s.once('end', done);
      s.once('close', done);
      s.once('error', done);
      if (last) s.end(last);
      else s.end();
      releaseReading(s);
      s.resume();
    });
    return info;
  }
  // stdin/stdout (inetd): stdout cannot be ended; flush the message.
  const out = io.output;
  if (last && out.writable) await new Promise<void>((r) => out.write(last, () => r()));
  return laterReading(info, readCounters(io));
}

/** One connection's log and what its close line reports, from the "Connection from" line on. */
export class ConnectionEnd {
  readonly log: ConnLog;
  private readonly started = Date.now();
  /** Known once the request is read (the service, null when it names none), and once allowed. */
  service: ServiceName | null = null;
  path: string | null = null;
  repo: string | null = null;

  constructor(
    private readonly io: ConnectionIO,
    private readonly ctx: Pick<ConnectionContext, 'log' | 'onFinished'>,
  ) {
    this.log = ctx.log.connection(io.id);
    const remote = io.remote ? hostPort(io.remote.address, io.remote.port) : null;
    this.log.info('connection', `Connection from ${remote ?? 'stdin'} (mptcp: ${mptcpText(io.mptcp)})`, { remote, mptcp: io.mptcp });
  }

  /** Answers with an ERR pkt-line, lets the client read it, and logs the refusal. */
  async refuse(clientMessage: string, why: string): Promise<ConnectionResult> {
    const info = await finish(this.io, pkt(`ERR ${clientMessage}`), DRAIN_MS);
    return this.close(1, { result: 'refused', refusal: why, cache: null, packfileUris: 0 }, info, why);
  }

  /** The close line (`why`: how it ended) and the connection's TransferRecord. */
  close(exitCode: number, outcome: Outcome, info: ConnInfo | null, why?: string): ConnectionResult {
    const { io, log, service, path, repo } = this;
    const durationMs = Date.now() - this.started;
    const traffic = info
      ? `mptcp ${info.mptcp ? 'yes' : 'no'}, ${info.subflowsUsed} subflow${info.subflowsUsed === 1 ? '' : 's'} carried it (${info.subflows} open), ${info.bytesSent} bytes sent, ${info.bytesReceived} bytes received`
      : 'counters unavailable';
    const counters = {
      mptcp: info?.mptcp ?? io.mptcp,
      subflows: info?.subflows ?? null,
      subflowsUsed: info?.subflowsUsed ?? null,
      bytesSent: info?.bytesSent ?? null,
      bytesReceived: info?.bytesReceived ?? null,
    };
    log.info('disconnected', `Disconnected${exitCode !== 0 ? ' (with error)' : ''}: ${why ? `${why}; ` : ''}${traffic}, ${(durationMs / 1000).toFixed(2)} s`, {
      exitCode,
      service,
      path,
      ...counters,
      durationMs,
    });
    const client = io.remote ? hostPort(io.remote.address, io.remote.port) : null;
    this.ctx.onFinished?.({ service, repo, client, ...outcome, exitCode, bytesSent: counters.bytesSent, bytesReceived: counters.bytesReceived, durationMs, mptcp: counters.mptcp, subflows: counters.subflows, subflowsUsed: counters.subflowsUsed }, log);
    return { exitCode, service };
  }
}
