// What every protocol module shares: the connection as packets in / bytes out, the ref as a
// server lists it, ERR packets, and the checks on object ids and ref names from the wire.

import { pktText, type Pkt, type PktReader } from '../pktline.js';
import { ProtocolError, RemoteError } from '../errors.js';
import { OID_PATTERN } from '../oid.js';

/** Both directions of a connection: packets in, bytes out. */
export interface Wire {
  reader: PktReader;
  send(data: Buffer): Promise<void>;
}

/** A ref as a server lists it. `oid` is null for an unborn HEAD (v2 `unborn`). */
export interface RemoteRef {
  name: string;
  oid: string | null;
  /**
   * Target of a symbolic ref (HEAD -> refs/heads/main), as the server sent it: in v2 it may be
   * any string (git checks it only when resolving it among the refs).
   */
  symref?: string;
  /** A v0 `symref=` target refused by git's ref-name check (so ignored, as git does). */
  badSymref?: string;
  /** What an annotated tag points at, fully peeled. */
  peeled?: string;
}

/** A shallow-info line (v2) or a shallow/unshallow line of a v0 answer. */
export const SHALLOW_INFO = new RegExp(`^(shallow|unshallow) (${OID_PATTERN})$`);
/** Bound on the refs of one advertisement or ls-refs answer. */
export const MAX_REFS = 2_000_000;

/** An `ERR <message>` packet, which a server may send at any point instead of what we wait for. */
export function checkErr(p: Pkt): void {
  if (p.kind === 'data' && p.data.subarray(0, 4).toString('latin1') === 'ERR ') throw new RemoteError(pktText(p).slice(4));
}

/**
 * git's check_refname_format: no control characters, space, `~^:?*[\`, `..`, `@{`, empty
 * components, components starting with `.` or ending in `.lock`, no trailing `.`, not `@`;
 * at least two components unless `allowOneLevel`. Bytes above 0x7f are allowed.
 */
export function refnameFormatOk(name: string, opts: { allowOneLevel?: boolean } = {}): boolean {
  if (name === '' || name === '@') return false;
  if (/[\x00-\x20\x7f~^:?*[\\]|\.\.|@\{|\/\/|^\/|\/$|\.$/.test(name)) return false;
  const parts = name.split('/');
  if (parts.some((c) => c.startsWith('.') || c.endsWith('.lock'))) return false;
  return parts.length >= 2 || !!opts.allowOneLevel;
}

/**
 * Ref names a server sends become paths in our repository: refuse anything git itself would
 * refuse (check-ref-format), in particular ".." components that would escape .git/refs.
 */
export function checkRefName(name: string): void {
  const bad = name !== 'HEAD' && !(name.startsWith('refs/') && refnameFormatOk(name));
  if (bad) throw new ProtocolError(`the server sent an invalid ref name ${JSON.stringify(name)}`);
}
