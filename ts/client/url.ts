// Remote URLs the client speaks: git://host[:port]/path, with host a name, an IPv4 address or
// a bracketed IPv6 literal. Anything else gets an error naming what is supported.

import { MpgitError } from '../errors.js';
import type { GitConfig } from '../repo/config.js';
import { rewriteUrl } from '../config/insteadof.js';

export const DEFAULT_GIT_PORT = 9418;

export interface GitUrl {
  host: string;
  port: number;
  /** The path sent in the request line ("/repo.git", or "~user/repo" for user directories). */
  path: string;
  /** The URL as the user wrote it (for messages, config and FETCH_HEAD). */
  url: string;
}

const SUPPORTED = 'mpgit supports git://host[:port]/path URLs (git daemon and mpgit daemon)';

// git exits 128 on a URL it cannot use, as on any other fatal error.
const badUrl = (message: string, hint?: string) => new MpgitError('MPGIT_URL', message, hint);

/** A remote's URL after url.<base>.insteadOf, as git uses it. */
export function parseRemoteUrl(url: string, config: GitConfig): GitUrl {
  return parseGitUrl(rewriteUrl(url, config));
}

export function parseGitUrl(url: string): GitUrl {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (!scheme) {
    const kind = /^[^/]*:/.test(url) ? 'an scp-style ssh address' : 'a local path';
    throw badUrl(`${JSON.stringify(url)} looks like ${kind}; ${SUPPORTED}`, 'use stock git for ssh and local clones');
  }
  if (scheme[1]!.toLowerCase() !== 'git') {
    throw badUrl(`unsupported URL scheme "${scheme[1]}" in ${url}; ${SUPPORTED}`, 'use a git:// URL, or stock git for other transports');
  }
  const rest = url.slice(scheme[0].length);
  const m = /^(\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\]|[A-Za-z0-9._-]+)(?::(\d*))?(\/.*)$/.exec(rest);
  if (!m) throw badUrl(`malformed git:// URL ${JSON.stringify(url)}`, 'write it as git://host[:port]/path or git://[::1]:port/path');
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  const port = m[2] ? Number(m[2]) : DEFAULT_GIT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw badUrl(`bad port in ${url}`);
  let path = m[3]!;
  if (/[\0\n]/.test(path)) throw badUrl(`the path in ${JSON.stringify(url)} has control characters`);
  // git://host/~user/repo asks for a user directory: git sends "~user/repo".
  if (path.startsWith('/~')) path = path.slice(1);
  return { host, port, path, url };
}

/** The host=... parameter: IPv6 literals in brackets, the port only when not the default. */
export function hostHeader(u: GitUrl): { host: string; port?: number } {
  const host = u.host.includes(':') ? `[${u.host}]` : u.host;
  return u.port === DEFAULT_GIT_PORT ? { host } : { host, port: u.port };
}

/** The directory a clone goes to when none is given: "path/to/repo.git" -> "repo". */
export function defaultCloneDir(u: GitUrl, bare: boolean): string {
  let base = u.path.replace(/\/+$/, '').replace(/\/\.git$/, '');
  base = base.slice(base.lastIndexOf('/') + 1).replace(/^~/, '');
  if (base.endsWith('.git')) base = base.slice(0, -4);
  if (!base || base === '.' || base === '..') base = u.host.replace(/[:[\]]/g, '');
  return bare ? `${base}.git` : base;
}
