// The v2 `fetch` command for an offloaded repository (gitprotocol-v2 "fetch"): arguments,
// negotiation (acknowledgments, ready), then the response sections and the pack made by
// `git pack-objects`, with a packfile-uris section naming published packs when the client
// asked for them. Shallow requests (shallow/deepen*) go to `git upload-pack --stateless-rpc`
// whole: they get a complete, plain answer.

import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { FLUSH } from '../pktline.js';
import { MAX_HAVES, TOTAL_HAVES, type HaveList } from './haves.js';
import { encodeCommandHead, encodeHaves, type CommandRequest } from './command.js';
import { ProtocolError } from '../errors.js';
import { GitCommandError, objectTypes, runGit, spawnGit } from '../git.js';
import { isOid } from '../oid.js';
import { planFetch } from '../offload/plan.js';
import { listServerRefs, refTips } from '../repo/server-refs.js';
import type { OffloadState } from '../offload/state.js';
import { cacheLookup, CacheWriter, cloneKey, seededCloneKey, type CacheHit } from '../offload/cache.js';
import { PackObjects } from '../offload/pack-objects.js';
import { createReadStream } from 'node:fs';
import { humanBytes } from '../progress.js';
import type { ResponseWriter } from './response.js';
import { encodePackfileUri, type PackfileUri } from '../protocol/packfile-uris.js';
import { idsKey, OidMemo } from '../offload/oid-memo.js';

/** Silence on the pack stream after which an empty band-1 packet tells the client we are alive. */
const KEEPALIVE_MS = 5000;
/** Bound on the commits listed when deciding "ready" (past it, the client negotiates on). */
const MAX_READY_WALK_BYTES = 64 * 1024 * 1024;

export interface FetchArgs {
  wants: string[];
  /** The have lines, kept in bounded memory (released by the session after the answer). */
  haves: HaveList;
  done: boolean;
  thin: boolean;
  ofsDelta: boolean;
  noProgress: boolean;
  includeTag: boolean;
  sidebandAll: boolean;
  waitForDone: boolean;
  /** Schemes of `packfile-uris`, null when not sent. */
  packfileUris: string[] | null;
  /** Any shallow/deepen (or filter) argument: the request is answered by git upload-pack. */
  shallow: boolean;
  /** A filter argument (partial clone). */
  filtered: boolean;
}

/** A request the client should not have sent: an ERR packet says why. */
export class BadRequestError extends ProtocolError {
  constructor(message: string) {
    super(message, 'the client sent a fetch request this server does not accept');
    this.name = 'BadRequestError';
  }
}

/** A fetch's arguments (lines without their newline); the haves come apart, already read. */
export function parseFetchArgs(args: string[], haves: HaveList): FetchArgs {
  const wants = new Set<string>();
  const a: FetchArgs = {
    wants: [],
    haves,
    done: false,
    thin: false,
    ofsDelta: false,
    noProgress: false,
    includeTag: false,
    sidebandAll: false,
    waitForDone: false,
    packfileUris: null,
    shallow: false,
    filtered: false,
  };
  for (const line of args) {
    const sp = line.indexOf(' ');
    const word = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    switch (word) {
      case 'want':
        if (!isOid(rest)) throw new BadRequestError(`upload-pack: protocol error, expected to get object ID, not '${line}'`);
        wants.add(rest);
        break;
      case 'done':
        a.done = true;
        break;
      case 'thin-pack':
        a.thin = true;
        break;
      case 'ofs-delta':
        a.ofsDelta = true;
        break;
      case 'no-progress':
        a.noProgress = true;
        break;
      case 'include-tag':
        a.includeTag = true;
        break;
      case 'sideband-all':
        a.sidebandAll = true;
        break;
      case 'wait-for-done':
        a.waitForDone = true;
        break;
      case 'packfile-uris':
        a.packfileUris = rest.split(',').filter(Boolean);
        break;
      case 'filter':
        // A partial clone's filter: git upload-pack applies it (and checks uploadpack.allowFilter).
        a.shallow = true;
        a.filtered = true;
        break;
      case 'shallow':
      case 'deepen':
      case 'deepen-since':
      case 'deepen-not':
      case 'deepen-relative':
        a.shallow = true;
        break;
      default:
        throw new BadRequestError(`unexpected line: '${line}'`);
    }
  }
  a.wants = [...wants];
  return a;
}

export interface FetchContext {
  gitDir: string;
  state: OffloadState | null;
  writer: ResponseWriter;
  /** The request (for handing it to git upload-pack). */
  request: CommandRequest;
  log: (msg: string) => void;
  /** uploadpack/transfer.hideRefs, read once per session. */
  hidden: () => Promise<string[]>;
}

export interface FetchOutcome {
  /** A pack was sent (the client will end the session), or only acknowledgments. */
  sentPack: boolean;
  uris: PackfileUri[];
}

