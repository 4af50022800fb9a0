// mpgit ls-remote: the refs a server advertises, printed as git ls-remote prints them.

import { readConfig } from '../config/read.js';
import { findRepository } from '../repo/layout.js';
import { MpgitError } from '../errors.js';
import type { RemoteRef } from '../protocol/wire.js';
import { parseRemoteUrl } from './url.js';
import { RemoteSession } from './session.js';
import { wrapSocketError } from './connection.js';

export interface LsRemoteOptions {
  /** git:// URL, or the name of a remote of the repository at cwd. */
  remote: string;
  cwd: string;
  heads?: boolean;
  tags?: boolean;
  /** Leave out peeled tags and HEAD. */
  refsOnly?: boolean;
  symref?: boolean;
  patterns?: string[];
  mptcp?: boolean;
  protocolVersion?: 0 | 2;
  verbose: ((line: string) => void) | null;
}

/** Does `pattern` match the tail of `name` (whole path components), as git ls-remote matches? */
function tailMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`(^|/)${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(name);
}

export async function lsRemote(opts: LsRemoteOptions): Promise<{ lines: string[]; refs: RemoteRef[] }> {
  let urlText = opts.remote;
  let gitDir: string | null = null;
  try {
    gitDir = findRepository(opts.cwd).gitDir;
  } catch {
    // outside a repository: a URL, read with the system, global and command configuration
  }
  const config = readConfig(gitDir).config;
  // A bare word is a remote's name; anything else must be a URL (parseGitUrl says which kinds).
  if (/^[\w.-]+$/.test(urlText)) {
    if (!gitDir) findRepository(opts.cwd);
    const u = config.get(`remote.${urlText}.url`);
    if (!u) throw new MpgitError('MPGIT_NO_REMOTE', `'${urlText}' is neither a git:// URL nor a configured remote`, 'pass git://host[:port]/path');
    urlText = u;
  }
  const url = parseRemoteUrl(urlText, config);
  const prefixes: string[] = [];
  if (opts.heads) prefixes.push('refs/heads/');
  if (opts.tags) prefixes.push('refs/tags/');
  const session = await RemoteSession.open(url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
  let refs: RemoteRef[];
  try {
    refs = await session.listRefs(prefixes);
    await session.close();
  } catch (e) {
    session.destroy();
    throw wrapSocketError(e, url);
  }
  const lines: string[] = [];
  for (const r of refs) {
    if (prefixes.length && !prefixes.some((p) => r.name.startsWith(p))) continue;
    if (opts.refsOnly && !r.name.startsWith('refs/')) continue;
    if (opts.patterns?.length && !opts.patterns.some((p) => tailMatch(p, r.name))) continue;
    if (opts.symref && r.symref) lines.push(`ref: ${r.symref}\t${r.name}`);
    if (r.oid) lines.push(`${r.oid}\t${r.name}`);
    if (r.peeled && !opts.refsOnly) lines.push(`${r.peeled}\t${r.name}^{}`);
  }
  return { lines, refs };
}
