// mpgit clone: list the remote's refs, fetch one pack, index it, write refs, config and the
// shallow file, check out HEAD and write the index. Everything happens in a temporary
// directory next to the target, renamed into place at the very end, so a failed clone
// leaves nothing behind.

import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { MpgitError, PackError } from '../errors.js';
import type { ProgressSink } from '../progress.js';
import type { PackfileUri } from '../protocol/packfile-uris.js';
import type { RemoteRef } from '../protocol/wire.js';
import { checkConnected } from '../repo/connectivity.js';
import { initRepository } from '../repo/layout.js';
import { ObjectDb } from '../repo/odb.js';
import { appendReflog, committerIdent } from '../repo/reflog.js';
import { writeRef } from '../repo/refs.js';
import { updateShallow } from '../repo/shallow.js';
import { readConfig } from '../config/read.js';
import { bundleTips, seedFromBundles } from './bundles.js';
import { checkoutHead } from './clone-checkout.js';
import { cloneShape, type CloneFlags, type CloneShape } from './clone-options.js';
import { cloneConfig, planClone, writeCloneRefs, type ClonePlan } from './clone-refs.js';
import { prepareTarget } from './clone-target.js';
import { prefetchCheckout } from './partial-clone.js';
import { mptcpWanted, wrapSocketError } from './connection.js';
import { fetchInto, receiveUris } from './fetch-into.js';
import { HaveWalker } from './haves.js';
import { clearResume, readResumeRecord, restoreInlinePack, resumeDir, saveResumeRecord } from './resume.js';
import { RemoteSession } from './session.js';
import { defaultCloneDir, parseRemoteUrl } from './url.js';

export interface CloneOptions extends CloneFlags {
  url: string;
  dir?: string;
  mptcp?: boolean;
  branch?: string;
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
  /** Use the bundles the server advertises (default: transfer.bundleURI, else true; --no-bundle-uri). */
  bundleUris?: boolean;
  /** --bundle-uri=URL: a bundle or bundle list to seed the clone from (instead of the server's). */
  bundleUri?: string;
}

/** What an interrupted clone keeps (with its packfile URIs) to finish without the server. */
interface CloneRecord {
  refs: RemoteRef[];
  branch?: string;
  depth?: number;
  bare: boolean;
  flags?: CloneFlags;
  shallow: string[];
  unshallow: string[];
  /** Saved while bundles download: the next run starts over, resuming those downloads. */
  bundlePhase?: boolean;
  bundleUri?: string;
}

export interface CloneResult {
  dir: string;
  head: string | null;
  /** HEAD was checked out detached (--branch <tag>, or a remote HEAD that is no branch). */
  detached: boolean;
  objects: number;
}

