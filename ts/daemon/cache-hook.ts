// The daemon's in-process hook for protocol v2 upload-pack when the pack cache is on. We answer
// the capability advertisement and ls-refs ourselves (from remembered refs: no git run), and
// hand each fetch to `git upload-pack --stateless-rpc`, which writes to the client's socket
// itself and packs through the cache's hook as before. When a clone's request (wants, `done`,
// no haves, no shallow lines) was answered that way, we remember which cache entry its
// pack-objects run made; the next identical request against the same refs and config gets that
// entry sent by the hook program straight into the socket: no upload-pack, no pack-objects, no
// copy through the daemon. Both children hold the socket, so a transfer outlives a daemon
// restart as git's own do.

// Not git (ts/git.ts runs that): the pack cache's hook program, sending a cached pack itself.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { ServiceCall, ServiceHook } from './connection-types.js';
import type { CacheResult, HeldEntry, PackCache } from '../cache/pack-cache.js';
import { serveV2 } from '../serve/serve.js';
import { feedRequest } from '../serve/fetch.js';
import type { CommandRequest } from '../serve/command.js';
import type { ResponseWriter } from '../serve/response.js';
import { servingState } from '../repo/server-refs.js';
import { GitCommandError, spawnGit } from '../git.js';
import { humanBytes } from '../progress.js';

/** Requests whose cache entry is remembered (most recent kept). */
const MAX_REMEMBERED = 10_000;
/** Request key → the pack cache key its pack-objects run had. */
const answers = new Map<string, string>();

const RANK: Record<CacheResult, number> = { bypass: 0, hit: 1, join: 2, miss: 3 };

export const cacheHook: ServiceHook = async (call) => {
  const cache = call.packCache;
  if (call.service !== 'upload-pack' || call.protocolVersion !== 2 || !cache || !call.socket) return null;
  call.log.info('pack-cache-v2', `Serving '${call.gitDir}' in-process (protocol v2; fetches through the pack cache)`, { gitDir: call.gitDir });
  const stats = await serveV2({
    gitDir: call.gitDir,
    state: null,
    input: call.input,
    initial: call.leftover,
    output: call.output,
    log: (msg) => call.log.info('pack-cache-v2', msg),
    ...(call.timeoutMs > 0 ? { idleTimeoutMs: call.timeoutMs } : {}),
    fetch: (req, writer) => fetchThroughCache(call, cache, req, writer),
  });
  call.log.info('pack-cache-v2-done', `session: ${stats.commands} commands, ${stats.fetches} packs`, { ...stats });
  return 0;
};

/** The key of a clone's request against the repository as it is now; null for other requests. */
async function cloneRequestKey(gitDir: string, req: CommandRequest): Promise<string | null> {
  if (req.haves.received || !req.args.includes('done')) return null;
  if (req.args.some((a) => /^(shallow|deepen|deepen-since|deepen-not|deepen-relative)( |$)/.test(a))) return null;
  const state = await servingState(gitDir);
  if (state === null) return null;
  const h = createHash('sha256');
  for (const part of [gitDir, state]) h.update(part).update('\0');
  // The agent and session id do not change the answer; everything else the client said may.
  for (const c of req.capabilities) if (!/^(agent|session-id)=/.test(c)) h.update(c).update('\n');
  h.update('\0');
  for (const a of req.args) h.update(a).update('\n');
  return h.digest('hex');
}

function remember(requestKey: string, cacheKey: string): void {
  answers.delete(requestKey);
  answers.set(requestKey, cacheKey);
  if (answers.size > MAX_REMEMBERED) answers.delete(answers.keys().next().value!);
}

function note(call: ServiceCall, r: CacheResult | null): void {
  if (r !== null && (call.served.cache === null || RANK[r] > RANK[call.served.cache])) call.served.cache = r;
}

async function fetchThroughCache(call: ServiceCall, cache: PackCache, req: CommandRequest, writer: ResponseWriter): Promise<boolean> {
  const requestKey = await cloneRequestKey(call.gitDir, req);
  const known = requestKey ? answers.get(requestKey) : undefined;
  const held = known ? await cache.hold(known) : null;
  if (held) {
    try {
      await sendEntry(call, cache, req, writer, held);
    } finally {
      held.release();
    }
    return true;
  }
  const lease = cache.lease(call.gitDir);
  try {
    await uploadPack(call, req, writer, lease);
    // One pack-objects run, taken by the cache: the same request can be answered from its entry.
    if (requestKey && lease.keys.length === 1 && lease.result !== null && lease.result !== 'bypass') remember(requestKey, lease.keys[0]!);
  } finally {
    note(call, lease.result);
    lease.release();
  }
  return req.args.includes('done');
}

/** Everything we wrote to the client is in the kernel before a child writes after it. */
async function drained(writer: ResponseWriter, out: Writable): Promise<void> {
  if (writer.gone) throw new GitCommandError(['upload-pack'], 'the client hung up');
  if (out.writableLength > 0) await once(out, 'drain');
}

/** Child's exit: resolves with the code, rejects if it could not start. */
function exit(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

async function sendEntry(call: ServiceCall, cache: PackCache, req: CommandRequest, writer: ResponseWriter, entry: HeldEntry): Promise<void> {
  await drained(writer, call.output);
  const args = ['--v2-packfile', entry.path, String(entry.size)];
  if (req.args.includes('sideband-all')) args.push('--sideband-all');
  if (!req.args.includes('no-progress')) args.push('--progress', `Reusing a cached pack of ${humanBytes(entry.size)}\n`);
  const child = spawn(cache.hook, args, { stdio: ['ignore', call.stdout as never, 'pipe'], detached: true });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => err.length < 4096 && (err += c.toString()));
  const code = await exit(child);
  if (code !== 0) throw new GitCommandError(['pack cache send'], err.trim() || `exit ${code}`);
  cache.servedHit(entry.size);
  note(call, 'hit');
  call.log.info('pack-cache-v2', `fetch: answered from the pack cache (${humanBytes(entry.size)}), without upload-pack`);
}

async function uploadPack(call: ServiceCall, req: CommandRequest, writer: ResponseWriter, lease: { gitArgs: string[]; env: Record<string, string> }): Promise<void> {
  await drained(writer, call.output);
  // The daemon's own arguments (--strict, --timeout), one request per run.
  const args = [call.gitArgs[0]!, '--stateless-rpc', ...call.gitArgs.slice(1)];
  const child = spawnGit(call.gitDir, ['-c', 'uploadpack.allowsidebandall=true', ...lease.gitArgs, ...args], { ...call.env, ...lease.env, GIT_PROTOCOL: 'version=2' }, { stdout: call.stdout, detached: true });
  call.log.info('service', `Serving '${call.gitDir}' with git ${args.join(' ')} (pid ${child.pid}), packs through the pack cache`, { service: call.service, gitDir: call.gitDir, args, servicePid: child.pid, packCache: true });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    if (err.length < 65536) err += c.toString();
  });
  const fed = feedRequest(child.stdin!, req);
  const code = await exit(child);
  await fed;
  for (const line of err.split('\n')) if (line) call.log.error('service-stderr', line);
  if (code !== 0) throw new GitCommandError(['upload-pack', '--stateless-rpc'], err.trim() || `exit ${code}`);
}