/** Answers one fetch command. */
export async function handleFetch(ctx: FetchContext, args: FetchArgs): Promise<FetchOutcome> {
  const { gitDir, writer } = ctx;
  if (args.shallow) {
    await delegate(ctx, args.filtered ? 'filtered' : 'shallow');
    return { sentPack: true, uris: [] };
  }
  if (!args.wants.length && !args.waitForDone) throw new BadRequestError('fetch without any want');
  // Ref tips exist; anything else is asked of git (a clone wants only tips: no git call).
  const tips = await refTips(gitDir);
  const known = await objectTypes(gitDir, args.wants.filter((o) => !tips.has(o)));
  for (const w of args.wants) if (!tips.has(w) && !known.has(w)) throw new BadRequestError(`upload-pack: not our ref ${w}`);
  await checkWantsVisible(gitDir, args.wants, await ctx.hidden());
  // As git's upload-pack: of the haves, only those the repository has matter.
  const common = args.haves.common(gitDir, tips);
  if (args.haves.ignored) ctx.log(`fetch: ${args.haves.ignored} of ${args.haves.received} haves ignored (at most ${MAX_HAVES} per request, ${TOTAL_HAVES} in all): the pack may hold objects the client has`);
  writer.sidebandAll = args.sidebandAll;

  if (args.haves.received && !args.done) {
    const ready = !args.waitForDone && (await okToGiveUp(gitDir, args.wants, common));
    await writer.lines(['acknowledgments', ...(common.length ? common.map((c) => `ACK ${c}`) : ['NAK']), ...(ready ? ['ready'] : [])]);
    if (!ready) {
      await writer.flush();
      return { sentPack: false, uris: [] };
    }
    await writer.delim();
  }
  if (!args.wants.length) {
    // wait-for-done with only haves (negotiation-only fetch): nothing more to send.
    await writer.flush();
    return { sentPack: false, uris: [] };
  }
  const uris = await sendPack(ctx, args, common);
  return { sentPack: true, uris };
}

/** With hidden refs configured, every want must be reachable from a visible ref. */
async function checkWantsVisible(gitDir: string, wants: string[], hidden: string[]): Promise<void> {
  if (!hidden.length) return;
  const refs = await listServerRefs(gitDir, hidden);
  const tips = new Set<string>();
  for (const r of refs) {
    if (r.oid) tips.add(r.oid);
    if (r.peeled) tips.add(r.peeled);
  }
  const rest = wants.filter((w) => !tips.has(w));
  if (!rest.length) return;
  const input = [...rest, ...[...tips].map((t) => `^${t}`)].join('\n') + '\n';
  // A want listed here is reachable from no visible ref: it is hidden.
  const r = await runGit(gitDir, ['rev-list', '--objects', '--stdin'], { input, maxOutput: 1 << 30 });
  const listed = new Set(r.stdout.toString().split('\n').map((l) => l.slice(0, 40)));
  const unreachable = rest.find((w) => listed.has(w));
  if (unreachable) throw new BadRequestError(`upload-pack: not our ref ${unreachable}`);
}

/**
 * git's ok_to_give_up: every wanted commit has a common commit among its ancestors, so the
 * client has sent enough. Wants the client already has count as covered.
 */
export async function okToGiveUp(gitDir: string, wants: string[], common: string[]): Promise<boolean> {
  if (!common.length) return false;
  // Ancestry between given ids never changes: every clone seeded by the same bundles asks alike.
  return readyMemo.get(idsKey(gitDir, wants, common), () => walkReady(gitDir, wants, common));
}

const readyMemo = new OidMemo<boolean>();

