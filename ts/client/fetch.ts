// mpgit fetch: for a repository cloned by mpgit or by git. Reads the remote's url and
// refspecs from .git/config, lists the matching remote refs (and tags, to follow the ones
// pointing into fetched history, as git does by default), negotiates with haves from the
// local refs, receives a thin pack completed from local objects, then updates the refs,
// .git/shallow and FETCH_HEAD.

import { ConfigError, MpgitError, PackError } from '../errors.js';
import { readConfig } from '../config/read.js';
import { findRepository } from '../repo/layout.js';
import { ObjectDb } from '../repo/odb.js';
import { parseTag } from '../repo/objects.js';
import { deleteRef, listRefs, readRefRaw, readSymref, resolveRef, writeRef } from '../repo/refs.js';
import { writeLocked } from '../repo/lockfile.js';
import { readShallow } from '../repo/shallow.js';
import type { RemoteRef } from '../protocol/wire.js';
import { join } from 'node:path';
import { parseRemoteUrl } from './url.js';
import { RemoteSession } from './session.js';
import { fetchInto } from './fetch-into.js';
import { zlibCompressionLevel } from '../repo/compression.js';
import { HaveWalker } from './haves.js';
import { mapRef, parseRefspec, refPrefix, sourceOf, type Refspec } from './refspec.js';
import { mptcpWanted, wrapSocketError, type RemoteVerbOptions } from './connection.js';
import { appendReflog, committerIdent, logsRef } from '../repo/reflog.js';
import { seedFetchFromBundles } from './bundles.js';

export interface FetchOptions extends RemoteVerbOptions {
  cwd: string;
  /** Remote name or git:// URL (default: the current branch's remote, else origin). */
  remote?: string;
  /** Deepen or shorten the history to this many commits from each fetched tip (--depth). */
  depth?: number;
  /** Fetch the whole history of a shallow repository (--unshallow). */
  unshallow?: boolean;
  /** Delete remote-tracking refs whose remote ref is gone (--prune / --no-prune; default:
   * remote.<name>.prune, else fetch.prune, else no). */
  prune?: boolean;
  /** What the reflog entries say did it, as git's GIT_REFLOG_ACTION (default "fetch"). */
  reflogAction?: string;
}

export interface RefUpdate {
  remote: string;
  local: string | null;
  old: string | null;
  new: string;
  kind: 'new-branch' | 'new-tag' | 'new-ref' | 'fast-forward' | 'forced' | 'up-to-date' | 'rejected' | 'fetch-head';
  forMerge: boolean;
}

export interface FetchResult {
  updates: RefUpdate[];
  /** Remote-tracking refs deleted by --prune. */
  pruned: string[];
  objects: number;
}

/** The reflog message of each kind of ref update, as git fetch writes it. */
const REFLOG_MESSAGES: Partial<Record<RefUpdate['kind'], string>> = {
  'new-tag': 'storing tag',
  'new-branch': 'storing head',
  'new-ref': 'storing ref',
  'fast-forward': 'fast-forward',
  forced: 'forced-update',
};

/** git's INFINITE_DEPTH, sent as the depth of --unshallow. */
const INFINITE_DEPTH = 0x7fffffff;

/** How far back we look for an old tip among the ancestors of a new one (fast-forward check). */
const MAX_ANCESTRY_WALK = 1_000_000;

