// What a clone asks for and writes, from the remote's refs and the clone's shape (clone-options):
// the objects to want, HEAD, the config git writes for the same flags, and the refs (remote
// branches, tags, a mirror's every ref; origin/HEAD).

import { MpgitError, PackError, ProtocolError } from '../errors.js';
import { formatConfig } from '../repo/config.js';
import type { ObjectDb } from '../repo/odb.js';
import { appendReflog, committerIdent } from '../repo/reflog.js';
import { writePackedRefs, writeRef, writeSymref, type Ref } from '../repo/refs.js';
import { refnameFormatOk, type RemoteRef } from '../protocol/wire.js';
import type { CloneShape } from './clone-options.js';

/** What of the shape the plan needs. */
export type PlanShape = Pick<CloneShape, 'singleBranch' | 'tags' | 'mirror' | 'remote'>;

export interface ClonePlan {
  wants: string[];
  /** The branch checked out (short name), if any. */
  branch: string | null;
  /** HEAD of the new repository as a symref target, null when detached. */
  headRef: string | null;
  headOid: string | null;
  detached: boolean;
  /** Only this branch is fetched (--depth, as git implies --single-branch). */
  singleBranch: boolean;
  /** The remote's HEAD branch (refs/heads/x), when it says. */
  remoteHead: string | null;
  /** What the user should hear about the remote's refs (an invalid HEAD target). */
  warnings: string[];
}

/** Decides what to fetch and what HEAD becomes, from the remote's refs and --branch. */
export function planClone(refs: RemoteRef[], branch: string | undefined, shape: PlanShape): ClonePlan {
  const singleBranch = shape.singleBranch && !shape.mirror;
  const byName = new Map(refs.map((r) => [r.name, r]));
  const head = byName.get('HEAD');
  const { remoteHead, warnings } = remoteHeadOf(refs, byName);
  let headRef: string | null;
  let headOid: string | null;
  let detached = false;
  let chosen: RemoteRef | undefined;
  if (branch) {
    chosen = byName.get(`refs/heads/${branch}`);
    if (chosen) {
      headRef = chosen.name;
      headOid = chosen.oid;
    } else {
      chosen = byName.get(`refs/tags/${branch}`);
      if (!chosen) throw new MpgitError('MPGIT_NO_BRANCH', `Remote branch ${branch} not found in upstream ${shape.remote}`, 'list the branches with mpgit ls-remote --heads');
      headRef = null;
      headOid = chosen.peeled ?? chosen.oid;
      detached = true;
    }
  } else if (remoteHead && remoteHead.startsWith('refs/heads/')) {
    headRef = remoteHead;
    headOid = byName.get(remoteHead)?.oid ?? null;
    chosen = byName.get(remoteHead);
  } else if (head?.oid) {
    headRef = null;
    headOid = head.oid;
    detached = true;
  } else {
    headRef = remoteHead;
    headOid = null;
  }
  const wants = new Set<string>();
  if (shape.mirror) {
    for (const r of refs) if (r.oid && r.name.startsWith('refs/')) wants.add(r.oid);
  } else if (singleBranch) {
    if (chosen?.oid) wants.add(chosen.oid);
    else if (headOid) wants.add(headOid);
  } else {
    for (const r of refs) if (r.oid && (r.name.startsWith('refs/heads/') || (shape.tags && r.name.startsWith('refs/tags/')))) wants.add(r.oid);
    if (detached && headOid) wants.add(headOid);
  }
  const branchName = headRef?.startsWith('refs/heads/') ? headRef.slice('refs/heads/'.length) : null;
  return { wants: [...wants], branch: branchName, headRef, headOid, detached, singleBranch, remoteHead, warnings };
}

/**
 * Where the remote's HEAD points, as git's guess_remote_head decides it: a symref target must
 * be one of the branches or tags listed (else HEAD is detached at the commit HEAD names; a
 * target failing the ref-name check can never be); with no symref, a branch at HEAD's commit.
 */
function remoteHeadOf(refs: RemoteRef[], byName: Map<string, RemoteRef>): { remoteHead: string | null; warnings: string[] } {
  const head = byName.get('HEAD');
  const warnings: string[] = [];
  if (head?.symref !== undefined) {
    const target = head.symref;
    const valid = refnameFormatOk(target, { allowOneLevel: true });
    if (!head.oid) {
      // Unborn: git makes HEAD point there, which the ref store refuses for an invalid name.
      if (!valid) throw new ProtocolError(`unable to update HEAD: the remote's unborn HEAD names ${JSON.stringify(target)}, not a valid ref name`, 'the server is broken or hostile; clone with --branch');
      return { remoteHead: target, warnings };
    }
    const r = byName.get(target);
    const remoteHead = r?.oid && (r.name.startsWith('refs/heads/') || r.name.startsWith('refs/tags/')) ? r.name : null;
    if (!valid) warnings.push(`warning: the remote HEAD points to an invalid ref name ${JSON.stringify(target)}: HEAD is left detached`);
    else if (!remoteHead) warnings.push(`warning: the remote HEAD points to ${target}, which it does not list: HEAD is left detached`);
    return { remoteHead, warnings };
  }
  if (!head?.oid) return { remoteHead: null, warnings };
  if (head.badSymref !== undefined) warnings.push(`warning: the remote's HEAD target is an invalid ref name, ignored: ${JSON.stringify(head.badSymref)}`);
  // Servers that do not say where HEAD points: guess as git does, preferring the usual names.
  const same = refs.filter((r) => r.name.startsWith('refs/heads/') && r.oid === head.oid);
  const remoteHead = (same.find((r) => r.name === 'refs/heads/main') ?? same.find((r) => r.name === 'refs/heads/master') ?? same[0])?.name ?? null;
  return { remoteHead, warnings };
}

