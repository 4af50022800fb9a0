// Capabilities, both protocol versions, both sides (gitprotocol-capabilities, gitprotocol-v2).
// v0: the list after the NUL of the first advertised ref, and the list a client appends to its
// first want. v2: the advertisement ("version 2", then one capability per line) a server sends
// first and a client reads before its commands.

import { FLUSH, pktLine, pktText, type Pkt } from '../pktline.js';
import { ProtocolError } from '../errors.js';

/** Our agent string (informative only: peers must not key features on it). */
export const AGENT = `mpgit/${process.env.npm_package_version ?? '0.1.0'}`;

/** Capabilities as name -> value (`true` for a bare name). */
export type Capabilities = Map<string, string | true>;

/**
 * Parses a v0 capability list ("multi_ack side-band-64k agent=git/2.39"). As git's
 * parse_feature_value, a value ends at a space, tab or newline.
 */
export function parseV0Capabilities(text: string): Capabilities {
  const caps: Capabilities = new Map();
  for (const word of text.split(/[ \t\n]/)) {
    if (!word) continue;
    const eq = word.indexOf('=');
    if (eq < 0) caps.set(word, true);
    // symref may repeat (one per symbolic ref): keep them all, space-separated.
    else {
      const name = word.slice(0, eq);
      const value = word.slice(eq + 1);
      const prev = caps.get(name);
      caps.set(name, typeof prev === 'string' && name === 'symref' ? `${prev} ${value}` : value);
    }
  }
  return caps;
}

/** The symref=HEAD:refs/heads/x pairs of a v0 advertisement. */
export function v0Symrefs(caps: Capabilities): Map<string, string> {
  const out = new Map<string, string>();
  const v = caps.get('symref');
  if (typeof v !== 'string') return out;
  for (const pair of v.split(' ')) {
    const colon = pair.indexOf(':');
    if (colon > 0) out.set(pair.slice(0, colon), pair.slice(colon + 1));
  }
  return out;
}


/**
 * The capabilities a v0 client puts on its first want line, given what the server offers:
 * the ones we implement, in the order git sends them.
 */
export function v0ClientCapabilities(server: Capabilities, opts: { progress: boolean; thinPack: boolean; depth: boolean; filter?: boolean }): string[] {
  const want: string[] = [];
  const offer = (name: string) => server.has(name);
  if (offer('multi_ack_detailed')) want.push('multi_ack_detailed');
  if (offer('side-band-64k')) want.push('side-band-64k');
  else if (offer('side-band')) want.push('side-band');
  if (opts.thinPack && offer('thin-pack')) want.push('thin-pack');
  if (!opts.progress && offer('no-progress')) want.push('no-progress');
  if (offer('include-tag')) want.push('include-tag');
  if (offer('ofs-delta')) want.push('ofs-delta');
  if (opts.depth && !offer('shallow')) throw new ProtocolError('the server does not support shallow clones (no "shallow" capability)', 'clone without --depth');
  if (offer('shallow')) want.push('shallow');
  if (opts.filter && offer('filter')) want.push('filter');
  if (offer('agent')) want.push(`agent=${AGENT}`);
  return want;
}

/** The v2 capability advertisement a server reads to the client. */
export interface V2Advertisement {
  /** `ls-refs` features, e.g. ["unborn"]. */
  lsRefs: string[];
  /** `fetch` features, e.g. ["shallow", "wait-for-done", "packfile-uris"]. */
  fetch: string[];
  serverOption?: boolean;
  objectInfo?: boolean;
  /** The `bundle-uri` command (a bundle list to seed clones with). */
  bundleUri?: boolean;
}

/** Encodes a v2 advertisement: "version 2", agent, commands with their features, flush. */
export function encodeV2Advertisement(a: V2Advertisement): Buffer {
  const lines = ['version 2', `agent=${AGENT}`];
  lines.push(a.lsRefs.length ? `ls-refs=${a.lsRefs.join(' ')}` : 'ls-refs');
  lines.push(a.fetch.length ? `fetch=${a.fetch.join(' ')}` : 'fetch');
  if (a.serverOption) lines.push('server-option');
  lines.push('object-format=sha1');
  if (a.objectInfo) lines.push('object-info');
  if (a.bundleUri) lines.push('bundle-uri');
  return Buffer.concat([...lines.map((l) => pktLine(l)), FLUSH]);
}

/** Bound on the lines of a v2 advertisement (git sends about ten). */
const MAX_V2_CAPABILITY_LINES = 1000;

/**
 * Parses the capability lines of a v2 advertisement (everything after "version 2", up to and
 * excluding the flush).
 */
export function parseV2Advertisement(pkts: Pkt[]): Capabilities {
  if (pkts.length > MAX_V2_CAPABILITY_LINES) throw new ProtocolError(`v2 capability advertisement of ${pkts.length} lines is too long`);
  const caps: Capabilities = new Map();
  for (const p of pkts) {
    if (p.kind !== 'data') throw new ProtocolError(`unexpected ${p.kind} packet in the v2 capability advertisement`);
    const line = pktText(p);
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (!/^[A-Za-z0-9_-]+$/.test(key)) throw new ProtocolError(`malformed v2 capability ${JSON.stringify(line)}`);
    caps.set(key, eq < 0 ? true : line.slice(eq + 1));
  }
  return caps;
}

/** The features of a v2 command ("fetch=shallow wait-for-done" -> {shallow, wait-for-done}). */
export function v2Features(caps: Capabilities, command: string): Set<string> {
  const v = caps.get(command);
  return new Set(typeof v === 'string' ? v.split(' ').filter(Boolean) : []);
}

/** The object format a server speaks; only SHA-1 is supported. */
export function checkObjectFormat(caps: Capabilities): void {
  const f = caps.get('object-format');
  if (typeof f === 'string' && f !== 'sha1') {
    throw new ProtocolError(`the server uses object format ${f}; mpgit supports sha1 only`, 'clone this repository with stock git');
  }
}
