// One client connection, from its first byte to its close: read the request line, check it
// against the service table and the path policy, then hand the connection to whoever serves it
// (an in-process hook, or git's own service process), and log how it went. Refusals go back to
// the client as an `ERR` pkt-line and into the log.

import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import { parseRequest, requestedVersion, type GitRequest } from '../protocol/request.js';
import { pkt } from '../pktline.js';
import { ClientGoneError, MpgitError, TimeoutError } from '../errors.js';
import type { ConnInfo } from '../core/index.js';
import { laterReading, readCounters, settleCounters } from '../net/counters.js';
import type { DaemonConfig, ServiceName } from './config.js';
import type { ConnLog, DaemonLog } from './log.js';
import { hostPort } from './log.js';
import { readRequestLine, releaseReading, stopReading } from './request-reader.js';
import { authorize } from './policy.js';
import { serviceArgs, serviceOf, spawnService } from './services.js';
import type { TransferRecord } from './access.js';
import type { CacheResult, PackCache } from '../cache/pack-cache.js';

/** A request the daemon has accepted, offered to the service hooks before git runs it. */
export interface ServiceCall {
  service: ServiceName;
  request: GitRequest;
  /** Protocol version the client asked for (0 when none). */
  protocolVersion: number;
  /** The repository's real path. */
  gitDir: string;
  /** The client's bytes, paused. Reading starts where `leftover` ends. */
  input: Readable;
  /**
   * Bytes the client sent after the request line, already read off the socket (normally none:
   * git clients wait for the server to speak). A hook that takes the request must consume them
   * first (e.g. `input.unshift(leftover)`).
   */
  leftover: Buffer;
  output: Writable;
  /** The TCP/MPTCP socket when there is one (not with --inetd over pipes). */
  socket: net.Socket | null;
  /** What a child process writing to the client gets as its stdout (the socket itself). */
  stdout: Writable | number;
  /** The environment git gets for this request (the access hook's and the daemon's variables). */
  env: NodeJS.ProcessEnv;
  /** The daemon's pack cache, when it is on. */
  packCache: PackCache | null;
  /** git's arguments for the service as the daemon runs it (`upload-pack --strict --timeout=N .`). */
  gitArgs: string[];
  /** A child now writing to the client (null: none): shutdown and --timeout signal it as git's. */
  onChild(child: ChildProcess | null): void;
  log: ConnLog;
  /** What a hook that served the request reports back (for the metrics and the close and access lines). */
  served: { packfileUris: number; cache: CacheResult | null; why?: string };
}

/**
 * Takes over a request in-process (e.g. packfile-URI offload answering v2 `fetch` itself):
 * resolves to the exit status once it has served it, or null to let git serve it. A hook runs
 * inside the daemon, so its transfers do not survive the daemon's death as git's do.
 */
export type ServiceHook = (call: ServiceCall) => Promise<number | null> | number | null;

/** The two ends of a connection and what is known about it. */
export interface ConnectionIO {
  id: number;
  input: Readable;
  output: Writable;
  /** What the service process gets as stdin/stdout: the socket itself, or fds 0/1 (inetd). */
  stdio: [Readable | number, Writable | number];
  socket: net.Socket | null;
  /** Descriptor for the kernel's MPTCP/TCP counters. */
  infoFd: number | null;
  remote: { address: string; port: number } | null;
  mptcp: boolean | null;
  /** Called once the request is read (it stops counting as pending): over --max-connections? */
  overLimit: () => boolean;
}

export interface ConnectionContext {
  cfg: DaemonConfig;
  log: DaemonLog;
  hooks: ServiceHook[];
  /**
   * Called with the service process once it runs (shutdown signals it after the grace period);
   * `handedOver`: it has the socket itself, rather than pipes relayed by the daemon.
   */
  onChild: (child: ChildProcess | null, handedOver: boolean) => void;
  /** The pack cache upload-pack's pack-objects goes through (none: git packs every time). */
  packCache?: PackCache | null;
  /** Called once per connection when it ends (access log, metrics). */
  onFinished?: (r: TransferRecord, log: ConnLog) => void;
}

/** How long after the service exits we wait for the client's close, to count the bytes it got. */
const LINGER_MS = 2000;
/** Bound on what we read (and discard) from a client after refusing it. */
const DRAIN_MS = 1000;
const DRAIN_MAX_BYTES = 256 * 1024;