/** The config git clone writes for the same flags (git's key order and spelling). */
export function cloneConfig(url: string, shape: CloneShape, plan: ClonePlan): string {
  const core: [string, string][] = [
    // A partial clone needs extensions git < 2.28 would not know about: format version 1.
    ['repositoryformatversion', shape.filter ? '1' : '0'],
    ['filemode', 'true'],
    ['bare', shape.bare ? 'true' : 'false'],
  ];
  if (!shape.bare) core.push(['logallrefupdates', 'true']);
  const sections: [string, string | null, [string, string][]][] = [['core', null, core]];
  if (shape.submodules) sections.push(['submodule', null, [['active', '.']]]);
  const remote: [string, string][] = [['url', url]];
  if (!shape.tags) remote.push(['tagOpt', '--no-tags']);
  if (shape.mirror) remote.push(['fetch', '+refs/*:refs/*'], ['mirror', 'true']);
  else if (!shape.bare) {
    const b = plan.singleBranch && plan.branch ? plan.branch : '*';
    remote.push(['fetch', `+refs/heads/${b}:refs/remotes/${shape.remote}/${b}`]);
  }
  if (shape.filter) remote.push(['promisor', 'true'], ['partialclonefilter', shape.filter]);
  sections.push(['remote', shape.remote, remote]);
  if (!shape.bare && plan.branch) {
    sections.push([
      'branch',
      plan.branch,
      [
        ['remote', shape.remote],
        ['merge', `refs/heads/${plan.branch}`],
      ],
    ]);
  }
  return formatConfig(sections);
}

/**
 * Remote branches as refs/remotes/<remote>/* (bare: refs/heads/*; a mirror: every ref as it
 * is) and tags, all in packed-refs, as git clone writes them; the checked-out branch as a loose
 * ref; <remote>/HEAD as a symref. Returns what <remote>/HEAD was made to point at.
 */
export function writeCloneRefs(gitDir: string, refs: RemoteRef[], plan: ClonePlan, shape: CloneShape, db: ObjectDb): { ref: string; oid: string } | null {
  const packed: Ref[] = [];
  const bare = shape.bare;
  const branchPrefix = bare ? 'refs/heads/' : `refs/remotes/${shape.remote}/`;
  for (const r of refs) {
    if (!r.oid) continue;
    if (shape.mirror) {
      if (r.name.startsWith('refs/')) packed.push({ name: r.name, oid: r.oid, ...(r.peeled ? { peeled: r.peeled } : {}) });
    } else if (r.name.startsWith('refs/heads/')) {
      if (plan.singleBranch && r.name !== plan.headRef) continue;
      packed.push({ name: branchPrefix + r.name.slice('refs/heads/'.length), oid: r.oid });
    } else if (shape.tags && r.name.startsWith('refs/tags/')) {
      // A shallow or single-branch clone gets the tags whose objects came along (include-tag).
      if (plan.singleBranch && !db.hasSync(r.oid)) continue;
      packed.push({ name: r.name, oid: r.oid, ...(r.peeled ? { peeled: r.peeled } : {}) });
    }
  }
  if (packed.length) writePackedRefs(gitDir, packed);
  if (bare) return null;
  if (plan.headRef?.startsWith('refs/heads/') && plan.headOid) writeRef(gitDir, plan.headRef, plan.headOid);
  const originHead = plan.remoteHead?.startsWith('refs/heads/') ? `${branchPrefix}${plan.remoteHead.slice('refs/heads/'.length)}` : null;
  const target = originHead ? packed.find((r) => r.name === originHead) : undefined;
  if (!target) return null;
  writeSymref(gitDir, `refs/remotes/${shape.remote}/HEAD`, target.name);
  return { ref: target.name, oid: target.oid };
}

/**
 * The clone's refs (writeCloneRefs), once every object the plan wanted is here; HEAD detached
 * where the plan says so, and the reflogs git starts in a clone with a work tree (`parent`:
 * where git would read the identity; null: bare, nothing logged). Returns HEAD's commit, or null.
 */
export async function writeRefs(db: ObjectDb, refs: RemoteRef[], plan: ClonePlan, shape: CloneShape, o: { url: string; parent: string | null }): Promise<string | null> {
  for (const w of plan.wants) {
    if (!db.hasSync(w)) throw new PackError(`the server's pack lacks ${w}, which it advertised`, 'the server is inconsistent; clone again');
  }
  const gitDir = db.gitDir;
  const originHead = writeCloneRefs(gitDir, refs, plan, shape, db);
  const head = plan.headOid;
  if (plan.detached && head) writeRef(gitDir, 'HEAD', head);
  if (o.parent !== null && head) {
    const ident = await committerIdent(o.parent);
    const message = `clone: from ${o.url}`;
    const remoteHead = `refs/remotes/${shape.remote}/HEAD`;
    const logged = ['HEAD', ...(!plan.detached && plan.headRef?.startsWith('refs/heads/') ? [plan.headRef] : []), ...(originHead ? [remoteHead] : [])];
    for (const ref of logged) appendReflog(gitDir, ref, null, ref === remoteHead ? originHead!.oid : head, ident, message);
  }
  return head;
}
