// mpgit clone: list the remote's refs, fetch one pack, index it, write refs, config and the
// shallow file, check out HEAD and write the index. Everything happens in a temporary
// directory next to the target, renamed into place at the very end, so a failed clone
// leaves nothing behind.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { MpgitError, ProtocolError } from '../errors.js';
import { formatConfig } from '../repo/config.js';
import { initRepository } from '../repo/layout.js';
import { ObjectDb } from '../repo/odb.js';
import { writePackedRefs, writeRef, writeSymref, type Ref } from '../repo/refs.js';
import { updateShallow } from '../repo/shallow.js';
import { checkout } from '../repo/checkout.js';
import { refnameFormatOk, type RemoteRef } from '../protocol/wire.js';
import { RemoteProgress } from '../protocol/sideband.js';
import { humanBytes, Progress, type ProgressSink } from '../progress.js';
import { defaultCloneDir, parseGitUrl } from './url.js';
import { RemoteSession } from './session.js';
import { receivePack } from './receive.js';
import { mptcpWanted, wrapSocketError } from './connection.js';
import { appendReflog, committerIdent } from '../repo/reflog.js';
import { checkConnected, clearResume, PACKFILE_URI_PROTOCOLS, readResumeRecord, receivePackfileUris, restoreInlinePack, resumeDir, saveResumeRecord } from '../offload/client.js';
import type { PackfileUri } from '../offload/download.js';

export interface CloneOptions {
  url: string;
  dir?: string;
  mptcp?: boolean;
  depth?: number;
  branch?: string;
  bare?: boolean;
  protocolVersion?: 0 | 2;
  /** Where messages ("Cloning into...", warnings) go; null with -q. */
  say: ((line: string) => void) | null;
  /** -v lines (transport), or null. */
  verbose: ((line: string) => void) | null;
  /** Progress meters (and remote progress), or null. */
  progress: ProgressSink | null;
  /** Called with the temporary directory, so a signal handler can remove it. */
  onTempDir?: (dir: string | null) => void;
  /** Ask for packfile URIs (default true; --no-packfile-uris turns it off). */
  packfileUris?: boolean;
}

/** What an interrupted clone keeps (with its packfile URIs) to finish without the server. */
interface CloneRecord {
  refs: RemoteRef[];
  branch?: string;
  depth?: number;
  bare: boolean;
  shallow: string[];
  unshallow: string[];
}

