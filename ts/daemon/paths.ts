// Which repository a requested path names, and whether it may be served (git daemon's path_ok
// and enter_repo, plus a containment check git lacks): no "." or ".." components, ~user only
// with --user-path, absolute paths under --base-path, the directory allow-list, and the
// repository's real path (symlinks and gitfiles followed) must stay inside its root. With
// --base-path-relaxed a path not found under the base is looked up as it is, as if there were
// no base path: the allow-list, export and strict-paths checks still apply to it.

import { lstat, readFile, realpath, stat, access } from 'node:fs/promises';
import { lookupUser } from './users.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export interface PathPolicy {
  basePath: string | null;
  basePathRelaxed?: boolean;
  directories: string[];
  strictPaths: boolean;
  userPath: boolean | string;
  interpolatedPath: string | null;
  exportAll: boolean;
}

/** What the client said about where it connected (for --interpolated-path). */
export interface RequestContext {
  host?: string;
  port?: number;
  /** Address the host name resolves to, for %IP. */
  hostIp?: string;
}

export type Refusal = 'no such repository' | 'repository not exported' | 'service not enabled' | 'access denied';

export type Resolution =
  | { ok: true; gitDir: string; requested: string; /** Found without the base path (--base-path-relaxed). */ relaxed: boolean }
  | { ok: false; refusal: Refusal; log: string };

/** Longest path we resolve (PATH_MAX). */
const MAX_PATH = 4096;
/** Longest gitfile read ("gitdir: <path>"). */
const MAX_GITFILE = 4096;

const refuse = (refusal: Refusal, log: string): Resolution => ({ ok: false, refusal, log });

/** git daemon's avoid_alias: absolute or ~, and no "//", "/./", "/../", trailing "/." or "/..". */
export function isAliased(p: string): boolean {
  if (!p.startsWith('/') && !p.startsWith('~')) return true;
  const parts = p.slice(1).split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const last = i === parts.length - 1;
    // An empty component is "//" in the middle (a trailing "/" is fine); "." and ".." anywhere.
    if (part === '' && !last) return true;
    if (part === '.' || part === '..') return true;
  }
  return false;
}

/** Makes a client-supplied host safe inside a path: no slashes, no "..", no leading/trailing dots. */
export function sanitizeHost(host: string): string {
  return host
    .toLowerCase()
    .replace(/[/\\]/g, '')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.+|\.+$/g, '');
}

function expand(template: string, req: string, ctx: RequestContext): string {
  const host = sanitizeHost(ctx.host ?? '');
  const vals: Record<string, string> = {
    H: host,
    CH: host,
    IP: ctx.hostIp ?? '',
    P: ctx.port ? String(ctx.port) : '',
    D: req,
    '%': '%',
  };
  return template.replace(/%(CH|IP|H|P|D|%)/g, (_, k: string) => vals[k]!);
}

