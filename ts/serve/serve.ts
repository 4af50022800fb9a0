// The protocol v2 server for an offloaded repository (gitprotocol-v2), in process: the
// capability advertisement (with packfile-uris), then commands until the client ends the
// session: ls-refs, answered from the repository's refs, and fetch (./fetch.ts). This replaces
// `git upload-pack` only for v2 requests to repositories where `mpgit offload` was run; the
// daemon keeps git upload-pack for everything else.

import type { Readable, Writable } from 'node:stream';
import { PktReader, pktText } from '../pktline.js';
import { ClientGoneError, MpgitError, ProtocolError } from '../errors.js';
import { encodeV2Advertisement } from '../protocol/capabilities.js';
import { liveBundles, livePacks, loadStateCached, type OffloadState } from '../offload/state.js';
import { bundleListLines } from '../offload/bundles.js';
import { configBool, hiddenPatterns, listServerRefs } from '../repo/server-refs.js';
import { BadRequestError, handleFetch, parseFetchArgs } from './fetch.js';
import type { CommandRequest } from './command.js';
import { HaveList } from './haves.js';
import { ResponseWriter } from './response.js';

/** Bound on the argument lines of one command request other than haves (wants of a big mirror fit). */
const MAX_ARG_LINES = 256 * 1024;
/** Bound on the bytes of one command request (haves past their own bound are read and dropped). */
const MAX_REQUEST_BYTES = 256 * 1024 * 1024;
/** Longest wait for the client's next command (git daemon's --timeout plays this role). */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;