export interface CloneResult {
  dir: string;
  head: string | null;
  objects: number;
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(2)} s`;

/** Delay before the checkout shows its meter (git's delayed progress). */
const CHECKOUT_PROGRESS_DELAY_MS = 1000;

export async function clone(opts: CloneOptions): Promise<CloneResult> {
  const url = parseGitUrl(opts.url);
  const bare = !!opts.bare;
  if (opts.depth !== undefined && (!Number.isInteger(opts.depth) || opts.depth < 1)) {
    throw new MpgitError('MPGIT_CONFIG', `depth ${opts.depth} is not a positive number`, 'pass --depth 1 or more');
  }
  const target = resolve(opts.dir ?? defaultCloneDir(url, bare));
  const targetExisted = existsSync(target);
  // A clone interrupted while downloading packfile URIs continues from what it kept there.
  const resume = targetExisted ? readResumeRecord<CloneRecord>(target) : null;
  if (resume && resume.url !== url.url) {
    throw new MpgitError('MPGIT_EXISTS', `'${opts.dir ?? basename(target)}' holds an interrupted clone of ${resume.url}, not of ${url.url}`, `resume it with \`mpgit clone --resume ${opts.dir ?? basename(target)}\`, or choose another directory`);
  }
  if (resume && readdirSync(target).some((n) => join(target, n) !== resumeDir(target))) {
    throw new MpgitError('MPGIT_EXISTS', `'${opts.dir ?? basename(target)}' holds an interrupted clone and other files`, 'remove the other files, or choose another directory');
  }
  if (targetExisted && !resume && !(statSync(target).isDirectory() && readdirSync(target).length === 0)) {
    throw new MpgitError('MPGIT_EXISTS', `destination path '${opts.dir ?? basename(target)}' already exists and is not an empty directory`, 'choose another directory');
  }
  // Parents we create are removed again on failure, like the clone itself.
  const parent = dirname(target);
  let createdParent: string | null = null;
  if (!existsSync(parent)) {
    let top = parent;
    while (!existsSync(dirname(top))) top = dirname(top);
    createdParent = top;
    mkdirSync(parent, { recursive: true });
  }
  const tmp = join(parent, `.${basename(target)}.mpgit-clone-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp);
  opts.onTempDir?.(tmp);
  const gitDir = bare ? tmp : join(tmp, '.git');
  opts.say?.(bare ? `Cloning into bare repository '${opts.dir ?? basename(target)}'...` : `Cloning into '${opts.dir ?? basename(target)}'...`);

  let session: RemoteSession | null = null;
  let resumable = !!resume;
  try {
    let refs: RemoteRef[];
    if (resume) refs = resume.clone.refs;
    else {
      session = await RemoteSession.open(url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
      refs = await session.listRefs(['HEAD', 'refs/heads/', 'refs/tags/']);
    }
    const branch = resume ? resume.clone.branch : opts.branch;
    const depth = resume ? resume.clone.depth : opts.depth;
    const plan = planClone(refs, branch, depth !== undefined);
    for (const w of plan.warnings) opts.say?.(w);

    initRepository(gitDir, cloneConfig(url.url, bare, plan), plan.headRef ?? `refs/heads/${plan.branch ?? 'master'}`);
    let objects = 0;
    // Packfile URIs: downloaded (resumably, into the target), indexed, then the whole checked.
    const fromUris = async (uris: PackfileUri[], shallow: string[]) => {
      const got = await receivePackfileUris(gitDir, uris, { progress: opts.progress, say: opts.say, downloadDir: join(resumeDir(target), 'downloads'), mptcp: mptcpWanted(opts.mptcp) });
      await checkConnected(gitDir, plan.wants, { shallow });
      return got.reduce((a, p) => a + p.objectCount, 0);
    };
    if (resume) {
      if (resume.inlinePack) restoreInlinePack(target, gitDir, resume.inlinePack);
      updateShallow(gitDir, resume.clone.shallow, resume.clone.unshallow);
      objects += await fromUris(resume.uris, resume.clone.shallow);
    } else if (plan.wants.length && session) {
      const remoteProgress = opts.progress ? new RemoteProgress(opts.progress.write, opts.progress.tty) : null;
      const res = await session.fetch({
        wants: plan.wants,
        depth: opts.depth,
        thinPack: false,
        progress: !!opts.progress,
        packfileUris: opts.packfileUris === false ? undefined : PACKFILE_URI_PROTOCOLS,
        onProgress: (c) => remoteProgress?.push(c),
      });
      let inline: { packPath: string; idxPath: string; checksum: string };
      try {
        const pack = await receivePack(res.pack, gitDir, { progress: opts.progress });
        inline = pack;
        objects = pack.objectCount;
        opts.verbose?.(`Received ${pack.objectCount} objects (${humanBytes(pack.bytes)}) in ${(pack.receiveMs / 1000).toFixed(2)} s and indexed them in ${(pack.indexMs / 1000).toFixed(2)} s`);
      } finally {
        remoteProgress?.flush();
      }
      updateShallow(gitDir, res.shallow, res.unshallow);
      await session.close();
      session = null;
      if (res.packfileUris.length) {
        saveResumeRecord<CloneRecord>(target, { version: 1, url: url.url, uris: res.packfileUris, inlinePack: inline.checksum, clone: { refs, branch, depth, bare, shallow: res.shallow, unshallow: res.unshallow } }, inline);
        resumable = true;
        objects += await fromUris(res.packfileUris, res.shallow);
      }
    } else {
      opts.say?.('warning: You appear to have cloned an empty repository.');
      await session?.close();
      session = null;
    }

    // Reflogs as git starts them in a clone with a work tree (a bare clone logs nothing).
    const ident = bare ? null : await committerIdent(parent);
    const db = ObjectDb.openSync(gitDir);
    try {
      for (const w of plan.wants) {
        if (!db.hasSync(w)) throw new MpgitError('MPGIT_BAD_PACK', `the server's pack lacks ${w}, which it advertised`, 'the server is inconsistent; clone again');
      }
      const originHead = writeCloneRefs(gitDir, refs, plan, bare, db);
      let head: string | null = plan.headOid;
      if (plan.detached && head) writeRef(gitDir, 'HEAD', head);
      if (ident && head) {
        const message = `clone: from ${url.url}`;
        const logged = ['HEAD', ...(!plan.detached && plan.headRef?.startsWith('refs/heads/') ? [plan.headRef] : []), ...(originHead ? ['refs/remotes/origin/HEAD'] : [])];
        for (const ref of logged) appendReflog(gitDir, ref, null, ref === 'refs/remotes/origin/HEAD' ? originHead!.oid : head, ident, message);
      }
      if (!bare && head) {
        const commit = db.readCommit(head);
        if (!commit) throw new MpgitError('MPGIT_BAD_PACK', `HEAD ${head} is not a commit in the received pack`, 'the server sent an incomplete pack; clone again');
        const t0 = Date.now();
        const meter = new Progress(opts.progress, 'Updating files', 0, { delayMs: CHECKOUT_PROGRESS_DELAY_MS });
        const { entries } = await checkout(db, commit.tree, tmp, {
          indexPath: join(gitDir, 'index'),
          onProgress: (done, total) => {
            meter.setTotal(total);
            meter.update(done);
          },
        });
        meter.done(entries);
        opts.verbose?.(`Checked out ${entries} files and wrote the index in ${seconds(t0)}`);
      } else if (!bare && plan.wants.length && !head) {
        opts.say?.(`warning: remote HEAD refers to nonexistent ref, unable to checkout`);
      }
      if (!head) head = null;
      db.close();
      if (resumable) clearResume(target);
      // rename(2) also replaces an empty directory, which git allows as a clone target.
      renameSync(tmp, target);
      opts.onTempDir?.(null);
      return { dir: target, head, objects };
    } finally {
      db.close();
    }
  } catch (e) {
    session?.destroy();
    rmSync(tmp, { recursive: true, force: true });
    const kept = resumable && existsSync(resumeDir(target));
    if (createdParent && !kept) rmSync(createdParent, { recursive: true, force: true });
    if (kept) opts.say?.(`The downloads so far are kept in ${resumeDir(target)}: run \`mpgit clone --resume ${opts.dir ?? basename(target)}\` (or the same clone again) to continue.`);
    opts.onTempDir?.(null);
    throw wrapSocketError(e, url);
  }
}

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
export function planClone(refs: RemoteRef[], branch: string | undefined, singleBranch: boolean): ClonePlan {
  const byName = new Map(refs.map((r) => [r.name, r]));
  const head = byName.get('HEAD');
  const warnings: string[] = [];
  let remoteHead: string | null = null;
  if (head?.symref !== undefined) {
    const target = head.symref;
    const valid = refnameFormatOk(target, { allowOneLevel: true });
    if (!valid) warnings.push(`warning: the remote HEAD points to an invalid ref name ${JSON.stringify(target)}: ${head.oid ? 'HEAD is left detached' : 'cannot set HEAD'}`);
    if (head.oid) {
      // As git's guess_remote_head: the target must be one of the branches or tags fetched;
      // otherwise (a bad name among them) HEAD is detached at what the remote's HEAD names.
      const r = byName.get(target);
      remoteHead = r?.oid && (r.name.startsWith('refs/heads/') || r.name.startsWith('refs/tags/')) ? r.name : null;
      if (valid && !remoteHead) warnings.push(`warning: the remote HEAD points to ${target}, which it does not list: HEAD is left detached`);
    } else if (valid) remoteHead = target;
    else throw new ProtocolError(`unable to update HEAD: the remote's unborn HEAD names ${JSON.stringify(target)}, not a valid ref name`, 'the server is broken or hostile; clone with --branch');
  } else if (head?.oid) {
    if (head.badSymref !== undefined) warnings.push(`warning: the remote's HEAD target is an invalid ref name, ignored: ${JSON.stringify(head.badSymref)}`);
    // Servers that do not say where HEAD points: guess as git does, preferring the usual names.
    const same = refs.filter((r) => r.name.startsWith('refs/heads/') && r.oid === head.oid);
    remoteHead = (same.find((r) => r.name === 'refs/heads/main') ?? same.find((r) => r.name === 'refs/heads/master') ?? same[0])?.name ?? null;
  }
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
      if (!chosen) throw new MpgitError('MPGIT_NO_BRANCH', `Remote branch ${branch} not found in upstream origin`, 'list the branches with mpgit ls-remote --heads');
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
  if (singleBranch) {
    if (chosen?.oid) wants.add(chosen.oid);
    else if (headOid) wants.add(headOid);
  } else {
    for (const r of refs) if (r.oid && (r.name.startsWith('refs/heads/') || r.name.startsWith('refs/tags/'))) wants.add(r.oid);
    if (detached && headOid) wants.add(headOid);
  }
  const branchName = headRef?.startsWith('refs/heads/') ? headRef.slice('refs/heads/'.length) : null;
  return { wants: [...wants], branch: branchName, headRef, headOid, detached, singleBranch, remoteHead, warnings };
}

