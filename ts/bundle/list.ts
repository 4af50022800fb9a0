// Bundle lists (git's Documentation/technical/bundle-uri): `bundle.*` keys that describe a set
// of bundles. They arrive as `key=value` lines of the protocol v2 `bundle-uri` command, or as a
// file in git's config format behind a bundle URI. The server side writes both.

import { GitConfig } from '../repo/config.js';
import { BundleError } from './format.js';

export interface BundleListEntry {
  /** The `<id>` of `bundle.<id>.*`: alphanumerics and '-'. */
  id: string;
  /** Absolute (resolved against the list's own URI when relative). */
  uri: string;
  /** git keeps it as a 64-bit unsigned integer, so it is a bigint here. */
  creationToken: bigint | null;
}

export interface BundleList {
  mode: 'all' | 'any';
  heuristic: 'creationToken' | null;
  bundles: BundleListEntry[];
}

/** Bound on the bundles of one list. */
export const MAX_BUNDLES = 10_000;
const ID_RE = /^[A-Za-z0-9-]+$/;
const MAX_TOKEN = (1n << 64n) - 1n;

/**
 * Builds a list from `bundle.*` pairs (keys as git-config names them). `base` is the URI the list
 * came from, for relative bundle URIs (none for a list the server advertised in the protocol).
 * Unknown keys are ignored as git ignores them; a list git would refuse is refused.
 */
export function bundleListFromPairs(pairs: Iterable<[string, string]>, base: string | null): BundleList {
  let version: string | null = null;
  let mode: string | null = null;
  let heuristic: BundleList['heuristic'] = null;
  const byId = new Map<string, { uri?: string; creationToken?: string }>();
  for (const [rawKey, value] of pairs) {
    const key = rawKey.trim();
    if (!key.toLowerCase().startsWith('bundle.')) continue;
    const last = key.lastIndexOf('.');
    const name = key.slice(last + 1).toLowerCase();
    if (last === 6) {
      if (name === 'version') version = value;
      else if (name === 'mode') mode = value;
      else if (name === 'heuristic' && value === 'creationToken') heuristic = 'creationToken';
      continue;
    }
    const id = key.slice(7, last);
    if (!ID_RE.test(id)) continue;
    const b = byId.get(id) ?? {};
    if (name === 'uri') b.uri = value;
    else if (name === 'creationtoken') b.creationToken = value;
    else continue;
    byId.set(id, b);
    if (byId.size > MAX_BUNDLES) throw new BundleError(`bundle list of more than ${MAX_BUNDLES} bundles`);
  }
  if (version !== '1') throw new BundleError(version === null ? 'bundle list without bundle.version' : `bundle list of version ${version}; mpgit knows version 1`);
  if (mode !== 'all' && mode !== 'any') throw new BundleError(`bundle list with bundle.mode ${JSON.stringify(mode)}, not all or any`);
  const bundles: BundleListEntry[] = [];
  for (const [id, b] of byId) {
    if (!b.uri) continue;
    const token = parseCreationToken(b.creationToken);
    bundles.push({ id, uri: resolveBundleUri(b.uri, base), creationToken: token });
  }
  return { mode, heuristic, bundles };
}

/** A creationToken as git reads it (an unsigned 64-bit decimal), or null when it is not one. */
export function parseCreationToken(value: string | undefined): bigint | null {
  if (value === undefined || !/^\d{1,20}$/.test(value)) return null;
  const token = BigInt(value);
  return token <= MAX_TOKEN ? token : null;
}

/** A relative URI against the list's URI (as git: relative to it, or to its host with a '/'). */
export function resolveBundleUri(uri: string, base: string | null): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) return uri;
  if (!base) throw new BundleError(`relative bundle URI ${JSON.stringify(uri)} in a list without a base URI`);
  try {
    return new URL(uri, base).toString();
  } catch {
    throw new BundleError(`bundle URI ${JSON.stringify(uri)} does not resolve against ${base}`);
  }
}

/** The `key=value` lines of a `bundle-uri` response (malformed ones are skipped, as git skips them). */
export function parseBundleListLines(lines: string[]): BundleList {
  const pairs: [string, string][] = [];
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq <= 0 || eq === line.length - 1) continue;
    pairs.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return bundleListFromPairs(pairs, null);
}

/** A bundle list file (git config format) found at `base`. */
export function parseBundleListFile(text: string, base: string): BundleList {
  let cfg: GitConfig;
  try {
    cfg = GitConfig.parse(text, base);
  } catch (e) {
    throw new BundleError(`${base} is neither a bundle nor a bundle list: ${(e as Error).message}`);
  }
  const pairs: [string, string][] = [];
  for (const key of cfg.keys()) for (const v of cfg.getAll(key)) pairs.push([key, v]);
  return bundleListFromPairs(pairs, base);
}

/**
 * The pairs of a list we publish (mode all, creationToken heuristic), keys as git's server sends
 * them: normalized as git config names them (variable names lower-case). git's client matches
 * `creationtoken` exactly, so the camel-case spelling on the wire would be ignored.
 */
export function bundleListPairs(bundles: { id: string; uri: string; creationToken: number | bigint }[]): [string, string][] {
  const out: [string, string][] = [
    ['bundle.version', '1'],
    ['bundle.mode', 'all'],
    ['bundle.heuristic', 'creationToken'],
  ];
  for (const b of bundles) out.push([`bundle.${b.id}.uri`, b.uri], [`bundle.${b.id}.creationtoken`, String(b.creationToken)]);
  return out;
}

/** A value as git config writes it: quoted when it holds a comment character, a quote, a
 * backslash or edge spaces (a URI with ';' would otherwise be cut there when read back). */
function configValue(v: string): string {
  if (!/[;#"\\\n\t]|^\s|\s$/.test(v)) return v;
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}

/** The same list as a file in git config format (for `--bundle-uri` and `fetch.bundleURI`). */
export function formatBundleListFile(bundles: { id: string; uri: string; creationToken: number | bigint }[]): string {
  let out = '[bundle]\n\tversion = 1\n\tmode = all\n\theuristic = creationToken\n';
  for (const b of bundles) out += `\n[bundle "${b.id}"]\n\turi = ${configValue(b.uri)}\n\tcreationToken = ${b.creationToken}\n`;
  return out;
}
