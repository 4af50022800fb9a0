// Partial clone (--filter): packs fetched from a promisor remote get a .promisor file beside
// them (git's mark: objects they refer to may be missing and are fetched on demand), and a
// checkout first gets what the filter left out of the tree it checks out, in follow-up fetches
// from the same remote as git does: missing trees (tree:<depth>) with blobs filtered, then the
// blobs, all in one request. A clone asks for the checkout's tree and blobs on a second
// connection while the history comes (prefetchCheckout), so little or nothing is left then.

import { PackError } from '../errors.js';
import { ObjectDb } from '../repo/odb.js';
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
    if (obj.type !== 'tree') throw new PackError(`object ${oid} is a ${obj.type}, not a tree`);
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

/**
 * One fetch of `wants` besides the clone's own (no haves: these are objects, not history), kept
 * as a promisor pack. `depth` 1 asks for a commit with its whole tree: a shallow answer whose
 * shallow lines are not recorded, since the clone's history fetch brings the rest.
 */
async function fetchObjects(opts: Omit<BackfillOptions, 'db'> & { db?: ObjectDb }, wants: string[], how: { filter?: string; depth?: number } = {}): Promise<number> {
  const session = await RemoteSession.open(opts.url, { mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose });
  try {
    const got = await fetchInto({
      session,
      gitDir: opts.gitDir,
      db: opts.db,
      wants,
      thinPack: false,
      packfileUris: false,
      filter: how.filter,
      depth: how.depth,
      recordShallow: how.depth === undefined,
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
      if (round >= MAX_TREE_ROUNDS) throw new PackError(`trees still missing after ${MAX_TREE_ROUNDS} fetches: ${missing.trees.slice(0, 3).join(', ')}`, 'the server does not send the trees asked for; clone without --filter');
      objects += await fetchObjects(opts, missing.trees, { filter: 'blob:none' });
      continue;
    }
    if (missing.blobs.length) {
      opts.verbose?.(`Fetching ${missing.blobs.length} blobs for the checkout`);
      objects += await fetchObjects(opts, missing.blobs);
      const still = missingUnder(opts.db, tree).blobs;
      if (still.length) throw new PackError(`the server did not send ${still.length} blobs asked for (${still[0]}...)`, 'the server does not allow these objects to be fetched; clone without --filter');
    }
    return objects;
  }
}

/** Connections that fetch the checkout's objects side by side (MPGIT_CHECKOUT_FETCHES, 1 to 8). */
const CHECKOUT_FETCHES = Math.min(8, Math.max(1, Number(process.env.MPGIT_CHECKOUT_FETCHES) || 2));
/** The first request brings the trees this deep (git's tree:<depth>), to split the rest by. */
const SPLIT_TREE_DEPTH = 3;
/** Pieces to deal out over the connections (subtrees or files), so that none gets most of the work. */
const SPLIT_PIECES = 64;

/**
 * The checkout of `tree` cut into pieces (subtrees to fetch whole, or files): trees are opened,
 * widest level first, while they are here and the pieces are few. A tree here already (from
 * the filtered history) still lacks its blobs, so it is a piece all the same.
 */
function checkoutPieces(db: ObjectDb, tree: string): string[] {
  let pieces: { oid: string; tree: boolean }[] = [{ oid: tree, tree: true }];
  for (;;) {
    const next: { oid: string; tree: boolean }[] = [];
    let opened = false;
    for (const p of pieces) {
      const obj = p.tree && pieces.length + next.length < SPLIT_PIECES ? db.readSync(p.oid) : null;
      if (!obj) {
        next.push(p);
        continue;
      }
      opened = true;
      for (const e of parseTree(obj.data, p.oid)) {
        if (e.mode === MODE_GITLINK) continue;
        if (e.mode === MODE_TREE) next.push({ oid: e.oid, tree: true });
        else if (!db.hasSync(e.oid)) next.push({ oid: e.oid, tree: false });
      }
    }
    pieces = next;
    if (!opened) return [...new Set(pieces.map((p) => p.oid))];
  }
}

/**
 * Starts fetching the commit to check out with its whole tree while the filtered history comes
 * on the clone's connection: the checkout's blobs then arrive alongside the history instead of
 * in a follow-up fetch after it. First the commit and its upper trees (depth 1, filter
 * tree:<SPLIT_TREE_DEPTH>), then the pieces of the tree dealt out over CHECKOUT_FETCHES
 * connections, each a pack the server makes in parallel with the others. Resolves to the
 * objects received, or null (said with -v) when the server cannot answer: the follow-up fetch
 * then gets what is missing.
 */
export async function prefetchCheckout(opts: Omit<BackfillOptions, 'db'>, commit: string): Promise<number | null> {
  const quiet = { ...opts, progress: null };
  try {
    let objects = await fetchObjects(quiet, [commit], { depth: 1, filter: `tree:${SPLIT_TREE_DEPTH}` });
    const db = ObjectDb.openSync(opts.gitDir);
    let pieces: string[];
    try {
      const tree = db.readCommit(commit)?.tree;
      if (!tree || !db.hasSync(tree)) throw new PackError(`the server sent no root tree for ${commit}`);
      pieces = checkoutPieces(db, tree);
    } finally {
      db.close();
    }
    const groups = Array.from({ length: Math.min(CHECKOUT_FETCHES, pieces.length) }, (_, k) => pieces.filter((_, i) => i % CHECKOUT_FETCHES === k));
    for (const n of await Promise.all(groups.map((g) => fetchObjects(quiet, g)))) objects += n;
    opts.verbose?.(`Received the checkout's ${objects} objects alongside the history (${pieces.length} pieces over ${groups.length} connection${groups.length === 1 ? '' : 's'})`);
    return objects;
  } catch (e) {
    opts.verbose?.(`The checkout's objects could not be fetched alongside the history (${(e as Error).message}); they follow it`);
    return null;
  }
}