function cloneConfig(url: string, bare: boolean, plan: ClonePlan): string {
  const sections: [string, string | null, [string, string][]][] = [
    [
      'core',
      null,
      [
        ['repositoryformatversion', '0'],
        ['filemode', 'true'],
        ['bare', bare ? 'true' : 'false'],
        ...(bare ? [] : ([['logallrefupdates', 'true']] as [string, string][])),
      ],
    ],
  ];
  const remote: [string, string][] = [['url', url]];
  if (!bare) {
    const b = plan.singleBranch && plan.branch ? plan.branch : '*';
    remote.push(['fetch', `+refs/heads/${b}:refs/remotes/origin/${b}`]);
  }
  sections.push(['remote', 'origin', remote]);
  if (!bare && plan.branch) {
    sections.push([
      'branch',
      plan.branch,
      [
        ['remote', 'origin'],
        ['merge', `refs/heads/${plan.branch}`],
      ],
    ]);
  }
  return formatConfig(sections);
}

/**
 * Remote branches as refs/remotes/origin/* (bare: refs/heads/*) and tags, all in packed-refs,
 * as git clone writes them; the checked-out branch as a loose ref; origin/HEAD as a symref.
 */
/** Writes the refs of a new clone; returns what refs/remotes/origin/HEAD was made to point at. */
function writeCloneRefs(gitDir: string, refs: RemoteRef[], plan: ClonePlan, bare: boolean, db: ObjectDb): { ref: string; oid: string } | null {
  const packed: Ref[] = [];
  const branchPrefix = bare ? 'refs/heads/' : 'refs/remotes/origin/';
  for (const r of refs) {
    if (!r.oid) continue;
    if (r.name.startsWith('refs/heads/')) {
      if (plan.singleBranch && r.name !== plan.headRef) continue;
      packed.push({ name: branchPrefix + r.name.slice('refs/heads/'.length), oid: r.oid });
    } else if (r.name.startsWith('refs/tags/')) {
      // A shallow or single-branch clone gets the tags whose objects came along (include-tag).
      if (plan.singleBranch && !db.hasSync(r.oid)) continue;
      packed.push({ name: r.name, oid: r.oid, ...(r.peeled ? { peeled: r.peeled } : {}) });
    }
  }
  if (packed.length) writePackedRefs(gitDir, packed);
  if (bare) return null;
  if (plan.headRef?.startsWith('refs/heads/') && plan.headOid) writeRef(gitDir, plan.headRef, plan.headOid);
  const originHead = plan.remoteHead?.startsWith('refs/heads/') ? `refs/remotes/origin/${plan.remoteHead.slice('refs/heads/'.length)}` : null;
  const target = originHead ? packed.find((r) => r.name === originHead) : undefined;
  if (!target) return null;
  writeSymref(gitDir, 'refs/remotes/origin/HEAD', target.name);
  return { ref: target.name, oid: target.oid };
}