export async function fetch(opts: FetchOptions): Promise<FetchResult> {
  const { gitDir, workTree } = findRepository(opts.cwd);
  // Every scope, -c and includes, as git reads them (fetch.prune in ~/.gitconfig counts).
  const config = readConfig(gitDir).config;
  const head = readSymref(gitDir, 'HEAD');
  const currentBranch = head?.startsWith('refs/heads/') ? head.slice('refs/heads/'.length) : null;
  const remoteName = opts.remote ?? (currentBranch && config.get(`branch.${currentBranch}.remote`)) ?? 'origin';
  // Not a configured remote: a URL (perhaps one that url.<base>.insteadOf rewrites).
  const isUrl = remoteName.includes('://') || (config.get(`remote.${remoteName}.url`) === undefined && /[:/]/.test(remoteName));
  const urlText = isUrl ? remoteName : config.get(`remote.${remoteName}.url`);
  if (!urlText) throw new MpgitError('MPGIT_NO_REMOTE', `'${remoteName}' does not appear to be a git repository (no remote.${remoteName}.url)`, 'name a configured remote or pass a git:// URL');
  const url = parseRemoteUrl(urlText, config);
  const specs: Refspec[] = isUrl ? [] : config.getAll(`remote.${remoteName}.fetch`).map(parseRefspec);
  const tagOpt = isUrl ? undefined : config.get(`remote.${remoteName}.tagopt`);
  const followTags = tagOpt !== '--no-tags';
  const allTags = tagOpt === '--tags';
  if (allTags) specs.push(parseRefspec('+refs/tags/*:refs/tags/*'));
  // With no refspec git fetches the remote HEAD into FETCH_HEAD only.
  const headOnly = specs.length === 0;
  // A promisor remote (partial clone): its filter applies to every fetch, and its packs are promisor packs.
  const filter = isUrl ? undefined : config.get(`remote.${remoteName}.partialclonefilter`);
  const promisor = !isUrl && (filter !== undefined || config.getBool(`remote.${remoteName}.promisor`) === true);
  const mergeRef = currentBranch && config.get(`branch.${currentBranch}.remote`) === remoteName ? config.get(`branch.${currentBranch}.merge`) : undefined;

  // git's "infinite" depth: every ancestor, which is what --unshallow asks for.
  const depth = opts.unshallow ? INFINITE_DEPTH : opts.depth;
  if (opts.unshallow && !readShallow(gitDir).length) {
    throw new ConfigError('--unshallow on a complete repository does not make sense', 'the repository already has its whole history');
  }
  if (opts.unshallow && opts.depth !== undefined) throw new ConfigError('--depth and --unshallow cannot be used together');

  // fetch.bundleURI first, as git does: new bundles (by creationToken) before the server.
  const bundleUri = config.get('fetch.bundleURI');
  if (bundleUri && depth === undefined) await seedFetchFromBundles(gitDir, bundleUri, config.get('fetch.bundleCreationToken'), { ...opts, mptcp: mptcpWanted(opts.mptcp), compressionLevel: zlibCompressionLevel(config) });

  const session = await RemoteSession.open(url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
  try {
    const prefixes = headOnly ? ['HEAD'] : [...new Set([...specs.map(refPrefix), ...(followTags ? ['refs/tags/'] : [])])];
    const remoteRefs = await session.listRefs(prefixes);
    const prune = opts.prune ?? configBool(config.get(`remote.${remoteName}.prune`) ?? config.get('fetch.prune'));
    const pruned = prune && !headOnly ? pruneStale(gitDir, remoteRefs, specs) : [];
    const db = ObjectDb.openSync(gitDir);
    try {
      const updates = planUpdates(gitDir, remoteRefs, specs, headOnly, mergeRef);
      const want = new Set<string>();
      // Deepening needs the tips asked for even where they are here already.
      for (const u of updates) if (depth !== undefined || !db.hasSync(u.new)) want.add(u.new);
      // Tags git would follow: annotated tags on commits we have (include-tag brings the ones
      // on commits we are about to get).
      const tagCandidates = followTags && !allTags ? remoteRefs.filter((r) => r.name.startsWith('refs/tags/') && r.oid && !readRefRaw(gitDir, r.name)) : [];
      for (const t of tagCandidates) if (!db.hasSync(t.oid!) && t.peeled && db.hasSync(t.peeled)) want.add(t.oid!);

      let objects = 0;
      const shallow = readShallow(gitDir);
      if (want.size) {
        const tips = listRefs(gitDir).map((r) => r.oid);
        const headOid = resolveRef(gitDir, 'HEAD');
        if (headOid) tips.push(headOid);
        const haves = new HaveWalker(db, [...new Set(tips)], new Set(shallow));
        // What the repository had before: complete, so the connectivity check stops there.
        const before = ObjectDb.openSync(gitDir);
        try {
          const got = await fetchInto({
            session,
            gitDir,
            db,
            wants: [...want],
            haves,
            shallow,
            depth,
            thinPack: true,
            compressionLevel: zlibCompressionLevel(config),
            packfileUris: opts.packfileUris,
            filter,
            promisorRefs: promisor ? remoteRefs : undefined,
            // As git does after every fetch: everything the new tips reach must be here now. From a
            // promisor remote anything may be missing by design; git then checks only the tips (below).
            connectivity: promisor ? 'never' : 'always',
            before,
            mptcp: mptcpWanted(opts.mptcp),
            progress: opts.progress,
            say: opts.say,
            verbose: opts.verbose,
          });
          objects = got.objects;
        } finally {
          before.close();
        }
        for (const w of want) {
          if (!db.hasSync(w)) throw new PackError(`the server did not send ${w}`, 'the remote is inconsistent; try again');
        }
      }
      await session.close();

      for (const t of tagCandidates) {
        if (db.hasSync(t.oid!)) updates.push({ remote: t.name, local: t.name, old: null, new: t.oid!, kind: 'new-tag', forMerge: false });
      }
      applyUpdates(gitDir, db, updates);
      const bare = workTree === null || config.get('core.bare') === 'true';
      const logged = updates.filter((u) => u.local && REFLOG_MESSAGES[u.kind] && logsRef(gitDir, u.local, config.get('core.logAllRefUpdates'), bare));
      if (logged.length) {
        const ident = await committerIdent(gitDir);
        const action = process.env.GIT_REFLOG_ACTION ?? opts.reflogAction ?? 'fetch';
        for (const u of logged) {
          const what = u.kind === 'forced' && u.local!.startsWith('refs/tags/') ? 'updating tag' : REFLOG_MESSAGES[u.kind]!;
          appendReflog(gitDir, u.local!, u.old, u.new, ident, `${action}: ${what}`);
        }
      }
      writeFetchHead(gitDir, url.url, updates);
      report(opts.say, url.url, updates, pruned);
      return { updates, objects, pruned };
    } finally {
      db.close();
    }
  } catch (e) {
    session.destroy();
    throw wrapSocketError(e, url);
  }
}

function configBool(v: string | undefined): boolean {
  return v !== undefined && ['true', 'yes', 'on', '1'].includes(v.toLowerCase());
}

/**
 * Deletes the local refs a refspec fills from remote refs that no longer exist (git fetch
 * --prune). Symbolic refs (origin/HEAD) and tags are left alone, as git leaves them without
 * --prune-tags. Returns the deleted refs' names.
 */
function pruneStale(gitDir: string, remoteRefs: RemoteRef[], specs: Refspec[]): string[] {
  const present = new Set(remoteRefs.filter((r) => r.oid).map((r) => r.name));
  const out: string[] = [];
  for (const r of listRefs(gitDir)) {
    if (r.name.startsWith('refs/tags/') || readRefRaw(gitDir, r.name)?.startsWith('ref: ')) continue;
    const sources = specs.map((spec) => sourceOf(spec, r.name)).filter((x): x is string => x !== undefined);
    if (sources.length && !sources.some((src) => present.has(src))) {
      deleteRef(gitDir, r.name);
      out.push(r.name);
    }
  }
  return out;
}

function planUpdates(gitDir: string, remoteRefs: RemoteRef[], specs: Refspec[], headOnly: boolean, mergeRef: string | undefined): RefUpdate[] {
  const out: RefUpdate[] = [];
  if (headOnly) {
    const h = remoteRefs.find((r) => r.name === 'HEAD');
    if (h?.oid) out.push({ remote: 'HEAD', local: null, old: null, new: h.oid, kind: 'fetch-head', forMerge: true });
    return out;
  }
  const seen = new Set<string>();
  for (const r of remoteRefs) {
    if (!r.oid || r.name === 'HEAD') continue;
    for (const spec of specs) {
      const local = mapRef(spec, r.name);
      if (local === undefined) continue;
      const key = `${r.name}\0${local}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const old = local ? resolveRef(gitDir, local) : null;
      const forMerge = mergeRef === r.name;
      const isTag = r.name.startsWith('refs/tags/');
      let kind: RefUpdate['kind'];
      if (!local) kind = 'fetch-head';
      else if (!old) kind = isTag ? 'new-tag' : r.name.startsWith('refs/heads/') ? 'new-branch' : 'new-ref';
      else if (old === r.oid) kind = 'up-to-date';
      else kind = spec.force ? 'forced' : 'fast-forward'; // checked against ancestry after the fetch
      out.push({ remote: r.name, local, old, new: r.oid, kind, forMerge });
    }
  }
  return out;
}

/** Is `ancestor` reachable from `tip`? (bounded walk over parents) */
function isAncestor(db: ObjectDb, ancestor: string, tip: string): boolean {
  const seen = new Set<string>([tip]);
  const stack = [tip];
  while (stack.length && seen.size < MAX_ANCESTRY_WALK) {
    const oid = stack.pop()!;
    if (oid === ancestor) return true;
    for (const p of db.readCommit(oid)?.parents ?? []) {
      if (!seen.has(p)) {
        seen.add(p);
        stack.push(p);
      }
    }
  }
  return false;
}

function peelCommit(db: ObjectDb, oid: string): string {
  let cur = oid;
  for (let i = 0; i < 10; i++) {
    const o = db.readSync(cur);
    if (!o || o.type !== 'tag') return cur;
    cur = parseTag(o.data, cur).object;
  }
  return cur;
}

function applyUpdates(gitDir: string, db: ObjectDb, updates: RefUpdate[]): void {
  for (const u of updates) {
    if (!u.local || u.kind === 'up-to-date' || u.kind === 'fetch-head') continue;
    if (u.old && u.kind === 'fast-forward') {
      // Tags never move without force; branches only forward.
      const ff = !u.local.startsWith('refs/tags/') && isAncestor(db, peelCommit(db, u.old), peelCommit(db, u.new));
      if (!ff) {
        u.kind = 'rejected';
        continue;
      }
    } else if (u.old && u.kind === 'forced' && isAncestor(db, peelCommit(db, u.old), peelCommit(db, u.new))) {
      u.kind = 'fast-forward';
    }
    writeRef(gitDir, u.local, u.new);
  }
}

function describeRef(name: string): [string, string] {
  if (name.startsWith('refs/heads/')) return ['branch', name.slice(11)];
  if (name.startsWith('refs/tags/')) return ['tag', name.slice(10)];
  if (name === 'HEAD') return ['', ''];
  return ['', name];
}

/** FETCH_HEAD as git writes it: merge candidates first, then the rest "not-for-merge". */
function writeFetchHead(gitDir: string, url: string, updates: RefUpdate[]): void {
  const lines = updates
    .filter((u) => u.kind !== 'rejected')
    .sort((a, b) => Number(b.forMerge) - Number(a.forMerge))
    .map((u) => {
      const [what, name] = describeRef(u.remote);
      const desc = what ? `${what} '${name}' of ${url}` : name ? `'${name}' of ${url}` : url;
      return `${u.new}\t${u.forMerge ? '' : 'not-for-merge'}\t${desc}\n`;
    });
  writeLocked(join(gitDir, 'FETCH_HEAD'), lines.join(''));
}

function short(name: string): string {
  for (const p of ['refs/heads/', 'refs/tags/', 'refs/remotes/']) if (name.startsWith(p)) return name.slice(p.length);
  return name;
}

function report(say: ((line: string) => void) | null, url: string, updates: RefUpdate[], pruned: string[]): void {
  if (!say) return;
  const shown = updates.filter((u) => u.kind !== 'up-to-date' && !(u.kind === 'fetch-head' && u.remote !== 'HEAD'));
  if (!shown.length && !pruned.length) return;
  say(`From ${url}`);
  for (const name of pruned) say(` - [deleted]         (none)     -> ${short(name)}`);
  for (const u of shown) {
    const from = short(u.remote);
    const to = u.local ? short(u.local) : 'FETCH_HEAD';
    const abbrev = (o: string | null) => (o ?? '').slice(0, 7);
    switch (u.kind) {
      case 'new-branch':
        say(` * [new branch]      ${from} -> ${to}`);
        break;
      case 'new-tag':
        say(` * [new tag]         ${from} -> ${to}`);
        break;
      case 'new-ref':
        say(` * [new ref]         ${from} -> ${to}`);
        break;
      case 'fast-forward':
        say(`   ${abbrev(u.old)}..${abbrev(u.new)}  ${from} -> ${to}`);
        break;
      case 'forced':
        say(` + ${abbrev(u.old)}...${abbrev(u.new)} ${from} -> ${to}  (forced update)`);
        break;
      case 'rejected':
        say(` ! [rejected]        ${from} -> ${to}  (${u.local?.startsWith('refs/tags/') ? 'would clobber existing tag' : 'non-fast-forward'})`);
        break;
      case 'fetch-head':
        say(` * branch            ${from} -> FETCH_HEAD`);
        break;
    }
  }
}
