// The shape of a clone from git clone's flags and configuration: the remote's name (-o,
// clone.defaultRemoteName), bare or mirror, one branch or all, tags or not, checkout or not,
// an object filter. One place decides; the rest of the clone follows it.

import { MpgitError } from '../errors.js';
import type { GitConfig } from '../repo/config.js';
import type { RemoteVerbOptions } from './connection.js';
import { checkRefFormat } from './refname.js';

export interface CloneFlags {
  bare?: boolean;
  mirror?: boolean;
  /** --single-branch (true) / --no-single-branch (false); default: only with --depth. */
  singleBranch?: boolean;
  depth?: number;
  /** -o/--origin NAME */
  origin?: string;
  /** --no-tags gives false. */
  tags?: boolean;
  /** -n/--no-checkout gives false. */
  checkout?: boolean;
  /** --filter=<spec> */
  filter?: string;
  /** --recurse-submodules: submodule.active = . in the config, as git writes it. */
  recurseSubmodules?: boolean;
}

export interface CloneOptions extends CloneFlags, RemoteVerbOptions {
  url: string;
  dir?: string;
  branch?: string;
  /** Called with the temporary directory, so a signal handler can remove it. */
  onTempDir?: (dir: string | null) => void;
  /** Use the bundles the server advertises (default: transfer.bundleURI, else true; --no-bundle-uri). */
  bundleUris?: boolean;
  /** --bundle-uri=URL: a bundle or bundle list to seed the clone from (instead of the server's). */
  bundleUri?: string;
}

export interface CloneResult {
  dir: string;
  head: string | null;
  /** HEAD was checked out detached (--branch <tag>, or a remote HEAD that is no branch). */
  detached: boolean;
  objects: number;
}

/** The flags an interrupted clone records, to resume in the same shape. */
export function cloneFlags(o: CloneFlags): CloneFlags {
  return { mirror: o.mirror, singleBranch: o.singleBranch, origin: o.origin, tags: o.tags, checkout: o.checkout, filter: o.filter, recurseSubmodules: o.recurseSubmodules };
}

export interface CloneShape {
  remote: string;
  bare: boolean;
  mirror: boolean;
  singleBranch: boolean;
  tags: boolean;
  checkout: boolean;
  filter: string | null;
  submodules: boolean;
}

export function cloneShape(flags: CloneFlags, config: GitConfig): CloneShape {
  const mirror = !!flags.mirror;
  const bare = mirror || !!flags.bare;
  const remote = flags.origin ?? config.get('clone.defaultRemoteName') ?? 'origin';
  if (!validRemoteName(remote)) throw new MpgitError('MPGIT_BAD_REMOTE', `'${remote}' is not a valid remote name`, 'a remote name must be usable in refs/remotes/<name>/');
  const filter = flags.filter !== undefined ? parseFilter(flags.filter) : null;
  return {
    remote,
    bare,
    mirror,
    singleBranch: flags.singleBranch ?? flags.depth !== undefined,
    tags: flags.tags !== false,
    checkout: !bare && flags.checkout !== false,
    filter,
    submodules: !!flags.recurseSubmodules && !bare && flags.checkout !== false,
  };
}

/** git's valid_remote_name: refs/remotes/<name>/test must be a valid ref name. */
function validRemoteName(name: string): boolean {
  return name.length > 0 && checkRefFormat(`refs/remotes/${name}/test`);
}

/** The filters mpgit asks servers for (git's list-objects-filter-options, the common ones). */
export function parseFilter(spec: string): string {
  const s = spec.trim();
  const m = /^blob:limit=(\d+)([kmg]?)$/i.exec(s);
  if (s === 'blob:none' || /^tree:\d+$/.test(s) || m) return s;
  throw new MpgitError('MPGIT_USAGE', `invalid filter-spec '${spec}'`, 'mpgit clone takes --filter=blob:none, blob:limit=<n>[kmg] or tree:<depth>');
}
