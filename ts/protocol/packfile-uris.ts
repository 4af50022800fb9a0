// Packfile-URI lines (gitprotocol-v2 `packfile-uris`, Documentation/technical/packfile-uri):
// the client asks with `packfile-uris <protocols>`, the server answers with a section of
// `<pack-hash> <uri>` lines. Both directions are here; downloading is the client's.

import { ProtocolError } from '../errors.js';
import { OID_PATTERN } from '../oid.js';

const LINE = new RegExp(`^(${OID_PATTERN}) (\\S+)$`);

export interface PackfileUri {
  /** The pack's trailing SHA-1 checksum, as the server named it. */
  hash: string;
  uri: string;
}

/** The URI schemes a client asks for (`packfile-uris http,https`). */
export const PACKFILE_URI_PROTOCOLS = ['http', 'https'];

/** One line of the server's `packfile-uris` section. */
export function encodePackfileUri(p: PackfileUri): string {
  return `${p.hash} ${p.uri}`;
}

/** Parses one line of a `packfile-uris` section; the URI itself is checked before download. */
export function parsePackfileUri(line: string): PackfileUri {
  const m = LINE.exec(line);
  if (!m) throw new ProtocolError(`malformed packfile-uris line ${JSON.stringify(line)}`);
  return { hash: m[1]!, uri: m[2]! };
}
