// Protocol v0 (gitprotocol-pack), for servers that answer our version=2 request the old way:
// the ref advertisement, then want/shallow/deepen lines, multi_ack_detailed negotiation in
// flush-separated rounds, "done", and the pack (side-band-64k when offered, raw otherwise).

import { FLUSH, pktLine, pktText, type Pkt, type PktReader } from '../pktline.js';
import { ProtocolError } from '../errors.js';
import { parseV0Capabilities, v0ClientCapabilities, v0Symrefs, type Capabilities } from './capabilities.js';
import { checkErr, checkRefName, MAX_REFS, refnameFormatOk, SHALLOW_INFO, type RemoteRef, type Wire } from './wire.js';
import { rawData, sidebandData } from './sideband.js';
import { NegotiationState, type FetchRequest, type PackResponse } from './negotiation.js';
import { OID_PATTERN, OID_RE, ZERO_OID } from '../oid.js';

const REF_LINE = new RegExp(`^(${OID_PATTERN}) (.+)$`);
const ACK_STATUS = new RegExp(`^ACK (${OID_PATTERN}) (common|ready)$`);
const ACK_FINAL = new RegExp(`^ACK ${OID_PATTERN}$`);

export interface V0Advertisement {
  refs: RemoteRef[];
  caps: Capabilities;
  /** Commits the server's own repository is shallow at. */
  shallow: string[];
}

/** Parses a v0 ref advertisement whose first packet has been read already. */
export async function parseV0Advertisement(first: Pkt, reader: PktReader): Promise<V0Advertisement> {
  const adv: V0Advertisement = { refs: [], caps: new Map(), shallow: [] };
  let p: Pkt = first;
  let isFirst = true;
  for (;;) {
    checkErr(p);
    if (p.kind === 'flush') break;
    if (p.kind !== 'data') throw new ProtocolError(`unexpected ${p.kind} packet in the ref advertisement`);
    let line = pktText(p);
    if (isFirst) {
      const nul = line.indexOf('\0');
      if (nul >= 0) {
        adv.caps = parseV0Capabilities(line.slice(nul + 1));
        line = line.slice(0, nul);
      }
      isFirst = false;
    }
    if (line.startsWith('shallow ')) {
      const oid = line.slice(8);
      if (!OID_RE.test(oid)) throw new ProtocolError(`malformed shallow line ${JSON.stringify(line)}`);
      adv.shallow.push(oid);
    } else {
      const m = REF_LINE.exec(line);
      if (!m) throw new ProtocolError(`malformed ref advertisement line ${JSON.stringify(line)}`);
      const [, oid, name] = m as unknown as [string, string, string];
      if (oid === ZERO_OID && name === 'capabilities^{}') {
        // An empty repository: no refs, only the capabilities.
      } else if (name.endsWith('^{}')) {
        const base = adv.refs[adv.refs.length - 1];
        if (!base || base.name !== name.slice(0, -3)) throw new ProtocolError(`peeled line for ${name} does not follow its ref`);
        base.peeled = oid;
      } else {
        checkRefName(name);
        adv.refs.push({ name, oid });
      }
    }
    if (adv.refs.length > MAX_REFS) throw new ProtocolError(`the server advertised more than ${MAX_REFS} refs`);
    p = await reader.expect();
  }
  const format = adv.caps.get('object-format');
  if (typeof format === 'string' && format !== 'sha1') throw new ProtocolError(`the server uses object format ${format}; mpgit supports sha1 only`);
  for (const [from, to] of v0Symrefs(adv.caps)) {
    const ref = adv.refs.find((r) => r.name === from);
    if (!ref) continue;
    // As git's parse_one_symref_info: a pair either side of which fails the ref-name check is dropped.
    if (refnameFormatOk(from, { allowOneLevel: true }) && refnameFormatOk(to, { allowOneLevel: true })) ref.symref = to;
    else ref.badSymref = to;
  }
  return adv;
}

async function readLine(reader: PktReader, what: string): Promise<string | null> {
  const p = await reader.expect();
  checkErr(p);
  if (p.kind === 'flush') return null;
  if (p.kind !== 'data') throw new ProtocolError(`unexpected ${p.kind} packet in ${what}`);
  return pktText(p);
}

/** Runs a v0 fetch on a connection whose advertisement has been read. */
export async function fetchPack(wire: Wire, adv: V0Advertisement, req: FetchRequest): Promise<PackResponse> {
  if (!req.wants.length) throw new ProtocolError('nothing to fetch');
  const filtered = !!req.filter && adv.caps.has('filter');
  const caps = v0ClientCapabilities(adv.caps, { progress: req.progress, thinPack: req.thinPack, depth: !!req.depth, filter: filtered });
  const multiAck = adv.caps.has('multi_ack_detailed');
  const lines: Buffer[] = req.wants.map((w, i) => pktLine(i === 0 ? `want ${w} ${caps.join(' ')}` : `want ${w}`));
  for (const s of req.shallow ?? []) lines.push(pktLine(`shallow ${s}`));
  if (req.depth) lines.push(pktLine(`deepen ${req.depth}`));
  if (filtered) lines.push(pktLine(`filter ${req.filter}`));
  lines.push(FLUSH);
  await wire.send(Buffer.concat(lines));

  const res: Omit<PackResponse, 'pack'> = { shallow: [], unshallow: [], packfileUris: [], common: [], filtered };
  if (req.depth) {
    for (;;) {
      const line = await readLine(wire.reader, 'the shallow list');
      if (line === null) break;
      const m = SHALLOW_INFO.exec(line);
      if (!m) throw new ProtocolError(`malformed shallow line ${JSON.stringify(line)}`);
      (m[1] === 'shallow' ? res.shallow : res.unshallow).push(m[2]!);
    }
  }

  // Without multi_ack_detailed we cannot tell rounds apart: offer nothing, which costs only size.
  const state = new NegotiationState();
  if (multiAck) {
    for (;;) {
      const batch = await state.nextBatch(req.haves);
      if (!batch.length) break;
      await wire.send(Buffer.concat([...batch.map((h) => pktLine(`have ${h}`)), FLUSH]));
      let ready = false;
      // Each round's answer is ACK <oid> common|ready lines, ended by NAK.
      for (;;) {
        const line = await readLine(wire.reader, 'the acknowledgments');
        if (line === 'NAK') break;
        const m = line === null ? null : ACK_STATUS.exec(line);
        if (!m) throw new ProtocolError(`unexpected acknowledgment ${JSON.stringify(line)}`);
        state.acked(m[1]!, req.haves);
        if (m[2] === 'ready') ready = true;
      }
      if (ready) break;
    }
  }
  await wire.send(pktLine('done'));
  // After done: one final "ACK <oid>" (something in common) or "NAK".
  const last = await readLine(wire.reader, 'the final acknowledgment');
  if (last === null || !(last === 'NAK' || ACK_FINAL.test(last))) {
    throw new ProtocolError(`unexpected final acknowledgment ${JSON.stringify(last)}`);
  }
  res.common = state.common;
  const sideband = caps.includes('side-band-64k') || caps.includes('side-band');
  return { ...res, pack: sideband ? sidebandData(wire.reader, req.onProgress) : rawData(wire.reader) };
}
