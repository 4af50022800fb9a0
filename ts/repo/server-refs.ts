// The server's view of its refs, for ls-refs: HEAD first, then every ref git lists, with symref
// targets and fully peeled tags, minus the refs hidden by uploadpack.hideRefs /
// transfer.hideRefs (git's ref_is_hidden rules).

import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gitLines, gitText } from '../git.js';
import { OID_RE as OID } from '../oid.js';
import { FileMemo } from './file-memo.js';

export interface ServerRef {
  name: string;
  /** null for an unborn HEAD (a symref to a branch without commits). */
  oid: string | null;
  symref?: string;
  peeled?: string;
}


/** git's hideRefs rules: the last matching pattern wins; "!" un-hides; "^" matches the full name. */
export function isHidden(name: string, patterns: string[]): boolean {
  for (let i = patterns.length - 1; i >= 0; i--) {
    let p = patterns[i]!;
    const neg = p.startsWith('!');
    if (neg) p = p.slice(1);
    // Without namespaces the full name and the stripped name are the same.
    if (p.startsWith('^')) p = p.slice(1);
    if (p.endsWith('/')) p = p.slice(0, -1);
    if (name === p || name.startsWith(`${p}/`)) return !neg;
  }
  return false;
}

// The daemon answers many clones of the same repository: what git would list again and again
// is remembered per repository (./file-memo.ts) while the files it came from are unchanged, so
// a clone of a busy repository costs no git process for its refs.
const MAX_MEMO = 256;
/** Past this many directories under refs/, refs are listed by git every time. */
const MAX_REF_DIRS = 4096;

async function statPart(path: string): Promise<string> {
  try {
    const st = await stat(path, { bigint: true });
    return `${path}:${st.mtimeNs}:${st.size}:${st.ino}`;
  } catch {
    return `${path}:-`;
  }
}

/** What the config git reads consists of (repository, global, system files). */
export async function configFingerprint(gitDir: string): Promise<string> {
  const xdg = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  const files = [join(gitDir, 'config'), join(homedir(), '.gitconfig'), join(xdg, 'git', 'config'), '/etc/gitconfig'];
  const env = Object.keys(process.env).filter((k) => k.startsWith('GIT_CONFIG')).map((k) => `${k}=${process.env[k]}`);
  return [...(await Promise.all(files.map(statPart))), ...env].join('|');
}

/**
 * The state of the refs store: packed-refs and every directory under refs/ (git creates,
 * updates and deletes a loose ref by renaming or unlinking in its directory, which changes
 * the directory). null when there are too many directories to be worth it.
 */
async function refsFingerprint(gitDir: string): Promise<string | null> {
  const parts = [await statPart(join(gitDir, 'packed-refs'))];
  const dirs = [join(gitDir, 'refs')];
  for (let i = 0; i < dirs.length; i++) {
    if (dirs.length > MAX_REF_DIRS) return null;
    parts.push(await statPart(dirs[i]!));
    const entries = await readdir(dirs[i]!, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) dirs.push(join(dirs[i]!, e.name));
  }
  return parts.join('|');
}

const hiddenMemo = new FileMemo<string[]>(MAX_MEMO);
const refsMemo = new FileMemo<ServerRef[]>(MAX_MEMO);
const boolMemo = new FileMemo<boolean>(MAX_MEMO);

/**
 * What a served answer depends on besides the request: the refs and the config git reads.
 * null when the refs store is too big to fingerprint (then nothing may be remembered).
 */
export async function servingState(gitDir: string): Promise<string | null> {
  const refs = await refsFingerprint(gitDir);
  return refs === null ? null : `${refs}|${await configFingerprint(gitDir)}`;
}

/** A boolean config setting as git reads it for the repository (remembered while the config is unchanged). */
export async function configBool(gitDir: string, key: string): Promise<boolean> {
  const fp = await configFingerprint(gitDir);
  const known = boolMemo.get(`${gitDir}\0${key}`, fp);
  if (known !== undefined) return known;
  const value = (await gitText(gitDir, ['config', '--type=bool', '--get', key], { okCodes: [1] })) === 'true';
  boolMemo.set(`${gitDir}\0${key}`, fp, value);
  return value;
}