export interface ServeV2Options {
  gitDir: string;
  input: Readable;
  output: Writable;
  /** Bytes of the client that were read before we took over (normally none). */
  initial?: Buffer;
  /** The offload state (read from the repository when not given). */
  state?: OffloadState | null;
  idleTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface SessionStats {
  commands: number;
  fetches: number;
  packfileUris: number;
  /** Bundle lists sent (`bundle-uri` commands answered). */
  bundleLists: number;
  bytesOut: number;
}

/** Whether a packet is a `have` line (by its bytes: no string is made for the million-line case). */
function isHave(data: Buffer): boolean {
  return data.length >= 5 && data[0] === 0x68 && data[1] === 0x61 && data[2] === 0x76 && data[3] === 0x65 && data[4] === 0x20;
}

/**
 * Reads one command request; null when the client ends the session (flush or hang-up).
 * Memory: a string per argument line, 20 bytes per have; the request itself is not kept.
 */
export async function readCommand(reader: PktReader): Promise<CommandRequest | null> {
  let packets = 0;
  let bytes = 0;
  const capabilities: string[] = [];
  const args: string[] = [];
  const haves = new HaveList();
  let inArgs = false;
  let fetch = false;
  try {
    for (;;) {
      const p = reader.readBuffered() ?? (await reader.read());
      if (!p) {
        if (!packets) return null;
        throw new ProtocolError('the client hung up in the middle of a command');
      }
      packets++;
      if (p.kind === 'data') {
        bytes += p.data.length + 4;
        if (bytes > MAX_REQUEST_BYTES) throw new BadRequestError(`request of more than ${MAX_REQUEST_BYTES} bytes`);
        if (fetch && inArgs && isHave(p.data)) {
          const end = p.data[p.data.length - 1] === 0x0a ? p.data.length - 1 : p.data.length;
          if (!haves.add(p.data.subarray(5, end))) throw new BadRequestError(`upload-pack: protocol error, expected to get object ID, not '${pktText(p)}'`);
          const wait = haves.turn();
          if (wait) await wait;
          continue;
        }
        const line = pktText(p);
        if (!inArgs) {
          capabilities.push(line);
          if (line === 'command=fetch') fetch = true;
        } else {
          args.push(line);
          if (args.length > MAX_ARG_LINES) throw new BadRequestError(`request of more than ${MAX_ARG_LINES} argument lines`);
        }
        continue;
      }
      if (p.kind === 'delim') {
        if (inArgs) throw new BadRequestError('second delim in a command request');
        inArgs = true;
        continue;
      }
      if (p.kind === 'flush') {
        if (packets === 1) return null;
        break;
      }
      throw new BadRequestError(`unexpected ${p.kind} packet in a command request`);
    }
  } catch (e) {
    haves.release();
    throw e;
  }
  const commandLines = capabilities.filter((c) => c.startsWith('command='));
  if (commandLines.length !== 1 || !commandLines[0]!.slice('command='.length)) {
    haves.release();
    throw new BadRequestError(commandLines.length ? 'more than one command in a request' : 'no command in the request');
  }
  for (const c of capabilities) {
    if (c.startsWith('object-format=') && c !== 'object-format=sha1') {
      haves.release();
      throw new BadRequestError(`mismatched object format: ${c.slice(14)}; this server uses sha1`);
    }
  }
  return { command: commandLines[0]!.slice('command='.length), capabilities, args, haves };
}

/** The fetch features this server offers (packfile-uris only with something to name). */
function fetchFeatures(state: OffloadState | null, allowFilter: boolean): string[] {
  const f = ['shallow', 'wait-for-done', 'sideband-all'];
  // Filtered fetches (partial clones) are git upload-pack's to answer, when the repository allows them.
  if (allowFilter) f.push('filter');
  if (state && livePacks(state).length) f.push('packfile-uris');
  return f;
}

/** Serves a whole v2 session. Resolves when the client ends it; errors are sent as ERR first. */
export async function serveV2(opts: ServeV2Options): Promise<SessionStats> {
  const log = opts.log ?? (() => {});
  const state = opts.state === undefined ? await loadStateCached(opts.gitDir) : opts.state;
  const writer = new ResponseWriter(opts.output);
  if (opts.initial?.length) opts.input.unshift(opts.initial);
  const reader = new PktReader(opts.input, { timeoutMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, what: 'the client' });
  const stats: SessionStats = { commands: 0, fetches: 0, packfileUris: 0, bundleLists: 0, bytesOut: 0 };
  let hiddenMemo: Promise<string[]> | null = null;
  const hidden = () => (hiddenMemo ??= hiddenPatterns(opts.gitDir));
  try {
    const allowFilter = await configBool(opts.gitDir, 'uploadpack.allowFilter');
    const bundleUri = !!state && liveBundles(state).length > 0;
    await writer.write(encodeV2Advertisement({ lsRefs: ['unborn'], fetch: fetchFeatures(state, allowFilter), serverOption: true, bundleUri }));
    for (;;) {
      const req = await readCommand(reader);
      if (!req) break;
      stats.commands++;
      // Each command sees the offload state as it is now (a refresh applies at once).
      const current = opts.state === undefined ? await loadStateCached(opts.gitDir) : state;
      writer.sidebandAll = false;
      if (req.command === 'ls-refs') await lsRefs(opts.gitDir, req.args, writer, await hidden());
      else if (req.command === 'fetch') {
        try {
          const out = await handleFetch({ gitDir: opts.gitDir, state: current, writer, request: req, log, hidden }, parseFetchArgs(req.args, req.haves));
          if (out.sentPack) stats.fetches++;
          stats.packfileUris += out.uris.length;
        } finally {
          req.haves.release();
        }
      } else if (req.command === 'bundle-uri' && bundleUri) {
        // git's bundle-uri command takes no arguments; the list is as it is now.
        if (req.args.length) throw new BadRequestError(`bundle-uri: unexpected argument: '${req.args[0]!}'`);
        await writer.lines(current ? bundleListLines(current) : []);
        await writer.flush();
        stats.bundleLists++;
      } else throw new BadRequestError(`invalid command '${req.command}'`);
    }
  } catch (e) {
    if (e instanceof ClientGoneError) {
      log('client hung up');
    } else {
      log(`error: ${(e as Error).message}`);
      // A request we refuse, or our own failure: the client hears why before we hang up.
      if (!writer.gone && (e instanceof BadRequestError || e instanceof MpgitError)) await writer.err(e instanceof BadRequestError ? e.message : `mpgit: ${e.message}`).catch(() => {});
      if (!(e instanceof BadRequestError || e instanceof ProtocolError)) throw e;
    }
  } finally {
    stats.bytesOut = writer.bytesOut;
  }
  return stats;
}

/** ls-refs (gitprotocol-v2 "ls-refs"): symrefs, peel, ref-prefix, unborn. */
async function lsRefs(gitDir: string, args: string[], writer: ResponseWriter, hidden: string[]): Promise<void> {
  let symrefs = false;
  let peel = false;
  let unborn = false;
  const prefixes: string[] = [];
  for (const line of args) {
    if (line === 'symrefs') symrefs = true;
    else if (line === 'peel') peel = true;
    else if (line === 'unborn') unborn = true;
    else if (line.startsWith('ref-prefix ')) prefixes.push(line.slice('ref-prefix '.length));
    else throw new BadRequestError(`unexpected line: '${line}'`);
  }
  const lines: string[] = [];
  for (const r of await listServerRefs(gitDir, hidden)) {
    if (prefixes.length && !prefixes.some((x) => r.name.startsWith(x))) continue;
    if (r.oid === null && !unborn) continue;
    let line = `${r.oid ?? 'unborn'} ${r.name}`;
    if (symrefs && r.symref) line += ` symref-target:${r.symref}`;
    if (peel && r.peeled) line += ` peeled:${r.peeled}`;
    lines.push(line);
  }
  await writer.lines(lines);
  await writer.flush();
}
