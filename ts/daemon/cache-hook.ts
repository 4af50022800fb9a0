// The daemon's in-process hook for protocol v2 upload-pack when the pack cache is on. Every
// byte the client gets is git upload-pack's own, but the daemon keeps what repeats: the
// capability advertisement (per config) and ls-refs answers (per refs, config and request) are
// git's output remembered, and each other command runs `git upload-pack --stateless-rpc` with the
// client's socket as its stdout, packing through the cache as git daemon's upload-pack would.
// When a clone's request (wants and `done`, no haves, no shallow lines) was answered that way,
// we remember which cache entry its pack-objects run made; the same request against the same
// refs and config is then sent that entry by the hook program straight into the socket: no
// upload-pack, no pack-objects, no copy through the daemon. Children hold the socket, so a
// transfer outlives a daemon restart as git's own do.

// Not git (ts/git.ts runs that): the pack cache's hook program, sending a cached pack itself.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ServiceCall, ServiceHook } from './connection-types.js';
import type { CacheResult, Lease, PackCache } from '../cache/pack-cache.js';
import { DEFAULT_IDLE_TIMEOUT_MS, readCommand } from '../serve/serve.js';
import { BadRequestError, feedRequest } from '../serve/fetch.js';
import { encodeCommand, type CommandRequest } from '../serve/command.js';
import { ResponseWriter } from '../serve/response.js';
import { configFingerprint, servingState } from '../repo/server-refs.js';
import { FileMemo } from '../repo/file-memo.js';
import { PktReader } from '../pktline.js';
import { ClientGoneError, ProtocolError } from '../errors.js';
import { runGit, spawnGit, type GitProcess } from '../git.js';

/** Entries of each memo (most recent kept), and the largest answer remembered. */
const MAX_REMEMBERED = 10_000;
const MAX_MEMO_ANSWER = 4 << 20;

/** Per repository, under the refs and config fingerprint. */
const adverts = new FileMemo<Buffer>(MAX_REMEMBERED);
/** Per request key, under the refs and config fingerprint. */
const lsRefs = new FileMemo<Buffer>(MAX_REMEMBERED);
/** Clone request key → the pack cache key its pack-objects run had (no TTL needed: entries age). */
const answers = new Map<string, string>();
const RANK: Record<CacheResult, number> = { bypass: 0, hit: 1, join: 2, miss: 3 };

/** A child that answered the client failed: it told the client why; the session ends. */
class ServiceFailed extends Error {}

export const cacheHook: ServiceHook = async (call) => {
  const cache = call.packCache;
  if (call.service !== 'upload-pack' || call.protocolVersion !== 2 || !cache || !call.socket) return null;
  call.log.info('pack-cache-v2', `Serving '${call.gitDir}' in-process (protocol v2; git upload-pack per command, through the pack cache)`, { gitDir: call.gitDir });
  const writer = new ResponseWriter(call.output);
  if (call.leftover.length) call.input.unshift(call.leftover);
  const reader = new PktReader(call.input, { timeoutMs: DEFAULT_IDLE_TIMEOUT_MS, what: 'the client' });
  let commands = 0;
  let statePromise: Promise<string | null> | null = null;
  const state: SessionState = () => (statePromise ??= servingState(call.gitDir));
  // git's own words for the close line: the service is upload-pack, run once per command.
  const exited = (code: number) => ((call.served.why = `upload-pack exited ${code}`), code);
  try {
    await writer.write(await advertisement(call, state));
    for (;;) {
      const req = await readCommand(reader);
      // A session ends with the client's flush or FIN; a socket cut under it (--timeout, a
      // reset) is a failed transfer, as a killed upload-pack's is.
      if (!req && call.socket.destroyed && !call.socket.readableEnded) throw new ClientGoneError();
      if (!req) break;
      commands++;
      try {
        if (req.command === 'ls-refs') await writer.write(await lsRefsAnswer(call, state, req));
        else if (req.command === 'fetch') await fetchThroughCache(call, state, cache, req, writer);
        else await uploadPack(call, req, writer, null);
      } finally {
        req.haves.release();
      }
    }
  } catch (e) {
    if (e instanceof ServiceFailed) {
      call.log.error('pack-cache-v2', e.message);
      return exited(1);
    }
    if (e instanceof ClientGoneError || e instanceof ProtocolError) {
      call.log.error('pack-cache-v2', `the connection ended in the middle of the session (${(e as Error).message})`);
      return exited(1);
    }
    call.log.error('pack-cache-v2', (e as Error).message);
    if (e instanceof BadRequestError && !writer.gone) await writer.err(e.message).catch(() => {});
    return exited(1);
  } finally {
    call.onChild(null);
  }
  call.log.info('pack-cache-v2-done', `session: ${commands} commands`, { commands });
  return exited(0);
};

