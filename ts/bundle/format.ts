// The git bundle file (gitformat-bundle): a signature line ("# v2 git bundle" or "# v3 git
// bundle"), v3 capabilities ("@key[=value]"), prerequisites ("-<oid> <comment>"), refs
// ("<oid> <refname>"), a blank line, then a pack. Parsed from the first bytes of a file or of a
// download (so a wrong file is refused before the rest arrives); written by `mpgit offload
// --bundles`.

import { open } from 'node:fs/promises';
import { MpgitError } from '../errors.js';
import { OID_RE } from '../oid.js';
import { PackStreamHash, type StreamCheck } from '../pack/stream-hash.js';

const SIGNATURES = { '# v2 git bundle\n': 2, '# v3 git bundle\n': 3 } as const;
/** Bound on a bundle header (refs of a big mirror fit; a runaway file does not). */
export const MAX_HEADER_BYTES = 32 * 1024 * 1024;

export interface BundleRef {
  oid: string;
  name: string;
}

export interface BundleHeader {
  version: 2 | 3;
  /** v3 capabilities (object-format, filter); unknown ones are refused, as git refuses them. */
  capabilities: Map<string, string | true>;
  prerequisites: { oid: string; comment: string }[];
  refs: BundleRef[];
  /** Bytes of the header with its blank line: the pack starts at this offset. */
  length: number;
}

/** A file or download that is not a bundle this client can use. */
export class BundleError extends MpgitError {
  constructor(message: string, hint = 'the bundle URI serves something else; it is skipped and the server sends everything') {
    super('MPGIT_BAD_BUNDLE', message, hint);
    this.name = 'BundleError';
  }
}

/** Whether `head` (the first bytes of a file) starts like a bundle. */
export function looksLikeBundle(head: Buffer): boolean {
  const s = head.toString('latin1', 0, 16);
  return s in SIGNATURES;
}

/**
 * Parses the header at the start of `buf`. Returns null while the blank line that ends it has
 * not arrived (and `buf` is under the bound); throws BundleError when it is not a bundle header.
 */
export function parseBundleHeader(buf: Buffer): BundleHeader | null {
  const sigEnd = buf.indexOf(0x0a);
  if (sigEnd < 0) {
    if (buf.length >= 16) throw new BundleError(`not a bundle: starts with ${JSON.stringify(buf.toString('latin1', 0, 16))}`);
    return null;
  }
  const sig = buf.toString('latin1', 0, sigEnd + 1);
  const version = SIGNATURES[sig as keyof typeof SIGNATURES];
  if (!version) throw new BundleError(`not a bundle: starts with ${JSON.stringify(sig.slice(0, 40).trim())}`);
  const end = buf.indexOf('\n\n', sigEnd);
  if (end < 0) {
    if (buf.length > MAX_HEADER_BYTES) throw new BundleError(`bundle header longer than ${MAX_HEADER_BYTES} bytes`);
    return null;
  }
  const header: BundleHeader = { version, capabilities: new Map(), prerequisites: [], refs: [], length: end + 2 };
  const lines = end > sigEnd ? buf.toString('utf8', sigEnd + 1, end).split('\n') : [];
  for (const line of lines) {
    if (line.startsWith('@')) {
      if (version !== 3) throw new BundleError('capability line in a v2 bundle');
      if (header.prerequisites.length || header.refs.length) throw new BundleError('bundle capability after its prerequisites or refs');
      const eq = line.indexOf('=');
      const key = eq < 0 ? line.slice(1) : line.slice(1, eq);
      const value = eq < 0 ? true : line.slice(eq + 1);
      if (key === 'object-format') {
        if (value !== 'sha1') throw new BundleError(`bundle of object format ${String(value)}; mpgit supports sha1 only`);
      } else if (key === 'filter') {
        throw new BundleError(`filtered bundle (${String(value)}): a partial bundle cannot seed a full clone`);
      } else throw new BundleError(`bundle needs capability '${key}', which mpgit does not know`);
      header.capabilities.set(key, value);
    } else if (line.startsWith('-')) {
      const oid = line.slice(1, 41);
      if (!OID_RE.test(oid) || (line.length > 41 && line[41] !== ' ')) throw new BundleError(`malformed bundle prerequisite ${JSON.stringify(line.slice(0, 80))}`);
      if (header.refs.length) throw new BundleError('bundle prerequisite after its refs');
      header.prerequisites.push({ oid, comment: line.slice(42) });
    } else {
      const oid = line.slice(0, 40);
      const name = line.slice(41);
      if (!OID_RE.test(oid) || line[40] !== ' ' || !safeRefName(name)) {
        throw new BundleError(`malformed bundle ref line ${JSON.stringify(line.slice(0, 120))}`);
      }
      header.refs.push({ oid, name });
    }
  }
  if (!header.refs.length) throw new BundleError('bundle without refs');
  return header;
}

/** A ref name git would accept (the parts that matter for writing it under refs/bundles/). */
function safeRefName(name: string): boolean {
  if (name === 'HEAD') return true;
  if (!name.startsWith('refs/') || name.endsWith('/') || name.endsWith('.lock')) return false;
  // No control characters, spaces or git's special characters; no empty, "." or ".." component.
  if (/[\x00-\x20\x7f~^:?*[\\]|@\{/.test(name)) return false;
  // A name that is not UTF-8 would be written back as another name (U+FFFD for its bytes).
  if (name.includes('\ufffd')) return false;
  return name.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && !c.startsWith('.'));
}

/** The header of a bundle we write: v2 (SHA-1, no capabilities needed). */
export function encodeBundleHeader(prerequisites: { oid: string; comment: string }[], refs: BundleRef[]): Buffer {
  const lines = ['# v2 git bundle'];
  for (const p of prerequisites) lines.push(`-${p.oid}${p.comment ? ` ${p.comment.replace(/\n/g, ' ')}` : ''}`);
  for (const r of refs) lines.push(`${r.oid} ${r.name}`);
  return Buffer.from(lines.join('\n') + '\n\n');
}

/** Reads the header of a bundle file (the first MAX_HEADER_BYTES at most). */
export async function readBundleHeader(path: string): Promise<BundleHeader> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(1 << 20, MAX_HEADER_BYTES + 2 - buf.length));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
      pos += bytesRead;
      buf = Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
      const h = parseBundleHeader(buf);
      if (h) return h;
      if (bytesRead === 0) throw new BundleError(`${path}: the bundle header does not end (${buf.length} bytes)`);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The check of a bundle as it is downloaded: its header is parsed (and refused at once if it is
 * not one), then the pack after it hashed as PackStreamHash hashes a pack.
 */
export class BundleStreamCheck implements StreamCheck {
  private head: Buffer[] = [];
  private pack: PackStreamHash | null = null;
  header: BundleHeader | null = null;
  bytes = 0;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.pack) return this.pack.update(chunk);
    this.head.push(chunk);
    const buf = Buffer.concat(this.head);
    this.head = [buf];
    const h = parseBundleHeader(buf);
    if (!h) return;
    this.header = h;
    this.head = [];
    this.pack = new PackStreamHash();
    if (buf.length > h.length) this.pack.update(buf.subarray(h.length));
  }

  finish(): { computed: string; trailer: string } {
    if (!this.pack) throw new Error(`${this.bytes} bytes end inside the bundle header`);
    return this.pack.finish();
  }
}
