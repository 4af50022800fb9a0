// Protocol v2 commands (gitprotocol-v2): ls-refs and fetch, over a connection whose capability
// advertisement has been read. Every command is a request (command, capabilities, delim,
// arguments, flush) and a response ending in a flush.

import { DELIM, FLUSH, pktLine, pktText, type Pkt } from '../pktline.js';
import { ProtocolError, RemoteError } from '../errors.js';
import { AGENT, v2Features, type Capabilities } from './capabilities.js';
import { checkErr, checkRefName, MAX_REFS, SHALLOW_INFO, type RemoteRef, type Wire } from './wire.js';
import { BAND_DATA, BAND_ERROR, BAND_PROGRESS, sidebandData } from './sideband.js';
import { NegotiationState, type FetchRequest, type PackResponse } from './negotiation.js';
import { parsePackfileUri } from './packfile-uris.js';
import { OID_RE } from '../oid.js';

/** Bound on the lines of one non-pack response section. */
const MAX_SECTION_LINES = 1_000_000;

/**
 * Wires on which the fetch response comes with sideband-all: every line in band 1, progress
 * (band 2) anywhere, a fatal error in band 3. git 2.39's upload-pack sends packfile URIs only
 * then. Maps to where band-2 text goes.
 */
const sidebandAllWires = new WeakMap<Wire, (chunk: Buffer) => void>();

/** The next packet of a fetch response, out of its band when sideband-all is on. */
async function nextPkt(wire: Wire): Promise<Pkt> {
  const progress = sidebandAllWires.get(wire);
  for (;;) {
    const p = await wire.reader.expect();
    checkErr(p);
    if (!progress || p.kind !== 'data') return p;
    const band = p.data[0];
    if (band === BAND_DATA) {
      // An empty band-1 packet is a keepalive.
      if (p.data.length > 1) return { kind: 'data', data: p.data.subarray(1) };
    } else if (band === BAND_PROGRESS) progress(p.data.subarray(1));
    else if (band === BAND_ERROR) throw new RemoteError(p.data.subarray(1).toString('utf8').trim());
    else throw new ProtocolError(`unknown side-band ${band} in a sideband-all response`);
  }
}

function commandRequest(caps: Capabilities, command: string, args: string[]): Buffer {
  const head = [`command=${command}`];
  if (caps.has('agent')) head.push(`agent=${AGENT}`);
  if (caps.has('object-format')) head.push('object-format=sha1');
  return Buffer.concat([...head.map((l) => pktLine(l)), DELIM, ...args.map((a) => pktLine(a)), FLUSH]);
}

export interface LsRefsOptions {
  /** Only refs starting with one of these (the server may send more; we filter). */
  prefixes?: string[];
  symrefs?: boolean;
  peel?: boolean;
  /** Ask for HEAD even when it points to a branch with no commit yet (if the server can). */
  unborn?: boolean;
}

/** Runs ls-refs. */
export async function lsRefs(wire: Wire, caps: Capabilities, opts: LsRefsOptions = {}): Promise<RemoteRef[]> {
  if (!caps.has('ls-refs')) throw new ProtocolError('the server does not offer ls-refs');
  const args: string[] = [];
  if (opts.peel ?? true) args.push('peel');
  if (opts.symrefs ?? true) args.push('symrefs');
  if ((opts.unborn ?? true) && v2Features(caps, 'ls-refs').has('unborn')) args.push('unborn');
  for (const p of opts.prefixes ?? []) args.push(`ref-prefix ${p}`);
  await wire.send(commandRequest(caps, 'ls-refs', args));
  const refs: RemoteRef[] = [];
  for (;;) {
    const p = await wire.reader.expect();
    checkErr(p);
    if (p.kind === 'flush') break;
    if (p.kind !== 'data') throw new ProtocolError(`unexpected ${p.kind} packet in the ls-refs answer`);
    refs.push(parseRefLine(pktText(p)));
    if (refs.length > MAX_REFS) throw new ProtocolError(`the server listed more than ${MAX_REFS} refs`);
  }
  const prefixes = opts.prefixes;
  return prefixes?.length ? refs.filter((r) => prefixes.some((x) => r.name.startsWith(x))) : refs;
}