/** The git upload-pack invocation the daemon runs (`--strict --timeout=N .`), one request per run. */
function statelessArgs(call: ServiceCall): string[] {
  return [call.gitArgs[0]!, '--stateless-rpc', ...call.gitArgs.slice(1)];
}

function gitEnv(call: ServiceCall, lease: Lease | null): NodeJS.ProcessEnv {
  return { ...call.env, ...(lease?.env ?? {}), GIT_PROTOCOL: 'version=2' };
}

/**
 * The refs and config fingerprint, taken once per session: its ls-refs and fetch come within
 * milliseconds, as if at one instant (a fetch's wants are explicit ids either way).
 */
type SessionState = () => Promise<string | null>;

/**
 * git upload-pack's v2 capability advertisement for the repository, remembered per config
 * (keyed by the session's refs and config fingerprint, taken anyway: one walk, not two).
 */
async function advertisement(call: ServiceCall, state: SessionState): Promise<Buffer> {
  const fp = (await state()) ?? (await configFingerprint(call.gitDir));
  const known = adverts.get(call.gitDir, fp);
  if (known) return known;
  const r = await runGit(call.gitDir, ['upload-pack', '--advertise-refs', '.'], { env: gitEnv(call, null), maxOutput: MAX_MEMO_ANSWER });
  adverts.set(call.gitDir, fp, r.stdout);
  return r.stdout;
}

/** The key of a request's answer against the repository as the session found it; null when it cannot be told. */
async function requestKey(gitDir: string, sessionState: SessionState, req: CommandRequest): Promise<string | null> {
  const state = await sessionState();
  if (state === null) return null;
  const h = createHash('sha256');
  for (const part of [gitDir, state, req.command]) h.update(part).update('\0');
  // The agent and session id do not change the answer; everything else the client said may.
  for (const c of req.capabilities) if (!/^(agent|session-id)=/.test(c)) h.update(c).update('\n');
  h.update('\0');
  for (const a of req.args) h.update(a).update('\n');
  return h.digest('hex');
}

/** git's answer to ls-refs, remembered while refs, config and request are the same. */
async function lsRefsAnswer(call: ServiceCall, state: SessionState, req: CommandRequest): Promise<Buffer> {
  const key = await requestKey(call.gitDir, state, req);
  const fp = await state();
  const known = key ? lsRefs.get(key, fp) : undefined;
  if (known) return known;
  const r = await runGit(call.gitDir, statelessArgs(call), { input: encodeCommand(req), env: gitEnv(call, null), maxOutput: 1 << 30 });
  if (key && fp !== null && r.stdout.length <= MAX_MEMO_ANSWER) lsRefs.set(key, fp, r.stdout);
  return r.stdout;
}

/** A clone's request: its pack is a function of the request and the refs alone. */
function isClone(req: CommandRequest): boolean {
  if (req.haves.received || !req.args.includes('done')) return false;
  return !req.args.some((a) => /^(shallow|deepen|deepen-since|deepen-not|deepen-relative)( |$)/.test(a));
}

function note(call: ServiceCall, r: CacheResult | null): void {
  if (r !== null && (call.served.cache === null || RANK[r] > RANK[call.served.cache])) call.served.cache = r;
}

/**
 * Clone requests being answered by upload-pack right now, to the pack cache key their run gets
 * (known within milliseconds of its start): an identical request waits for it and follows
 * that run, instead of starting an upload-pack of its own (a CI fleet's first wave).
 */
const pending = new Map<string, Promise<string | null>>();