/** transfer.hideRefs then uploadpack.hideRefs, in config order (one git call, remembered). */
export async function hiddenPatterns(gitDir: string): Promise<string[]> {
  const fp = await configFingerprint(gitDir);
  const known = hiddenMemo.get(gitDir, fp);
  if (known) return known;
  const lines = await gitLines(gitDir, ['config', '--get-regexp', '^(transfer|uploadpack)\\.hiderefs$'], { okCodes: [1] });
  const pick = (section: string) =>
    lines
      .filter((l) => l.toLowerCase().startsWith(`${section}.hiderefs `))
      .map((l) => l.slice(l.indexOf(' ') + 1))
      .filter(Boolean);
  const patterns = [...pick('transfer'), ...pick('uploadpack')];
  hiddenMemo.set(gitDir, fp, patterns);
  return patterns;
}

/** Every visible ref (HEAD first, when it resolves or is unborn), with symrefs and peeled ids. */
export async function listServerRefs(gitDir: string, hiddenRefs?: string[]): Promise<ServerRef[]> {
  const hidden = hiddenRefs ?? (await hiddenPatterns(gitDir));
  const refs = (await allRefs(gitDir)).filter((r) => !isHidden(r.name, hidden));
  const head = await headRef(gitDir, hidden, refs);
  return head ? [head, ...refs] : refs;
}

/** Object ids of every ref and peeled tag: objects known to exist without asking git. */
export async function refTips(gitDir: string): Promise<Set<string>> {
  const tips = new Set<string>();
  for (const r of await allRefs(gitDir)) {
    if (r.oid) tips.add(r.oid);
    if (r.peeled) tips.add(r.peeled);
  }
  return tips;
}

/** Object ids of the annotated tags under refs/tags, hidden ones included (what --include-tag may add). */
export async function annotatedTags(gitDir: string): Promise<string[]> {
  return (await allRefs(gitDir)).filter((r) => r.name.startsWith('refs/tags/') && r.peeled && r.oid).map((r) => r.oid!);
}

/** Every ref under refs/ as git lists it (remembered while the refs store is unchanged). */
async function allRefs(gitDir: string): Promise<ServerRef[]> {
  const fp = await refsFingerprint(gitDir);
  const known = refsMemo.get(gitDir, fp);
  if (known) return known;
  const lines = await gitLines(gitDir, ['for-each-ref', '--format=%(objectname) %(refname) %(symref) %(*objectname) %(*objecttype)']);
  const refs: ServerRef[] = [];
  const nested: ServerRef[] = [];
  for (const line of lines) {
    const [oid, name, symref, peeled, peeledType] = line.split(' ');
    if (!oid || !name || !OID.test(oid)) continue;
    const r: ServerRef = { name, oid };
    if (symref) r.symref = symref;
    if (peeled && OID.test(peeled)) {
      r.peeled = peeled;
      // A tag of a tag: for-each-ref peels one level, ls-refs reports the final object.
      if (peeledType === 'tag') nested.push(r);
    }
    refs.push(r);
  }
  if (nested.length) {
    const out = await gitLines(gitDir, ['cat-file', '--batch-check=%(objectname)'], { input: nested.map((r) => `${r.oid}^{}`).join('\n') + '\n' });
    nested.forEach((r, i) => {
      if (OID.test(out[i] ?? '')) r.peeled = out[i];
    });
  }
  if (fp !== null) refsMemo.set(gitDir, fp, refs);
  return refs;
}

async function headRef(gitDir: string, hidden: string[], refs: ServerRef[]): Promise<ServerRef | null> {
  if (isHidden('HEAD', hidden)) return null;
  // HEAD is a file in the repository: "ref: <target>" or a detached commit id.
  const text = (await readFile(join(gitDir, 'HEAD'), 'utf8').catch(() => '')).trim();
  if (text.startsWith('ref: ')) {
    const symref = text.slice(5).trim();
    // Its target as listed (hidden or missing: resolved by git, or unborn).
    const listed = refs.find((r) => r.name === symref);
    const oid = listed?.oid ?? (await gitText(gitDir, ['rev-parse', '-q', '--verify', 'HEAD^{object}'], { okCodes: [1] }));
    return { name: 'HEAD', oid: oid && OID.test(oid) ? oid : null, symref, ...(listed?.peeled ? { peeled: listed.peeled } : {}) };
  }
  if (OID.test(text)) return { name: 'HEAD', oid: text };
  const oid = await gitText(gitDir, ['rev-parse', '-q', '--verify', 'HEAD^{object}'], { okCodes: [1] });
  return OID.test(oid) ? { name: 'HEAD', oid } : null;
}