async function walkReady(gitDir: string, wants: string[], common: string[]): Promise<boolean> {
  const peeled = await runGit(gitDir, ['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input: wants.map((w) => `${w}^{commit}`).join('\n') + '\n' });
  const commits = peeled.stdout
    .toString()
    .split('\n')
    .map((l) => l.split(' '))
    .filter((p) => p[1] === 'commit')
    .map((p) => p[0]!);
  if (!commits.length) return true;
  const input = [...commits, ...common.map((c) => `^${c}`)].join('\n') + '\n';
  try {
    const lacking = new Set((await runGit(gitDir, ['rev-list', '--stdin'], { input, maxOutput: MAX_READY_WALK_BYTES })).stdout.toString().split('\n'));
    const pending = commits.filter((c) => lacking.has(c));
    if (!pending.length) return true;
    const onPath = new Set((await runGit(gitDir, ['rev-list', '--ancestry-path', '--stdin'], { input, maxOutput: MAX_READY_WALK_BYTES })).stdout.toString().split('\n'));
    return pending.every((c) => onPath.has(c));
  } catch (e) {
    if (e instanceof GitCommandError && /output over/.test(e.message)) return false;
    throw e;
  }
}

/** The packfile-uris section (when there are URIs), then the packfile section. */
async function sendPack(ctx: FetchContext, args: FetchArgs, common: string[]): Promise<PackfileUri[]> {
  const { gitDir, writer } = ctx;
  // A clone (no haves, or only bundle tips) is a common request: its answer is cached.
  const req = { wants: args.wants, ofsDelta: args.ofsDelta, includeTag: args.includeTag, protocols: args.packfileUris, thin: args.thin };
  const key = common.length ? await seededCloneKey(gitDir, ctx.state, req, common) : await cloneKey(gitDir, ctx.state, req);
  const hit = key ? await cacheLookup(gitDir, key) : null;
  if (hit) return sendCached(ctx, args, hit);
  const plan = await planFetch({ gitDir, state: ctx.state, wants: args.wants, common, protocols: args.packfileUris, thin: args.thin });
  let header = false;
  let lastWrite = Date.now();
  const pack: PackObjects = new PackObjects(gitDir, {
    ofsDelta: args.ofsDelta,
    includeTag: args.includeTag,
    progress: !args.noProgress,
    onStderr: (chunk) => {
      // Before the "packfile" line only sideband-all lets progress through.
      if (!args.noProgress && (header || args.sidebandAll) && !writer.gone) {
        lastWrite = Date.now();
        writer.progress(chunk).catch(() => pack.kill());
      }
    },
  });
  let keepalive: NodeJS.Timeout | null = null;
  let cache: CacheWriter | null = null;
  let cached = false;
  try {
    const uris = await plan.run(pack.start);
    cache = key ? await CacheWriter.start(gitDir, key) : null;
    if (!pack.started) throw new Error('pack-objects was not started');
    if (uris.length) {
      await writer.lines(['packfile-uris', ...uris.map(encodePackfileUri)]);
      await writer.delim();
    }
    await writer.line('packfile');
    header = true;
    keepalive = setInterval(() => {
      if (Date.now() - lastWrite >= KEEPALIVE_MS) {
        lastWrite = Date.now();
        writer.keepalive().catch(() => pack.kill());
      }
    }, KEEPALIVE_MS / 2);
    let bytes = 0;
    for await (const chunk of pack.chunks()) {
      bytes += chunk.length;
      lastWrite = Date.now();
      await Promise.all([writer.packData(chunk), cache?.write(chunk)]);
    }
    try {
      await pack.finish();
    } catch (e) {
      ctx.log(`pack-objects failed: ${pack.stderr}`);
      await writer.fatal('aborting due to possible repository corruption on the remote side.').catch(() => {});
      throw e;
    }
    await writer.flush();
    await cache?.commit(uris, plan.describe);
    cached = true;
    ctx.log(`fetch: ${plan.describe}; ${uris.length} packfile URI${uris.length === 1 ? '' : 's'}, inline pack ${bytes} bytes`);
    return uris;
  } finally {
    if (!cached) await cache?.abort();
    if (keepalive) clearInterval(keepalive);
    pack.kill();
  }
}

/** Answers from the cache: the same sections and pack as the first time, without pack-objects. */
async function sendCached(ctx: FetchContext, args: FetchArgs, hit: CacheHit): Promise<PackfileUri[]> {
  const { writer } = ctx;
  if (hit.uris.length) {
    await writer.lines(['packfile-uris', ...hit.uris.map((u) => `${u.hash} ${u.uri}`)]);
    await writer.delim();
  }
  await writer.line('packfile');
  if (!args.noProgress) await writer.progress(`Reusing a cached pack of ${humanBytes(hit.size)}\n`);
  for await (const chunk of createReadStream(hit.packPath, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) await writer.packData(chunk);
  await writer.flush();
  ctx.log(`fetch: cached answer (${hit.describe}); ${hit.uris.length} packfile URI${hit.uris.length === 1 ? '' : 's'}, inline pack ${hit.size} bytes`);
  return hit.uris;
}

/**
 * Writes a command request to git upload-pack --stateless-rpc's stdin as the client sent it
 * (haves streamed from their bounded store), then ends it.
 */
export async function feedRequest(stdin: Writable, req: CommandRequest): Promise<void> {
  stdin.on('error', () => {}); // upload-pack may exit before reading everything
  const put = async (b: Buffer) => {
    if (!stdin.destroyed && !stdin.write(b)) await Promise.race([once(stdin, 'drain'), once(stdin, 'close')]);
  };
  await put(encodeCommandHead(req));
  for (const batch of req.haves.batches()) await put(encodeHaves(batch));
  stdin.end(FLUSH);
}

/** Hands the request to `git upload-pack --stateless-rpc` (haves streamed) and relays its answer. */
async function delegate(ctx: FetchContext, what: 'shallow' | 'filtered'): Promise<void> {
  const req = ctx.request;
  const child = spawnGit(ctx.gitDir, ['-c', 'uploadpack.allowsidebandall=true', 'upload-pack', '--stateless-rpc', '.'], { GIT_PROTOCOL: 'version=2' });
  let errText = '';
  child.stderr!.on('data', (c: Buffer) => errText.length < 65536 && (errText += c.toString()));
  const feed = feedRequest(child.stdin!, req);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) await ctx.writer.write(chunk);
    await feed;
    const code = await exited;
    if (code !== 0) throw new GitCommandError(['upload-pack', '--stateless-rpc'], errText.trim() || `exit ${code}`);
    ctx.log(`fetch: ${what} request answered by git upload-pack`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