async function homeOf(user: string): Promise<string | null> {
  return (await lookupUser(user))?.home || null;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** git's is_git_directory: objects/ and refs/ directories and a HEAD file. */
async function isGitDir(dir: string): Promise<boolean> {
  try {
    const [objects, refs, head] = await Promise.all([stat(join(dir, 'objects')), stat(join(dir, 'refs')), stat(join(dir, 'HEAD'))]);
    return objects.isDirectory() && refs.isDirectory() && head.isFile();
  } catch {
    return false;
  }
}

/** Follows a ".git" file ("gitdir: <path>") to the directory it names. */
async function followGitfile(p: string): Promise<string | null> {
  try {
    const st = await lstat(p);
    if (!st.isFile() || st.size > MAX_GITFILE) return null;
    const m = /^gitdir: (.+?)\r?\n?$/.exec((await readFile(p, 'utf8')).trim());
    if (!m) return null;
    return isAbsolute(m[1]!) ? m[1]! : resolve(dirname(p), m[1]!);
  } catch {
    return null;
  }
}

/** git's enter_repo: the repository a path names, trying the usual suffixes unless strict. */
export async function enterRepo(dir: string, strict: boolean): Promise<string | null> {
  const trimmed = dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
  const suffixes = strict ? [''] : ['/.git', '', '.git/.git', '.git'];
  for (const s of suffixes) {
    const candidate = trimmed + s;
    if (await isGitDir(candidate)) return candidate;
    const target = await followGitfile(candidate);
    if (target && (await isGitDir(target))) return target;
  }
  return null;
}

function within(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** The part of a template before its first placeholder, as a directory. */
function staticRoot(template: string): string {
  const cut = template.indexOf('%');
  const prefix = cut < 0 ? template : template.slice(0, cut);
  return prefix.endsWith('/') ? prefix : dirname(prefix);
}

/** Resolves a requested path to a repository that policy allows serving. */
export async function resolveRepo(requested: string, policy: PathPolicy, ctx: RequestContext): Promise<Resolution> {
  if (requested.length > MAX_PATH) return refuse('no such repository', `'${requested.slice(0, 80)}...': path longer than ${MAX_PATH}`);
  if (isAliased(requested)) return refuse('no such repository', `'${requested}': aliased`);

  let dir: string;
  let root: string | null; // the real path must stay inside this
  if (requested.startsWith('~')) {
    if (policy.userPath === false) return refuse('no such repository', `'${requested}': User-path not allowed`);
    const slash = requested.indexOf('/');
    const user = slash < 0 ? requested.slice(1) : requested.slice(1, slash);
    const rest = slash < 0 ? '' : requested.slice(slash);
    if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(user)) return refuse('no such repository', `'${requested}': bad user name`);
    const home = await homeOf(user);
    if (!home) return refuse('no such repository', `'${requested}': no such user`);
    root = typeof policy.userPath === 'string' && policy.userPath ? join(home, policy.userPath) : home;
    dir = root + rest;
  } else if (policy.interpolatedPath && ctx.host !== undefined) {
    dir = expand(policy.interpolatedPath, requested, ctx);
    root = policy.basePath ?? staticRoot(policy.interpolatedPath);
  } else if (policy.basePath) {
    dir = policy.basePath.replace(/\/+$/, '') + requested;
    root = policy.basePath;
  } else {
    dir = requested;
    root = null;
  }

  let found = await enterRepo(dir, policy.strictPaths);
  let relaxed = false;
  // git daemon retries ~user paths too (expanding ~ its own way, past --user-path's subdirectory):
  // not here, so --user-path keeps meaning what it says.
  if (!found && policy.basePath && policy.basePathRelaxed && !requested.startsWith('~')) {
    found = await enterRepo(requested, policy.strictPaths);
    if (found) {
      relaxed = true;
      root = null; // as without --base-path: only the allow-list bounds it
    } else {
      return refuse('no such repository', `'${dir}' does not appear to be a git repository (nor does '${requested}')`);
    }
  }
  if (!found) return refuse('no such repository', `'${dir}' does not appear to be a git repository`);

  let real: string;
  try {
    real = await realpath(found);
  } catch (e) {
    return refuse('no such repository', `'${found}': ${(e as Error).message}`);
  }
  if (root !== null) {
    let realRoot: string;
    try {
      realRoot = await realpath(root);
    } catch {
      return refuse('no such repository', `'${found}': its root ${root} does not exist`);
    }
    if (!within(real, realRoot)) return refuse('no such repository', `'${found}': resolves to ${real}, outside ${realRoot}`);
  }

  if (policy.directories.length) {
    let allowed = false;
    for (const d of policy.directories) {
      let realD: string;
      try {
        realD = await realpath(d);
      } catch {
        continue;
      }
      if (policy.strictPaths ? real === realD : within(real, realD)) {
        allowed = true;
        break;
      }
    }
    if (!allowed) return refuse('no such repository', `'${found}': not in directory list`);
  } else if (policy.strictPaths) {
    return refuse('no such repository', `'${found}': not in directory list`);
  }

  if (!policy.exportAll && !(await exists(join(real, 'git-daemon-export-ok')))) {
    return refuse('repository not exported', `'${found}': repository not exported.`);
  }
  return { ok: true, gitDir: real, requested, relaxed };
}
