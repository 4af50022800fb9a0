// The step clone and fetch share: ask the server for a pack, receive and index it into the
// repository (completing a thin pack from its objects), take the shallow lines, then the packs
// it names by URI, and check that everything the wants reach is here.

import { humanBytes, type ProgressSink } from '../progress.js';
import { RemoteProgress } from '../protocol/sideband.js';
import { PACKFILE_URI_PROTOCOLS, type PackfileUri } from '../protocol/packfile-uris.js';
import type { FetchRequest } from '../protocol/negotiation.js';
import type { RemoteRef } from '../protocol/wire.js';
import { checkConnected } from '../repo/connectivity.js';
import type { ObjectDb } from '../repo/odb.js';
import { writePromisorFile } from '../repo/promisor.js';
import { readShallow, updateShallow } from '../repo/shallow.js';
import { receivePack } from './receive.js';
import type { RemoteSession } from './session.js';
import { receivePackfileUris } from './uri-packs.js';

export interface FetchIntoOptions extends Pick<FetchRequest, 'wants' | 'haves' | 'shallow' | 'depth' | 'thinPack' | 'filter'> {
  session: RemoteSession;
  gitDir: string;
  /** Where the new packs become visible (fetch reads on with it), and the local objects a thin pack is completed from. */
  db?: ObjectDb;
  /** zlib level of the bases appended to a thin pack. */
  compressionLevel?: number;
  /** Ask for packfile URIs (default true). */
  packfileUris?: boolean;
  /** A promisor remote's refs: the received pack is marked as a promisor pack. */
  promisorRefs?: RemoteRef[];
  /**
   * When to run the connectivity check: 'always' (fetch; a clone seeded from bundles), 'uris'
   * (only when packs came by URI: the inline pack alone is complete), or 'never' (a promisor
   * remote, where anything may be missing by design).
   */
  connectivity: 'always' | 'uris' | 'never';
  /** The repository as it was before (complete): the check stops there. */
  before?: ObjectDb | null;
  /** Called once the inline pack is in, before the URIs are downloaded (a clone records how to resume). */
  beforeUris?: (inline: { packPath: string; idxPath: string; checksum: string }, res: { shallow: string[]; unshallow: string[]; packfileUris: PackfileUri[] }) => Promise<void> | void;
  /** Record the server's shallow lines in .git/shallow (default true; not for a side fetch of one commit's tree). */
  recordShallow?: boolean;
  /** Where partial URI downloads live (default under the git dir). */
  downloadDir?: string;
  mptcp: boolean;
  progress: ProgressSink | null;
  say: ((line: string) => void) | null;
  verbose: ((line: string) => void) | null;
}

export interface FetchedInto {
  objects: number;
  shallow: string[];
  unshallow: string[];
  packfileUris: PackfileUri[];
}

export async function fetchInto(o: FetchIntoOptions): Promise<FetchedInto> {
  const remoteProgress = o.progress ? new RemoteProgress(o.progress.write, o.progress.tty) : null;
  const res = await o.session.fetch({
    wants: o.wants,
    haves: o.haves,
    shallow: o.shallow,
    depth: o.depth,
    thinPack: o.thinPack,
    progress: !!o.progress,
    packfileUris: o.packfileUris === false ? undefined : PACKFILE_URI_PROTOCOLS,
    filter: o.filter,
    onProgress: (c) => remoteProgress?.push(c),
  });
  // git's words; the repository still becomes a partial one (promisor remote), as with git.
  if (o.filter && !res.filtered) o.say?.('warning: filtering not recognized by server, ignoring');
  let objects = 0;
  let inline: { packPath: string; idxPath: string; checksum: string };
  try {
    const pack = await receivePack(res.pack, o.gitDir, { fixThin: o.thinPack ? o.db : undefined, compressionLevel: o.compressionLevel, progress: o.progress });
    if (o.promisorRefs) writePromisorFile(pack.packPath, o.promisorRefs);
    o.db?.addPack(pack.packPath, pack.idxPath);
    inline = pack;
    objects += pack.objectCount;
    const thin = pack.appendedBases ? ` (thin pack: ${pack.appendedBases} base${pack.appendedBases === 1 ? '' : 's'} completed from local objects)` : '';
    o.verbose?.(`Received ${pack.objectCount} objects${thin} (${humanBytes(pack.bytes)}) in ${(pack.receiveMs / 1000).toFixed(2)} s and indexed them in ${(pack.indexMs / 1000).toFixed(2)} s`);
  } finally {
    remoteProgress?.flush();
  }
  if (o.recordShallow !== false) updateShallow(o.gitDir, res.shallow, res.unshallow);
  if (res.packfileUris.length) {
    await o.beforeUris?.(inline, res);
    objects += await receiveUris(o.gitDir, res.packfileUris, o);
  }
  if (o.connectivity === 'always' || (o.connectivity === 'uris' && res.packfileUris.length)) {
    await checkConnected(o.gitDir, o.wants, { shallow: readShallow(o.gitDir), before: o.before });
  }
  return { objects, shallow: res.shallow, unshallow: res.unshallow, packfileUris: res.packfileUris };
}

/** Downloads and indexes the packs `uris` name (resumably); returns the objects they hold. */
export async function receiveUris(gitDir: string, uris: PackfileUri[], o: Pick<FetchIntoOptions, 'db' | 'downloadDir' | 'mptcp' | 'progress' | 'say'>): Promise<number> {
  let objects = 0;
  for (const p of await receivePackfileUris(gitDir, uris, { progress: o.progress, say: o.say, downloadDir: o.downloadDir, mptcp: o.mptcp })) {
    o.db?.addPack(p.packPath, p.idxPath);
    objects += p.objectCount;
  }
  return objects;
}
