// What a client reads right after its request line: a v2 capability advertisement
// ("version 2" ...) or, from a server that ignored our version=2, a v0 ref advertisement.

import { pktText, type Pkt, type PktReader } from '../pktline.js';
import { MpgitError, ProtocolError } from '../errors.js';
import { checkErr } from './wire.js';
import { parseV2Advertisement, checkObjectFormat, type Capabilities } from './capabilities.js';
import { parseV0Advertisement, type V0Advertisement } from './v0.js';

export type Handshake = { version: 2; caps: Capabilities } | { version: 0; advertisement: V0Advertisement };

/** Bound on the lines of a v2 capability advertisement before its flush. */
const MAX_CAPABILITY_PKTS = 1000;

/** Reads the server's first answer. */
export async function readHandshake(reader: PktReader): Promise<Handshake> {
  let first = await reader.read();
  if (!first) {
    throw new MpgitError(
      'MPGIT_NO_REPO',
      'the server closed the connection without answering',
      'check the repository path: git daemon hangs up on paths it does not export',
    );
  }
  checkErr(first);
  // A server that speaks v1 says so, then advertises refs as v0 does.
  if (first.kind === 'data' && pktText(first) === 'version 1') first = await reader.expect();
  if (first.kind === 'data' && pktText(first) === 'version 2') {
    const lines: Pkt[] = [];
    for (;;) {
      const p = await reader.expect();
      checkErr(p);
      if (p.kind === 'flush') break;
      lines.push(p);
      if (lines.length > MAX_CAPABILITY_PKTS) throw new ProtocolError('the v2 capability advertisement does not end');
    }
    const caps = parseV2Advertisement(lines);
    checkObjectFormat(caps);
    return { version: 2, caps };
  }
  const m = first.kind === 'data' ? /^version (\d+)$/.exec(pktText(first)) : null;
  if (m) throw new ProtocolError(`the server speaks protocol version ${m[1]}, which mpgit does not know`);
  return { version: 0, advertisement: await parseV0Advertisement(first, reader) };
}