/** Bound on the lines of a bundle list. */
const MAX_BUNDLE_LIST_LINES = 100_000;

/** Runs bundle-uri (when the server offers it): the `key=value` lines of its bundle list. */
export async function bundleUri(wire: Wire, caps: Capabilities): Promise<string[]> {
  if (!caps.has('bundle-uri')) throw new ProtocolError('the server does not offer bundle-uri');
  await wire.send(commandRequest(caps, 'bundle-uri', []));
  const lines: string[] = [];
  for (;;) {
    const p = await wire.reader.expect();
    checkErr(p);
    if (p.kind === 'flush') return lines;
    if (p.kind !== 'data') throw new ProtocolError(`unexpected ${p.kind} packet in the bundle-uri answer`);
    if (lines.length >= MAX_BUNDLE_LIST_LINES) throw new ProtocolError(`bundle list of more than ${MAX_BUNDLE_LIST_LINES} lines`);
    lines.push(pktText(p));
  }
}

/** "<oid|unborn> <name> [symref-target:<t>] [peeled:<oid>]" */
function parseRefLine(line: string): RemoteRef {
  const parts = line.split(' ');
  const [id, name] = parts;
  if (!name || !(id === 'unborn' || OID_RE.test(id!))) throw new ProtocolError(`malformed ls-refs line ${JSON.stringify(line)}`);
  checkRefName(name);
  const ref: RemoteRef = { name, oid: id === 'unborn' ? null : id! };
  for (const attr of parts.slice(2)) {
    if (attr.startsWith('symref-target:')) ref.symref = attr.slice('symref-target:'.length);
    else if (attr.startsWith('peeled:') && OID_RE.test(attr.slice(7))) ref.peeled = attr.slice(7);
    // Unknown attributes are for future extensions: ignore them.
  }
  return ref;
}

/**
 * Runs fetch: negotiation rounds (haves in growing batches until the server is ready or the
 * rounds run out), then the response sections up to the pack, which the caller streams.
 */
export async function fetchPack(wire: Wire, caps: Capabilities, req: FetchRequest): Promise<PackResponse> {
  const features = v2Features(caps, 'fetch');
  if (!caps.has('fetch')) throw new ProtocolError('the server does not offer fetch');
  if ((req.depth || req.shallow?.length) && !features.has('shallow')) {
    throw new ProtocolError('the server does not support shallow repositories (no fetch=shallow)', 'clone without --depth');
  }
  const fixed: string[] = [];
  if (req.thinPack) fixed.push('thin-pack');
  if (!req.progress) fixed.push('no-progress');
  fixed.push('include-tag', 'ofs-delta');
  for (const s of req.shallow ?? []) fixed.push(`shallow ${s}`);
  if (req.depth) fixed.push(`deepen ${req.depth}`);
  const filtered = !!req.filter && features.has('filter');
  if (filtered) fixed.push(`filter ${req.filter}`);
  if (req.packfileUris?.length && features.has('packfile-uris')) {
    fixed.push(`packfile-uris ${req.packfileUris.join(',')}`);
    if (features.has('sideband-all')) {
      fixed.push('sideband-all');
      sidebandAllWires.set(wire, req.onProgress);
    }
  }
  for (const w of req.wants) fixed.push(`want ${w}`);

  const state = new NegotiationState();
  for (;;) {
    const batch = await state.nextBatch(req.haves);
    const done = batch.length === 0;
    const args = [...fixed, ...state.common.map((c) => `have ${c}`), ...batch.map((h) => `have ${h}`)];
    if (done) args.push('done');
    await wire.send(commandRequest(caps, 'fetch', args));
    let header = await sectionHeader(wire);
    if (header === 'acknowledgments') {
      if (done) throw new ProtocolError('the server sent acknowledgments after "done"');
      const { ready, end } = await readAcknowledgments(wire, state, req);
      if (!ready) {
        if (end !== 'flush') throw new ProtocolError('acknowledgments without "ready" must end with a flush');
        continue;
      }
      if (end !== 'delim') throw new ProtocolError('"ready" must be followed by the pack sections');
      header = await sectionHeader(wire);
    }
    return readPackSections(wire, header, req, state, filtered);
  }
}

