// One client connection, from its first byte to its close: read the request line, check it
// against the service table and the path policy, then hand the connection to whoever serves it
// (an in-process hook, or git's own service process), and log how it went. Refusals go back to
// the client as an `ERR` pkt-line and into the log.

import { parseRequest, requestedVersion, type GitRequest } from '../protocol/request.js';
import { ClientGoneError, MpgitError, TimeoutError } from '../errors.js';
import type { ConnInfo } from '../core/index.js';
import { settleCounters } from '../net/counters.js';
import type { CacheOutcome } from './access.js';
import type { DaemonConfig } from './config.js';
import { ConnectionEnd, finish, GONE, LINGER_MS } from './connection-end.js';
import type { ConnectionContext, ConnectionIO, ConnectionResult, ServiceCall, ServiceHook } from './connection-types.js';
import type { ConnLog } from './log.js';
import { readRequestLine, releaseReading, stopReading } from './request-reader.js';
import { authorize } from './policy.js';
import { serviceArgs, serviceOf, spawnService } from './services.js';

/** Serves one connection to its end. Refusals and failures of the client are logged, not thrown. */
export async function handleConnection(io: ConnectionIO, ctx: ConnectionContext): Promise<ConnectionResult> {
  const { cfg } = ctx;
  const end = new ConnectionEnd(io, ctx);
  const log = end.log;

  // 1. The request line.
  const read = await readRequest(io, cfg, log);
  if (read === 'gone') return end.close(1, GONE, await finish(io, null, 0), 'no request');
  if ('refuse' in read) return end.refuse(read.refuse, read.why);
  const { request, rest } = read;
  end.service = serviceOf(request.service);
  end.path = request.path;
  log.info('request', `Request ${end.service} for '${request.path}'`, { service: end.service, path: request.path });
  if (io.overLimit()) {
    log.error('too-many-connections', `Too many connections (limit ${cfg.maxConnections}): refusing`, { limit: cfg.maxConnections });
    return end.refuse(`too many connections: the server allows ${cfg.maxConnections}; try again later`, 'too many connections');
  }

  // 2. The policy: service on, repository allowed and exported, its config, the access hook.
  const allowed = await authorize(request, end.service!, cfg, io);
  if ('why' in allowed) {
    log.error(allowed.log.event, allowed.log.text, allowed.log.fields);
    return end.refuse(allowed.client, allowed.why);
  }
  end.repo = allowed.gitDir;
  if (allowed.relaxed) log.info('relaxed', `'${request.path}' is not under the base path: found as it is (--base-path-relaxed)`, { path: request.path, gitDir: allowed.gitDir });

  // 3. Serve it: a hook in-process, or git.
  const call: ServiceCall = {
    service: end.service!,
    request,
    protocolVersion: requestedVersion(request.extra),
    gitDir: allowed.gitDir,
    input: io.input,
    leftover: rest,
    output: io.output,
    socket: io.socket,
    stdout: io.stdio[1],
    env: allowed.env,
    packCache: ctx.packCache ?? null,
    gitArgs: serviceArgs(end.service!, cfg),
    onChild: (c) => ctx.onChild(c, true),
    log,
    served: { packfileUris: 0, cache: null },
  };
  const byHook = await offerToHooks(ctx.hooks, call, io);
  if (byHook !== null) {
    const outcome = { result: 'served', refusal: null, cache: call.served.cache, packfileUris: call.served.packfileUris } as const;
    return end.close(byHook, outcome, await finish(io, null, LINGER_MS), call.served.why ?? `served in-process, exit ${byHook}`);
  }
  const ran = await serveByGit(io, ctx, call);
  return end.close(ran.exitCode, { result: 'served', refusal: null, cache: ran.cache, packfileUris: 0 }, ran.info, ran.why);
}

/** The request line, parsed; 'gone' when the client left first; else what to refuse it with. */
async function readRequest(io: ConnectionIO, cfg: DaemonConfig, log: ConnLog): Promise<{ request: GitRequest; rest: Buffer } | { refuse: string; why: string } | 'gone'> {
  let request: GitRequest;
  let rest: Buffer;
  try {
    const line = await readRequestLine(io.input, { timeoutMs: cfg.initTimeout * 1000 });
    rest = line.rest;
    request = parseRequest(line.payload);
  } catch (e) {
    if (e instanceof ClientGoneError) {
      log.info('client-gone', e.message);
      return 'gone';
    }
    if (e instanceof TimeoutError) {
      log.error('request-timeout', `Timeout: no request line within ${cfg.initTimeout} s`);
      return { refuse: `timed out waiting for the request line (${cfg.initTimeout} s)`, why: 'timeout' };
    }
    const msg = (e as Error).message;
    log.error('protocol-error', `Protocol error: ${msg}`, { code: e instanceof MpgitError ? e.code : undefined });
    return { refuse: `protocol error: ${msg}`, why: 'protocol error' };
  }
  if (request.host !== undefined) {
    const h = request.port ? `${request.host}:${request.port}` : request.host;
    log.info('extended-attribute', `Extended attribute "host": ${h}`, { name: 'host', value: h });
  }
  if (request.extra.length) {
    const p = request.extra.join(':');
    log.info('extended-attribute', `Extended attribute "protocol": ${p}`, { name: 'protocol', value: p });
  }
  return { request, rest };
}

/** Offers the request to each hook in turn: the exit status of the one that served it, or null. */
async function offerToHooks(hooks: ServiceHook[], call: ServiceCall, io: ConnectionIO): Promise<number | null> {
  for (const hook of hooks) {
    let r: number | null;
    releaseReading(io.input); // the hook may read the client from here on
    try {
      r = await hook(call);
    } catch (e) {
      call.log.error('hook-error', `in-process ${call.service} failed: ${(e as Error).message}`);
      r = 1;
    }
    if (r !== null) return r;
    stopReading(io.input);
  }
  return null;
}

/** Runs git's service process on the connection (through the pack cache for upload-pack) to its exit. */
async function serveByGit(io: ConnectionIO, ctx: ConnectionContext, call: ServiceCall): Promise<{ exitCode: number; cache: CacheOutcome | null; info: ConnInfo | null; why: string }> {
  const { service, gitDir, leftover: rest, log, env } = call;
  if (rest.length) log.info('relay', `client sent ${rest.length} bytes after its request: relaying the connection through the daemon`);
  // Spawning from inside a read callback can lose the socket to the child (seen with libuv):
  // make sure we are on a fresh tick.
  await new Promise((r) => setImmediate(r));
  // upload-pack's pack-objects goes through the pack cache (a `git -c` setting: protected config).
  const lease = service === 'upload-pack' ? (ctx.packCache?.lease(gitDir) ?? null) : null;
  const args = serviceArgs(service, ctx.cfg);
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
  const ended = await proc.exited;
  lease?.release();
  const info = proc.relayed ? await finish(io, null, LINGER_MS) : await settleCounters(io, LINGER_MS);
  return { exitCode: ended.code, cache: lease?.result ?? null, info, why: `${service} ${ended.signal ? `killed by ${ended.signal}` : `exited ${ended.code}`}` };
}
