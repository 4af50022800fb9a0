// Refs as git stores them: loose files under refs/ (and HEAD, FETCH_HEAD...), packed-refs,
// symbolic refs ("ref: refs/heads/main"). Every write goes through a .lock file renamed into
// place, as git does, so a reader never sees half a ref.

import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MpgitError } from '../errors.js';
import { OID_RE as OID } from '../oid.js';
import { writeLocked } from './lockfile.js';

export interface Ref {
  name: string;
  oid: string;
  /** For annotated tags: the object the tag finally points at. */
  peeled?: string;
}

/** How many symbolic refs we follow before calling it a loop. */
const MAX_SYMREF_DEPTH = 5;

/**
 * packed-refs as last parsed, with the stat it was parsed at: every single-ref lookup reads
 * it, and a repository may hold 100k packed tags. Writers replace the file by rename (git and
 * we alike), so a new inode, size or mtime tells that it changed.
 */
let packedCache: { path: string; stamp: string; refs: Map<string, Ref> } | null = null;

function packedRefs(gitDir: string): ReadonlyMap<string, Ref> {
  const path = join(gitDir, 'packed-refs');
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return new Map();
  const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
  if (packedCache?.path === path && packedCache.stamp === stamp) return packedCache.refs;
  const refs = parsePackedRefs(readFileSync(path, 'utf8'));
  packedCache = { path, stamp, refs };
  return refs;
}

function parsePackedRefs(text: string): Map<string, Ref> {
  const out = new Map<string, Ref>();
  let last: Ref | null = null;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('^')) {
      if (last && OID.test(line.slice(1))) last.peeled = line.slice(1);
      continue;
    }
    const sp = line.indexOf(' ');
    const oid = line.slice(0, sp);
    if (sp !== 40 || !OID.test(oid)) continue;
    last = { name: line.slice(sp + 1), oid };
    out.set(last.name, last);
  }
  return out;
}

/** The entries of packed-refs (name -> ref), in file order: the caller's own copy. */
export function readPackedRefs(gitDir: string): Map<string, Ref> {
  return new Map([...packedRefs(gitDir)].map(([name, r]) => [name, { ...r }]));
}

function readLooseDir(gitDir: string, dir: string, out: Map<string, string>): void {
  const abs = join(gitDir, dir);
  let names: string[];
  try {
    names = readdirSync(abs);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.endsWith('.lock')) continue;
    const rel = `${dir}/${name}`;
    const st = statSync(join(abs, name), { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) readLooseDir(gitDir, rel, out);
    else {
      const text = readFileSync(join(abs, name), 'utf8').trim();
      out.set(rel, text);
    }
  }
}

/** Reads a single ref's raw content: an oid, "ref: <target>", or null when absent. */
export function readRefRaw(gitDir: string, name: string): string | null {
  const path = join(gitDir, name);
  const st = statSync(path, { throwIfNoEntry: false });
  if (st?.isFile()) return readFileSync(path, 'utf8').trim();
  const packed = packedRefs(gitDir).get(name);
  return packed ? packed.oid : null;
}

/** Follows symbolic refs to an object id (null for an unborn branch or a missing ref). */
export function resolveRef(gitDir: string, name: string): string | null {
  let cur = name;
  for (let i = 0; i <= MAX_SYMREF_DEPTH; i++) {
    const raw = readRefRaw(gitDir, cur);
    if (raw === null) return null;
    if (raw.startsWith('ref: ')) {
      cur = raw.slice(5).trim();
      continue;
    }
    return OID.test(raw) ? raw : null;
  }
  throw new MpgitError('MPGIT_BAD_REF', `symbolic ref loop at ${name}`, 'fix the refs with git symbolic-ref');
}

/** The target of a symbolic ref (HEAD -> refs/heads/main), or null when it is not one. */
export function readSymref(gitDir: string, name: string): string | null {
  const raw = readRefRaw(gitDir, name);
  return raw?.startsWith('ref: ') ? raw.slice(5).trim() : null;
}

/** Every ref under refs/ (loose over packed), resolved to object ids, sorted by name. */
export function listRefs(gitDir: string): Ref[] {
  const packed = readPackedRefs(gitDir);
  const loose = new Map<string, string>();
  readLooseDir(gitDir, 'refs', loose);
  const out = new Map<string, Ref>();
  for (const [name, r] of packed) out.set(name, r);
  for (const [name, raw] of loose) {
    if (OID.test(raw)) out.set(name, { name, oid: raw });
    else if (raw.startsWith('ref: ')) {
      const oid = resolveRef(gitDir, name);
      if (oid) out.set(name, { name, oid });
    }
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Writes packed-refs with every ref given (sorted, with peeled lines), replacing the file. */
export function writePackedRefs(gitDir: string, refs: Ref[]): void {
  const sorted = [...refs].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  let text = '# pack-refs with: peeled fully-peeled sorted \n';
  for (const r of sorted) {
    text += `${r.oid} ${r.name}\n`;
    if (r.peeled) text += `^${r.peeled}\n`;
  }
  writeLocked(join(gitDir, 'packed-refs'), text);
}

/** Points a loose ref at `oid` (creating it); refuses a name that clashes with a directory. */
export function writeRef(gitDir: string, name: string, oid: string): void {
  if (!OID.test(oid)) throw new Error(`writeRef: ${oid} is not an object id`);
  const path = join(gitDir, name);
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new MpgitError('MPGIT_REF_CONFLICT', `cannot write ${name}: a directory of refs has that name`, `remove the refs under ${name}/ first`);
  }
  writeLocked(path, `${oid}\n`);
}

export function writeSymref(gitDir: string, name: string, target: string): void {
  writeLocked(join(gitDir, name), `ref: ${target}\n`);
}

/** Deletes a ref (loose and packed) and its reflog, as `git update-ref -d` does. */
export function deleteRef(gitDir: string, name: string): void {
  rmSync(join(gitDir, name), { force: true });
  const packed = readPackedRefs(gitDir);
  if (packed.delete(name)) writePackedRefs(gitDir, [...packed.values()]);
  rmSync(join(gitDir, 'logs', name), { force: true });
}