async function fetchThroughCache(call: ServiceCall, state: SessionState, cache: PackCache, req: CommandRequest, writer: ResponseWriter): Promise<void> {
  const key = isClone(req) ? await requestKey(call.gitDir, state, req) : null;
  // No await between looking for a leader and becoming one: two identical requests must not both lead.
  const running = key && !answers.has(key) ? pending.get(key) : undefined;
  const known = key ? (answers.get(key) ?? (running ? await running : null)) : null;
  if (known && (await sendEntry(call, cache, req, writer, known))) return;
  const lease = cache.lease(call.gitDir);
  const leader = key !== null && !pending.has(key);
  if (leader) {
    pending.set(key, lease.firstKey);
    // Known as soon as the run starts: later identical requests follow it, they do not lead.
    void lease.firstKey.then((k) => {
      pending.delete(key);
      if (k) remember(key, k);
    });
  }
  try {
    await uploadPack(call, req, writer, lease);
    // One pack-objects run, taken by the cache: the same request can be answered from its entry.
    if (key && lease.keys.length === 1 && lease.result !== null && lease.result !== 'bypass') remember(key, lease.keys[0]!);
    else if (key && leader) answers.delete(key);
  } catch (e) {
    if (key && leader) answers.delete(key);
    throw e;
  } finally {
    note(call, lease.result);
    lease.release();
  }
}

function remember(requestKey: string, cacheKey: string): void {
  answers.delete(requestKey);
  answers.set(requestKey, cacheKey);
  if (answers.size > MAX_REMEMBERED) answers.delete(answers.keys().next().value!);
}

/** Runs a child that writes to the client itself, once what we wrote is out; resolves with its exit code. */
async function runOnSocket(call: ServiceCall, writer: ResponseWriter, start: () => GitProcess): Promise<{ code: number | null; stderr: string }> {
  if (writer.gone) throw new ClientGoneError();
  if (call.output.writableLength > 0) await once(call.output, 'drain');
  const child = start();
  call.onChild(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    if (stderr.length < 65536) stderr += c.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  call.onChild(null);
  return { code, stderr };
}

/**
 * Sends the entry of `entryKey` (complete, or followed as its run writes it) as the packfile
 * section, by the hook program on the socket. False, having sent nothing, when the cache no
 * longer has it (evicted, or the run failed): upload-pack answers instead.
 */
async function sendEntry(call: ServiceCall, cache: PackCache, req: CommandRequest, writer: ResponseWriter, entryKey: string): Promise<boolean> {
  const args = ['--v2-packfile', entryKey];
  if (req.args.includes('sideband-all')) args.push('--sideband-all');
  if (!req.args.includes('no-progress')) args.push('--progress', 'Sending a pack from the cache\n');
  const lease = cache.lease(call.gitDir);
  try {
    const r = await runOnSocket(call, writer, () => spawn(cache.hook, args, { stdio: ['ignore', call.stdout as never, 'pipe'], detached: true, env: { ...call.env, ...lease.env } }));
    if (r.code === 3) return false;
    if (r.code !== 0) throw new ServiceFailed(`sending the cached pack failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    call.log.info('pack-cache-v2', `fetch: answered from the pack cache (${lease.result === 'join' ? 'following its run' : 'a complete entry'}), without upload-pack`);
    return true;
  } finally {
    note(call, lease.result);
    lease.release();
  }
}

/** Hands one command to git upload-pack --stateless-rpc, which answers on the socket itself. */
async function uploadPack(call: ServiceCall, req: CommandRequest, writer: ResponseWriter, lease: Lease | null): Promise<void> {
  const args = statelessArgs(call);
  let fed: Promise<void> = Promise.resolve();
  const r = await runOnSocket(call, writer, () => {
    const child = spawnGit(call.gitDir, [...(lease?.gitArgs ?? []), ...args], gitEnv(call, lease), { stdout: call.stdout, detached: true });
    call.log.info('service', `Serving '${call.gitDir}' with git ${args.join(' ')} (pid ${child.pid})${lease ? ', packs through the pack cache' : ''}`, { service: call.service, gitDir: call.gitDir, args, servicePid: child.pid, packCache: !!lease });
    fed = feedRequest(child.stdin!, req);
    return child;
  });
  await fed;
  for (const line of r.stderr.split('\n')) if (line) call.log.error('service-stderr', line);
  // git has told the client why (ERR or a side-band error) before exiting non-zero.
  if (r.code !== 0) throw new ServiceFailed(`git upload-pack exited ${r.code}`);
}
