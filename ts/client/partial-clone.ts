// Partial clone (--filter): packs fetched from a promisor remote get a .promisor file beside
// them (git's mark: objects they refer to may be missing and are fetched on demand), and a
// checkout first gets what the filter left out of the tree it checks out, in follow-up fetches
// from the same remote as git does: missing trees (tree:<depth>) with blobs filtered, then the
// blobs, all in one request. A clone asks for the checkout's tree and blobs on a second
// connection while the history comes (prefetchCheckout), so little or nothing is left then.

import { writeFileSync } from 'node:fs';
import { MpgitError } from '../errors.js';
import type { ObjectDb } from '../repo/odb.js';
import { parseTree, MODE_GITLINK, MODE_TREE } from '../repo/objects.js';
import { RemoteProgress } from '../protocol/sideband.js';
import type { ProgressSink } from '../progress.js';
import { RemoteSession } from './session.js';
import { receivePack, type ReceivedPack } from './receive.js';
import type { GitUrl } from './url.js';

/** Rounds of tree fetching before we give up (each round fetches every missing tree found). */
const MAX_TREE_ROUNDS = 64;

/** The .promisor file of a pack: the refs it was fetched for, "<oid> <name>" per line, as git writes it. */
export function writePromisorFile(packPath: string, refs: { name: string; oid: string | null }[]): void {
  const text = refs
    .filter((r) => r.oid)
    .map((r) => `${r.oid} ${r.name}\n`)
    .join('');
  writeFileSync(packPath.replace(/\.pack$/, '.promisor'), text, { mode: 0o600 });
}

/** What of `tree` is missing: trees (their contents unknown yet) and blobs. */
function missingUnder(db: ObjectDb, tree: string): { trees: string[]; blobs: string[] } {
  const trees = new Set<string>();
  const blobs = new Set<string>();
  const seen = new Set<string>();
  const stack = [tree];
  while (stack.length) {
    const oid = stack.pop()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    const obj = db.readSync(oid);
    if (!obj) {
      trees.add(oid);
      continue;
    }
    if (obj.type !== 'tree') throw new MpgitError('MPGIT_BAD_PACK', `object ${oid} is a ${obj.type}, not a tree`);
    for (const e of parseTree(obj.data, oid)) {
      if (e.mode === MODE_GITLINK) continue;
      if (e.mode === MODE_TREE) stack.push(e.oid);
      else if (!blobs.has(e.oid) && !db.hasSync(e.oid)) blobs.add(e.oid);
    }
  }
  return { trees: [...trees], blobs: [...blobs] };
}

export interface RemoteObjectsOptions {
  url: GitUrl;
  gitDir: string;
  mptcp?: boolean;
  protocolVersion?: 0 | 2;
  verbose: ((line: string) => void) | null;
  progress: ProgressSink | null;
}

export interface BackfillOptions extends RemoteObjectsOptions {
  db: ObjectDb;
}

/**
 * One fetch of `wants` besides the clone's own (no haves: these are objects, not history),
 * kept as a promisor pack. `depth` 1 asks for a commit with its whole tree: a shallow answer
 * whose shallow-info is not recorded, since the clone's history fetch brings the rest.
 */
async function fetchObjects(opts: RemoteObjectsOptions, wants: string[], how: { filter?: string; depth?: number } = {}): Promise<ReceivedPack> {
  const session = await RemoteSession.open(opts.url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
  try {
    const remoteProgress = opts.progress ? new RemoteProgress(opts.progress.write, opts.progress.tty) : null;
    const res = await session.fetch({ wants, thinPack: false, progress: !!opts.progress, ...how, onProgress: (c) => remoteProgress?.push(c) });
    const pack = await receivePack(res.pack, opts.gitDir, { progress: opts.progress });
    remoteProgress?.flush();
    writePromisorFile(pack.packPath, []);
    await session.close();
    return pack;
  } catch (e) {
    session.destroy();
    throw e;
  }
}

async function fetchInto(opts: BackfillOptions, wants: string[], filter?: string): Promise<number> {
  const pack = await fetchObjects(opts, wants, { filter });
  opts.db.addPack(pack.packPath, pack.idxPath);
  return pack.objectCount;
}

/**
 * Starts fetching the commit to check out with its whole tree, on a connection of its own,
 * while the filtered history comes on the clone's: the checkout's blobs then arrive alongside
 * the history instead of in a follow-up fetch after it. Resolves to null (said with -v) when
 * the server cannot answer it; the follow-up fetch then gets what is missing.
 */
export async function prefetchCheckout(opts: RemoteObjectsOptions, commit: string): Promise<ReceivedPack | null> {
  try {
    return await fetchObjects({ ...opts, progress: null }, [commit], { depth: 1 });
  } catch (e) {
    opts.verbose?.(`The checkout's objects could not be fetched alongside the history (${(e as Error).message}); they follow it`);
    return null;
  }
}

/** Fetches what the checkout of `tree` needs and the filter left out; returns the objects received. */
export async function backfillForCheckout(opts: BackfillOptions, tree: string): Promise<number> {
  let objects = 0;
  for (let round = 0; ; round++) {
    const missing = missingUnder(opts.db, tree);
    if (missing.trees.length) {
      if (round >= MAX_TREE_ROUNDS) throw new MpgitError('MPGIT_BAD_PACK', `trees still missing after ${MAX_TREE_ROUNDS} fetches: ${missing.trees.slice(0, 3).join(', ')}`, 'the server does not send the trees asked for; clone without --filter');
      objects += await fetchInto(opts, missing.trees, 'blob:none');
      continue;
    }
    if (missing.blobs.length) {
      opts.verbose?.(`Fetching ${missing.blobs.length} blobs for the checkout`);
      objects += await fetchInto(opts, missing.blobs);
      const still = missingUnder(opts.db, tree).blobs;
      if (still.length) throw new MpgitError('MPGIT_BAD_PACK', `the server did not send ${still.length} blobs asked for (${still[0]}...)`, 'the server does not allow these objects to be fetched; clone without --filter');
    }
    return objects;
  }
}
