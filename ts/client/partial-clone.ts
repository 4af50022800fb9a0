// Partial clone (--filter): packs fetched from a promisor remote get a .promisor file beside
// them (git's mark: objects they refer to may be missing and are fetched on demand), and a
// checkout first gets what the filter left out of the tree it checks out, in follow-up fetches
// from the same remote as git does: missing trees (tree:<depth>) with blobs filtered, then the
// blobs, all in one request.

import { MpgitError } from '../errors.js';
import type { ObjectDb } from '../repo/odb.js';
import { parseTree, MODE_GITLINK, MODE_TREE } from '../repo/objects.js';
import type { ProgressSink } from '../progress.js';
import { RemoteSession } from './session.js';
import { fetchInto } from './fetch-into.js';
import type { GitUrl } from './url.js';

/** Rounds of tree fetching before we give up (each round fetches every missing tree found). */
const MAX_TREE_ROUNDS = 64;

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

export interface BackfillOptions {
  url: GitUrl;
  gitDir: string;
  db: ObjectDb;
  mptcp?: boolean;
  protocolVersion?: 0 | 2;
  verbose: ((line: string) => void) | null;
  progress: ProgressSink | null;
}

/** One follow-up fetch of `wants` (no haves: these are objects, not history), kept as a promisor pack. */
async function fetchObjects(opts: BackfillOptions, wants: string[], filter?: string): Promise<number> {
  const session = await RemoteSession.open(opts.url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
  try {
    const got = await fetchInto({
      session,
      gitDir: opts.gitDir,
      db: opts.db,
      wants,
      thinPack: false,
      packfileUris: false,
      filter,
      promisorRefs: [],
      connectivity: 'never',
      mptcp: !!opts.mptcp,
      progress: opts.progress,
      say: null,
      verbose: opts.verbose,
    });
    await session.close();
    return got.objects;
  } catch (e) {
    session.destroy();
    throw e;
  }
}

/** Fetches what the checkout of `tree` needs and the filter left out; returns the objects received. */
export async function backfillForCheckout(opts: BackfillOptions, tree: string): Promise<number> {
  let objects = 0;
  for (let round = 0; ; round++) {
    const missing = missingUnder(opts.db, tree);
    if (missing.trees.length) {
      if (round >= MAX_TREE_ROUNDS) throw new MpgitError('MPGIT_BAD_PACK', `trees still missing after ${MAX_TREE_ROUNDS} fetches: ${missing.trees.slice(0, 3).join(', ')}`, 'the server does not send the trees asked for; clone without --filter');
      objects += await fetchObjects(opts, missing.trees, 'blob:none');
      continue;
    }
    if (missing.blobs.length) {
      opts.verbose?.(`Fetching ${missing.blobs.length} blobs for the checkout`);
      objects += await fetchObjects(opts, missing.blobs);
      const still = missingUnder(opts.db, tree).blobs;
      if (still.length) throw new MpgitError('MPGIT_BAD_PACK', `the server did not send ${still.length} blobs asked for (${still[0]}...)`, 'the server does not allow these objects to be fetched; clone without --filter');
    }
    return objects;
  }
}