async function sectionHeader(wire: Wire): Promise<string> {
  const p = await nextPkt(wire);
  if (p.kind !== 'data') throw new ProtocolError(`expected a section header, got a ${p.kind} packet`);
  return pktText(p);
}

async function readAcknowledgments(wire: Wire, state: NegotiationState, req: FetchRequest): Promise<{ ready: boolean; end: 'flush' | 'delim' }> {
  let ready = false;
  for (let n = 0; ; n++) {
    if (n > MAX_SECTION_LINES) throw new ProtocolError('the acknowledgments section does not end');
    const p = await nextPkt(wire);
    if (p.kind === 'flush' || p.kind === 'delim') return { ready, end: p.kind };
    if (p.kind !== 'data') throw new ProtocolError(`unexpected ${p.kind} packet in acknowledgments`);
    const line = pktText(p);
    if (line === 'NAK') continue;
    if (line === 'ready') ready = true;
    else if (line.startsWith('ACK ') && OID_RE.test(line.slice(4))) state.acked(line.slice(4), req.haves);
    else throw new ProtocolError(`unexpected line in acknowledgments: ${JSON.stringify(line)}`);
  }
}

async function readPackSections(wire: Wire, first: string, req: FetchRequest, state: NegotiationState, filtered: boolean): Promise<PackResponse> {
  const res: Omit<PackResponse, 'pack'> = { shallow: [], unshallow: [], packfileUris: [], common: state.common, filtered };
  let header = first;
  for (;;) {
    if (header === 'packfile') {
      // The pack stream is band-framed either way.
      sidebandAllWires.delete(wire);
      return { ...res, pack: sidebandData(wire.reader, req.onProgress) };
    }
    const lines = await sectionLines(wire, header);
    for (const line of lines) {
      if (header === 'shallow-info') {
        const m = SHALLOW_INFO.exec(line);
        if (!m) throw new ProtocolError(`malformed shallow-info line ${JSON.stringify(line)}`);
        (m[1] === 'shallow' ? res.shallow : res.unshallow).push(m[2]!);
      } else if (header === 'packfile-uris') {
        res.packfileUris.push(parsePackfileUri(line));
      }
      // wanted-refs: we never send want-ref, so there is nothing to take from it.
    }
    header = await sectionHeader(wire);
  }
}

/** The lines of a section up to its delim (sections before the pack all end in one). */
async function sectionLines(wire: Wire, header: string): Promise<string[]> {
  if (!['shallow-info', 'wanted-refs', 'packfile-uris'].includes(header)) {
    throw new ProtocolError(`unexpected section ${JSON.stringify(header)} in the fetch response`);
  }
  const lines: string[] = [];
  for (;;) {
    const p: Pkt = await nextPkt(wire);
    if (p.kind === 'delim') return lines;
    if (p.kind !== 'data') throw new ProtocolError(`section ${header} ended with a ${p.kind} packet instead of a delim`);
    lines.push(pktText(p));
    if (lines.length > MAX_SECTION_LINES) throw new ProtocolError(`section ${header} does not end`);
  }
}

/** Ends a session: in v2 a flush where the next command would start; in v0 before any want. */
export async function endSession(wire: Wire): Promise<void> {
  await wire.send(FLUSH);
}
