// A clone's objects: what an interrupted clone already received plus the URI packs it had left;
// else bundles first (the server's, or --bundle-uri's), then `fetchInto()` for the rest (and, for
// a partial clone, HEAD's tree on a second connection in parallel).

import { join } from 'node:path';
import type { PackfileUri } from '../protocol/packfile-uris.js';
import type { RemoteRef } from '../protocol/wire.js';
import { zlibCompressionLevel } from '../repo/compression.js';
import { checkConnected } from '../repo/connectivity.js';
import { ObjectDb } from '../repo/odb.js';
import { updateShallow } from '../repo/shallow.js';
import { bundleTips, seedFromBundles } from './bundles.js';
import type { CloneOptions } from './clone-options.js';
import type { ClonePlan } from './clone-refs.js';
import { saveCloneRecord, type CloneRecord, type CloneStart } from './clone-start.js';
import { mptcpWanted } from './connection.js';
import { fetchInto, receiveUris, type FetchIntoOptions } from './fetch-into.js';
import { HaveWalker } from './haves.js';
import { prefetchCheckout } from './partial-clone.js';
import { restoreInlinePack, resumeDir } from './resume.js';
import { RemoteSession } from './session.js';

/** The clone's connection to the server (closed as soon as it has said all), and whether the target holds a record to resume from. */
export interface CloneLink {
  session: RemoteSession | null;
  resumable: boolean;
}

/** The remote's refs: the record's when resuming, else listed on a new connection. */
export async function remoteRefs(start: CloneStart, opts: CloneOptions, link: CloneLink): Promise<RemoteRef[]> {
  if (start.resume) return start.resume.clone.refs;
  link.session = await RemoteSession.open(start.url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
  return link.session.listRefs(start.shape.mirror ? [] : ['HEAD', 'refs/heads/', ...(start.shape.tags ? ['refs/tags/'] : [])]);
}

export interface CloneFetch {
  start: CloneStart;
  opts: CloneOptions;
  link: CloneLink;
  gitDir: string;
  refs: RemoteRef[];
  plan: ClonePlan;
}

type Common = Pick<FetchIntoOptions, 'gitDir' | 'downloadDir' | 'mptcp' | 'progress' | 'say' | 'verbose'>;

/** Brings the plan's objects into the repository; returns how many were received. */
export async function fetchClone(c: CloneFetch): Promise<number> {
  const { start, opts, link } = c;
  const common: Common = { gitDir: c.gitDir, downloadDir: join(resumeDir(start.target), 'downloads'), mptcp: mptcpWanted(opts.mptcp), progress: opts.progress, say: opts.say, verbose: opts.verbose };
  let objects = 0;
  if (start.resume) {
    // What the interrupted run received stays; only the URI packs are left to fetch.
    const { clone: record, inlinePack, uris } = start.resume;
    if (inlinePack) restoreInlinePack(start.target, c.gitDir, inlinePack);
    updateShallow(c.gitDir, record.shallow, record.unshallow);
    objects += await receiveUris(c.gitDir, uris, common);
    await checkConnected(c.gitDir, c.plan.wants, { shallow: record.shallow });
    return objects;
  }
  if (c.plan.wants.length && link.session) objects += await fetchFresh(c, link.session, common);
  else opts.say?.('warning: You appear to have cloned an empty repository.');
  await link.session?.close();
  link.session = null;
  return objects;
}

async function fetchFresh(c: CloneFetch, live: RemoteSession, common: Common): Promise<number> {
  const { start, opts, link, plan } = c;
  const { shape, depth } = start;
  // The bases appended to a thin pack (a bundle's, or the fetch after bundles) at git's level.
  const compressionLevel = zlibCompressionLevel(start.config);
  const record = (uris: PackfileUri[], inline: { packPath: string; idxPath: string; checksum: string } | null, rest: Partial<CloneRecord>) => {
    saveCloneRecord(start, opts, c.refs, uris, inline, rest);
    link.resumable = true;
  };
  // Bundles first (not for shallow or partial clones): their refs are then our haves, and the
  // server sends only the rest.
  const seeded =
    depth === undefined && !shape.filter
      ? await seedFromBundles(c.gitDir, start.target, live, { ...opts, bundleUri: start.bundleUri, bundleUris: opts.bundleUris ?? start.config.getBool('transfer.bundleURI') ?? true, mptcp: mptcpWanted(opts.mptcp), compressionLevel }, () =>
          record([], null, { bundlePhase: true, bundleUri: start.bundleUri }),
        )
      : null;
  const tips = seeded ? bundleTips(seeded) : [];
  let objects = 0;
  for (const b of seeded?.applied ?? []) objects += b.objects;
  const haveDb = tips.length ? ObjectDb.openSync(c.gitDir) : null;
  try {
    if (haveDb && plan.wants.every((w) => haveDb.hasSync(w))) {
      // The bundles brought every tip: nothing is left to fetch. As git does, a bundle's
      // pack is trusted to hold what its refs reach (its prerequisites were checked).
      opts.verbose?.('The bundles carry every ref asked for: no pack to fetch');
      return objects;
    }
    // A partial clone's checkout needs HEAD's whole tree: asked for in parallel, on a second
    // connection (not from a server without filters: its answer to the clone holds everything).
    const prefetch =
      shape.filter && shape.checkout && plan.headOid && depth === undefined && !haveDb && live.offersFilter()
        ? prefetchCheckout({ url: start.url, gitDir: c.gitDir, mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose, progress: null }, plan.headOid)
        : null;
    const got = await fetchInto({
      ...common,
      session: live,
      wants: plan.wants,
      depth: opts.depth,
      haves: haveDb ? new HaveWalker(haveDb, tips, new Set()) : undefined,
      thinPack: !!haveDb,
      db: haveDb ?? undefined,
      compressionLevel,
      packfileUris: opts.packfileUris,
      filter: shape.filter ?? undefined,
      promisorRefs: shape.filter ? c.refs : undefined,
      // After bundles, as after packfile URIs: the refs must reach only objects that are here
      // (the walk stops at what the bundles brought, as git's stops at refs/bundles/).
      connectivity: tips.length ? 'always' : 'uris',
      before: haveDb,
      beforeUris: async (inline, res) => {
        // The server has said all it will: the downloads need no connection to it.
        await live.close();
        link.session = null;
        record(res.packfileUris, inline, { shallow: res.shallow, unshallow: res.unshallow });
      },
    });
    return objects + got.objects + ((await prefetch) ?? 0);
  } finally {
    haveDb?.close();
  }
}