export async function clone(opts: CloneOptions): Promise<CloneResult> {
  // system, global and -c configuration: url.<base>.insteadOf, clone.defaultRemoteName...
  const config = readConfig(null).config;
  // The URL as given goes into the config (as git writes it); the rewritten one is used.
  const url = { ...parseRemoteUrl(opts.url, config), url: opts.url };
  if (opts.depth !== undefined && (!Number.isInteger(opts.depth) || opts.depth < 1)) {
    throw new MpgitError('MPGIT_CONFIG', `depth ${opts.depth} is not a positive number`, 'pass --depth 1 or more');
  }
  const target = resolve(opts.dir ?? defaultCloneDir(url, !!(opts.bare || opts.mirror)));
  const shown = opts.dir ?? basename(target);
  const targetExisted = existsSync(target);
  // A clone interrupted while downloading packfile URIs continues from what it kept there; one
  // interrupted while downloading bundles starts over, and its downloads resume.
  const record = targetExisted ? readResumeRecord<CloneRecord>(target) : null;
  const resume = record && !record.clone.bundlePhase ? record : null;
  if (record && record.url !== url.url) {
    throw new MpgitError('MPGIT_EXISTS', `'${shown}' holds an interrupted clone of ${record.url}, not of ${url.url}`, `resume it with \`mpgit clone --resume ${shown}\`, or choose another directory`);
  }
  if (record && readdirSync(target).some((n) => join(target, n) !== resumeDir(target))) {
    throw new MpgitError('MPGIT_EXISTS', `'${shown}' holds an interrupted clone and other files`, 'remove the other files, or choose another directory');
  }
  const bundleUri = record ? record.clone.bundleUri : opts.bundleUri;
  if (bundleUri && opts.depth !== undefined) throw new MpgitError('MPGIT_CONFIG', "options '--bundle-uri' and '--depth' cannot be used together", 'drop one of them');
  const shape = cloneShape(record ? { ...record.clone.flags, bare: record.clone.bare, depth: record.clone.depth } : opts, config);
  const bare = shape.bare;
  const { tmp, createdParent } = prepareTarget(target, shown, { bare, resuming: !!record, say: opts.say });
  const parent = dirname(target);
  opts.onTempDir?.(tmp);
  const gitDir = bare ? tmp : join(tmp, '.git');
  opts.say?.(bare ? `Cloning into bare repository '${shown}'...` : `Cloning into '${shown}'...`);

  let session: RemoteSession | null = null;
  let resumable = !!record;
  try {
    let refs: RemoteRef[];
    if (resume) refs = resume.clone.refs;
    else {
      session = await RemoteSession.open(url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
      refs = await session.listRefs(shape.mirror ? [] : ['HEAD', 'refs/heads/', ...(shape.tags ? ['refs/tags/'] : [])]);
    }
    const branch = record ? record.clone.branch : opts.branch;
    const depth = record ? record.clone.depth : opts.depth;
    const plan = planClone(refs, branch, shape);
    for (const w of plan.warnings) opts.say?.(w);

    initRepository(gitDir, cloneConfig(url.url, shape, plan), plan.headRef ?? `refs/heads/${plan.branch ?? 'master'}`);
    const received = { objects: 0 };
    const common = { gitDir, downloadDir: join(resumeDir(target), 'downloads'), mptcp: mptcpWanted(opts.mptcp), progress: opts.progress, say: opts.say, verbose: opts.verbose };
    const saveRecord = (uris: PackfileUri[], inline: { packPath: string; idxPath: string; checksum: string } | null, rest: Partial<CloneRecord>) => {
      saveResumeRecord<CloneRecord>(target, { version: 1, url: url.url, uris, inlinePack: inline?.checksum ?? null, clone: { refs, branch, depth, bare, flags: cloneFlags(opts), shallow: [], unshallow: [], ...rest } }, inline);
      resumable = true;
    };
    if (resume) {
      // What the interrupted run received stays; only the URI packs are left to fetch.
      if (resume.inlinePack) restoreInlinePack(target, gitDir, resume.inlinePack);
      updateShallow(gitDir, resume.clone.shallow, resume.clone.unshallow);
      received.objects += await receiveUris(gitDir, resume.uris, common);
      await checkConnected(gitDir, plan.wants, { shallow: resume.clone.shallow });
    } else if (plan.wants.length && session) {
      // Bundles first (the server's, or --bundle-uri's; not for shallow or partial clones):
      // their refs are then our haves, and the server sends only the rest.
      const seeded =
        depth === undefined && !shape.filter
          ? await seedFromBundles(gitDir, target, session, { ...opts, bundleUri, bundleUris: opts.bundleUris ?? config.getBool('transfer.bundleURI') ?? true, mptcp: mptcpWanted(opts.mptcp) }, () =>
              saveRecord([], null, { bundlePhase: true, bundleUri }),
            )
          : null;
      const tips = seeded ? bundleTips(seeded) : [];
      for (const b of seeded?.applied ?? []) received.objects += b.objects;
      const haveDb = tips.length ? ObjectDb.openSync(gitDir) : null;
      try {
        if (haveDb && plan.wants.every((w) => haveDb.hasSync(w))) {
          // The bundles brought every tip: nothing is left to fetch. As git does, a bundle's
          // pack is trusted to hold what its refs reach (its prerequisites were checked).
          opts.verbose?.('The bundles carry every ref asked for: no pack to fetch');
        } else {
          const live = session;
          // A partial clone's checkout needs HEAD's whole tree: asked for in parallel, on a second
          // connection (not from a server without filters: its answer to the clone holds everything).
          const prefetch =
            shape.filter && shape.checkout && plan.headOid && depth === undefined && !haveDb && live.offersFilter()
              ? prefetchCheckout({ url, gitDir, mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose, progress: null }, plan.headOid)
              : null;
          const got = await fetchInto({
            ...common,
            session: live,
            wants: plan.wants,
            depth: opts.depth,
            haves: haveDb ? new HaveWalker(haveDb, tips, new Set()) : undefined,
            thinPack: !!haveDb,
            db: haveDb ?? undefined,
            packfileUris: opts.packfileUris,
            filter: shape.filter ?? undefined,
            promisorRefs: shape.filter ? refs : undefined,
            // After bundles, as after packfile URIs: the refs must reach only objects that are here
            // (the walk stops at what the bundles brought, as git's stops at refs/bundles/).
            connectivity: tips.length ? 'always' : 'uris',
            before: haveDb,
            beforeUris: async (inline, res) => {
              // The server has said all it will: the downloads need no connection to it.
              await live.close();
              session = null;
              saveRecord(res.packfileUris, inline, { shallow: res.shallow, unshallow: res.unshallow });
            },
          });
          received.objects += got.objects + ((await prefetch) ?? 0);
        }
      } finally {
        haveDb?.close();
      }
      await session?.close();
      session = null;
    } else {
      opts.say?.('warning: You appear to have cloned an empty repository.');
      await session?.close();
      session = null;
    }

    const db = ObjectDb.openSync(gitDir);
    let head: string | null;
    try {
      for (const w of plan.wants) {
        if (!db.hasSync(w)) throw new PackError(`the server's pack lacks ${w}, which it advertised`, 'the server is inconsistent; clone again');
      }
      head = await writeRefs(db, refs, plan, shape, { url: url.url, parent: bare ? null : parent });
      if (shape.checkout && head) {
        const backfill = shape.filter ? { url, mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose, progress: opts.progress } : null;
        received.objects += await checkoutHead(head, { db, gitDir, workTree: tmp, backfill, progress: opts.progress, verbose: opts.verbose });
      } else if (!bare && plan.wants.length && !head) {
        opts.say?.(`warning: remote HEAD refers to nonexistent ref, unable to checkout`);
      }
    } finally {
      db.close();
    }
    if (resumable) clearResume(target);
    // rename(2) also replaces an empty directory, which git allows as a clone target.
    renameSync(tmp, target);
    opts.onTempDir?.(null);
    return { dir: target, head, detached: plan.detached && shape.checkout, objects: received.objects };
  } catch (e) {
    session?.destroy();
    rmSync(tmp, { recursive: true, force: true });
    const kept = resumable && existsSync(resumeDir(target));
    if (createdParent && !kept) rmSync(createdParent, { recursive: true, force: true });
    if (kept) opts.say?.(`The downloads so far are kept in ${resumeDir(target)}: run \`mpgit clone --resume ${shown}\` (or the same clone again) to continue.`);
    opts.onTempDir?.(null);
    throw wrapSocketError(e, url);
  }
}

/** The flags an interrupted clone records, to resume in the same shape. */
function cloneFlags(o: CloneFlags): CloneFlags {
  return { mirror: o.mirror, singleBranch: o.singleBranch, origin: o.origin, tags: o.tags, checkout: o.checkout, filter: o.filter, recurseSubmodules: o.recurseSubmodules };
}

/**
 * The clone's refs (writeCloneRefs), HEAD detached where the plan says so, and the reflogs git
 * starts in a clone with a work tree (`parent`: where git would read the identity; null: bare,
 * nothing logged). Returns HEAD's commit, or null.
 */
async function writeRefs(db: ObjectDb, refs: RemoteRef[], plan: ClonePlan, shape: CloneShape, o: { url: string; parent: string | null }): Promise<string | null> {
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