export interface ConnectionResult {
  exitCode: number;
  service: ServiceName | null;
}

function mptcpText(m: boolean | null): string {
  return m === null ? 'unknown' : m ? 'yes' : 'no';
}

/**
 * Writes a last message and closes our sending side; then waits (bounded) for the client to
 * close too, discarding what it sends. Returns the connection's counters as of the client's
 * close (or the wait's end): by then the client has received what we sent.
 */
async function finish(io: ConnectionIO, last: Buffer | null, waitMs: number): Promise<ConnInfo | null> {
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

/** Serves one connection to its end. Refusals and failures of the client are logged, not thrown. */
export async function handleConnection(io: ConnectionIO, ctx: ConnectionContext): Promise<ConnectionResult> {
  const { cfg } = ctx;
  const log = ctx.log.connection(io.id);
  const started = Date.now();
  const remoteText = io.remote ? hostPort(io.remote.address, io.remote.port) : 'stdin';
  log.info('connection', `Connection from ${remoteText} (mptcp: ${mptcpText(io.mptcp)})`, {
    remote: io.remote ? hostPort(io.remote.address, io.remote.port) : null,
    mptcp: io.mptcp,
  });

  let service: ServiceName | null = null;
  let exitCode = 1;
  let repo: string | null = null;
  let path: string | null = null;
  let outcome: Pick<TransferRecord, 'result' | 'refusal' | 'cache' | 'packfileUris'> = { result: 'gone', refusal: null, cache: null, packfileUris: 0 };

  const disconnected = (info: ConnInfo | null, extra: { why?: string } = {}) => {
    const secs = ((Date.now() - started) / 1000).toFixed(2);
    const traffic = info
      ? `mptcp ${info.mptcp ? 'yes' : 'no'}, ${info.subflowsUsed} subflow${info.subflowsUsed === 1 ? '' : 's'} carried it (${info.subflows} open), ${info.bytesSent} bytes sent, ${info.bytesReceived} bytes received`
      : 'counters unavailable';
    log.info(
      'disconnected',
      `Disconnected${exitCode !== 0 ? ' (with error)' : ''}: ${extra.why ? `${extra.why}; ` : ''}${traffic}, ${secs} s`,
      {
        exitCode,
        service,
        path,
        mptcp: info?.mptcp ?? io.mptcp,
        subflows: info?.subflows ?? null,
        subflowsUsed: info?.subflowsUsed ?? null,
        bytesSent: info?.bytesSent ?? null,
        bytesReceived: info?.bytesReceived ?? null,
        durationMs: Date.now() - started,
      },
    );
    ctx.onFinished?.(
      {
        service, repo, client: io.remote ? hostPort(io.remote.address, io.remote.port) : null, ...outcome, exitCode,
        bytesSent: info?.bytesSent ?? null, bytesReceived: info?.bytesReceived ?? null, durationMs: Date.now() - started,
        mptcp: info?.mptcp ?? io.mptcp, subflows: info?.subflows ?? null, subflowsUsed: info?.subflowsUsed ?? null,
      },
      log,
    );
  };

  const refuse = async (clientMessage: string, why: string) => {
    exitCode = 1;
    outcome = { result: 'refused', refusal: why, cache: null, packfileUris: 0 };
    disconnected(await finish(io, pkt(`ERR ${clientMessage}`), DRAIN_MS), { why });
    return { exitCode, service };
  };

  // 1. The request line.
  let request: GitRequest;
  let rest: Buffer;
  try {
    const line = await readRequestLine(io.input, { timeoutMs: cfg.initTimeout * 1000 });
    rest = line.rest;
    request = parseRequest(line.payload);
  } catch (e) {
    if (e instanceof ClientGoneError) {
      log.info('client-gone', e.message);
      disconnected(await finish(io, null, 0), { why: 'no request' });
      return { exitCode, service };
    }
    if (e instanceof TimeoutError) {
      log.error('request-timeout', `Timeout: no request line within ${cfg.initTimeout} s`);
      return refuse(`timed out waiting for the request line (${cfg.initTimeout} s)`, 'timeout');
    }
    const msg = (e as Error).message;
    log.error('protocol-error', `Protocol error: ${msg}`, { code: e instanceof MpgitError ? e.code : undefined });
    return refuse(`protocol error: ${msg}`, 'protocol error');
  }
  if (request.host !== undefined) {
    const h = request.port ? `${request.host}:${request.port}` : request.host;
    log.info('extended-attribute', `Extended attribute "host": ${h}`, { name: 'host', value: h });
  }
  if (request.extra.length) {
    const p = request.extra.join(':');
    log.info('extended-attribute', `Extended attribute "protocol": ${p}`, { name: 'protocol', value: p });
  }
  service = serviceOf(request.service);
  path = request.path;
  log.info('request', `Request ${service} for '${request.path}'`, { service, path: request.path });

  if (io.overLimit()) {
    log.error('too-many-connections', `Too many connections (limit ${cfg.maxConnections}): refusing`, { limit: cfg.maxConnections });
    return refuse(`too many connections: the server allows ${cfg.maxConnections}; try again later`, 'too many connections');
  }

  // 2. The policy: service on, repository allowed and exported, its config, the access hook.
  const allowed = await authorize(request, service!, cfg, io);
  if ('why' in allowed) {
    log.error(allowed.log.event, allowed.log.text, allowed.log.fields);
    return refuse(allowed.client, allowed.why);
  }
  const { gitDir, env } = allowed;
  repo = gitDir;
  if (allowed.relaxed) log.info('relaxed', `'${request.path}' is not under the base path: found as it is (--base-path-relaxed)`, { path: request.path, gitDir });

  // 3. Serve it: a hook in-process, or git.
  const call: ServiceCall = {
    service: service!,
    request,
    protocolVersion: requestedVersion(request.extra),
    gitDir,
    input: io.input,
    leftover: rest,
    output: io.output,
    socket: io.socket,
    stdout: io.stdio[1],
    env,
    packCache: ctx.packCache ?? null,
    gitArgs: serviceArgs(service!, cfg),
    onChild: (c) => ctx.onChild(c, true),
    log,
    served: { packfileUris: 0, cache: null },
  };
  for (const hook of ctx.hooks) {
    let r: number | null;
    releaseReading(io.input); // the hook may read the client from here on
    try {
      r = await hook(call);
    } catch (e) {
      log.error('hook-error', `in-process ${service} failed: ${(e as Error).message}`);
      r = 1;
    }
    if (r === null) stopReading(io.input);
    if (r !== null) {
      exitCode = r;
      outcome = { result: 'served', refusal: null, cache: call.served.cache, packfileUris: call.served.packfileUris };
      disconnected(await finish(io, null, LINGER_MS), { why: call.served.why ?? `served in-process, exit ${r}` });
      return { exitCode, service };
    }
  }

  if (rest.length) log.info('relay', `client sent ${rest.length} bytes after its request: relaying the connection through the daemon`);
  // Spawning from inside a read callback can lose the socket to the child (seen with libuv):
  // make sure we are on a fresh tick.
  await new Promise((r) => setImmediate(r));
  // upload-pack's pack-objects goes through the pack cache (a `git -c` setting: protected config).
  const lease = service === 'upload-pack' ? (ctx.packCache?.lease(gitDir) ?? null) : null;
  const args = serviceArgs(service!, cfg);
  const proc = spawnService({
    args: [...(lease?.gitArgs ?? []), ...args],
    gitDir,
    env: lease ? { ...env, ...lease.env } : env,
    // Relaying (bytes already read) goes through the streams; otherwise the child gets the socket.
    stdin: rest.length ? io.input : io.stdio[0],
    stdout: rest.length ? io.output : io.stdio[1],
    leftover: rest,
    onStderrLine: (line) => log.error('service-stderr', line),
  });
  if (proc.child.pid) {
    ctx.onChild(proc.child, !proc.relayed);
    log.info('service', `Serving '${gitDir}' with git ${args.join(' ')} (pid ${proc.child.pid})${lease ? ', packs through the pack cache' : ''}`, { service, gitDir, args, servicePid: proc.child.pid, packCache: !!lease });
  }
  const end = await proc.exited;
  lease?.release();
  exitCode = end.code;
  outcome = { result: 'served', refusal: null, cache: lease?.result ?? null, packfileUris: 0 };
  disconnected(proc.relayed ? await finish(io, null, LINGER_MS) : await settleCounters(io, LINGER_MS), { why: `${service} ${end.signal ? `killed by ${end.signal}` : `exited ${end.code}`}` });
  return { exitCode, service };
}
