// Parsing the object kinds the client walks: commits (tree, parents, date), trees (entries)
// and annotated tags (what they point at). Input is untrusted: malformed objects are errors.

import { PackError } from '../errors.js';
import { OID_RE as OID } from '../oid.js';
import { protectedName } from './protected-names.js';

export interface Commit {
  tree: string;
  parents: string[];
  /** Committer time, seconds since the epoch. */
  time: number;
}

export interface TreeEntry {
  mode: number;
  name: string;
  oid: string;
}

export interface Tag {
  object: string;
  type: string;
}

export const MODE_TREE = 0o040000;
export const MODE_SYMLINK = 0o120000;
export const MODE_GITLINK = 0o160000;

/** Header lines of a commit or tag, up to the blank line before the message. */
function headers(data: Buffer, what: string): [string, string][] {
  const end = data.indexOf('\n\n');
  const text = data.toString('utf8', 0, end < 0 ? data.length : end);
  const out: [string, string][] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(' ')) continue; // continuation of a multi-line header (gpgsig)
    const sp = line.indexOf(' ');
    if (sp <= 0) {
      if (line === '') continue;
      throw new PackError(`malformed ${what} header line ${JSON.stringify(line.slice(0, 80))}`);
    }
    out.push([line.slice(0, sp), line.slice(sp + 1)]);
  }
  return out;
}


export function parseCommit(data: Buffer, oid = 'commit'): Commit {
  let tree = '';
  const parents: string[] = [];
  let time = 0;
  for (const [k, v] of headers(data, `commit ${oid}`)) {
    if (k === 'tree') tree = v;
    else if (k === 'parent') {
      if (!OID.test(v)) throw new PackError(`commit ${oid} has a malformed parent line`);
      parents.push(v);
    } else if (k === 'committer') {
      const m = /> (\d+) [+-]\d{4}$/.exec(v);
      if (m) time = Number(m[1]);
    }
  }
  if (!OID.test(tree)) throw new PackError(`commit ${oid} has no valid tree line`);
  return { tree, parents, time };
}

export function parseTag(data: Buffer, oid = 'tag'): Tag {
  let object = '';
  let type = '';
  for (const [k, v] of headers(data, `tag ${oid}`)) {
    if (k === 'object') object = v;
    else if (k === 'type') type = v;
  }
  if (!OID.test(object) || !type) throw new PackError(`tag ${oid} has no valid object/type lines`);
  return { object, type };
}

/**
 * A path component from a tree is about to become a file name: refuse what git refuses
 * (verify_path) — separators, "." and "..", ".git" in any case and the names NTFS or HFS+
 * read as it (./protected-names.ts) — so a hostile tree cannot write outside the work tree or
 * into the repository.
 */
function checkEntryName(name: string, mode: number, tree: string): void {
  if (!name || name.includes('/') || name === '.' || name === '..' || name.includes('\0') || protectedName(name, mode === MODE_SYMLINK)) {
    throw new PackError(`tree ${tree} has an unsafe entry name ${JSON.stringify(name)}`, 'the repository contains a path git refuses to check out');
  }
}

export function parseTree(data: Buffer, oid = 'tree'): TreeEntry[] {
  const out: TreeEntry[] = [];
  let at = 0;
  while (at < data.length) {
    const sp = data.indexOf(0x20, at);
    const nul = sp < 0 ? -1 : data.indexOf(0, sp);
    if (sp < 0 || nul < 0 || nul + 21 > data.length) throw new PackError(`tree ${oid} is malformed at byte ${at}`);
    const modeText = data.toString('latin1', at, sp);
    if (!/^[0-7]{5,6}$/.test(modeText)) throw new PackError(`tree ${oid} has a bad mode ${JSON.stringify(modeText)}`);
    const name = data.toString('utf8', sp + 1, nul);
    checkEntryName(name, parseInt(modeText, 8), oid);
    // Names are bytes; ours round-trip through UTF-8 (paths, index): refuse what would not.
    if (Buffer.byteLength(name) !== nul - sp - 1) throw new PackError(`tree ${oid} has a file name that is not UTF-8`, 'check this repository out with stock git');
    out.push({ mode: parseInt(modeText, 8), name, oid: data.toString('hex', nul + 1, nul + 21) });
    at = nul + 21;
  }
  // Two entries with one name would be written over or through each other (git's fsck:
  // duplicateEntries).
  const names = out.map((e) => e.name).sort();
  const dup = names.find((n, i) => i > 0 && names[i - 1] === n);
  if (dup !== undefined) throw new PackError(`tree ${oid} has two entries named ${JSON.stringify(dup)}; the repository is corrupt or hostile (git fsck: duplicateEntries)`);
  return out;
}
