// Refspecs ("+refs/heads/*:refs/remotes/origin/*"): which remote refs a fetch takes and
// which local refs they land in.

import { ConfigError } from '../errors.js';

export interface Refspec {
  force: boolean;
  src: string;
  /** null: fetched into FETCH_HEAD only. */
  dst: string | null;
}

export function parseRefspec(text: string): Refspec {
  let s = text.trim();
  if (s.startsWith('^')) throw new ConfigError(`negative refspec ${JSON.stringify(text)} is not supported by mpgit fetch`, 'remove it from remote.<name>.fetch');
  const force = s.startsWith('+');
  if (force) s = s.slice(1);
  const colon = s.indexOf(':');
  const src = colon < 0 ? s : s.slice(0, colon);
  const dst = colon < 0 ? null : s.slice(colon + 1) || null;
  const stars = (x: string | null) => (x ? x.split('*').length - 1 : 0);
  if (!src || stars(src) > 1 || (dst !== null && stars(src) !== stars(dst))) {
    throw new ConfigError(`malformed refspec ${JSON.stringify(text)}`, 'write it as +refs/heads/*:refs/remotes/origin/*');
  }
  return { force, src: expandShort(src), dst: dst && expandShort(dst) };
}

/** "main" means refs/heads/main on the source side, as git reads short names. */
function expandShort(name: string): string {
  return name === 'HEAD' || name.startsWith('refs/') ? name : `refs/heads/${name}`;
}

/** What `*` stands for when `name` matches `pattern` ('' for a pattern without one), else undefined. */
function matchStar(pattern: string, name: string): string | undefined {
  const star = pattern.indexOf('*');
  if (star < 0) return name === pattern ? '' : undefined;
  const pre = pattern.slice(0, star);
  const post = pattern.slice(star + 1);
  if (!name.startsWith(pre) || !name.endsWith(post) || name.length < pre.length + post.length) return undefined;
  return name.slice(pre.length, name.length - post.length);
}

/** The local ref `name` maps to under `spec`, or undefined when the spec does not take it. */
export function mapRef(spec: Refspec, name: string): string | null | undefined {
  const mid = matchStar(spec.src, name);
  if (mid === undefined) return undefined;
  return spec.dst === null ? null : spec.dst.replace('*', mid);
}

/** The ls-refs prefix that covers a refspec's source. */
export function refPrefix(spec: Refspec): string {
  const star = spec.src.indexOf('*');
  return star < 0 ? spec.src : spec.src.slice(0, star);
}

/** The remote ref that lands in local ref `local` under `spec`, or undefined when none does. */
export function sourceOf(spec: Refspec, local: string): string | undefined {
  if (spec.dst === null) return undefined;
  const mid = matchStar(spec.dst, local);
  return mid === undefined ? undefined : spec.src.replace('*', mid);
}
