// The connectivity check (git's check_connected): every object the new refs reach is present.
// With packfile URIs the inline pack alone is not complete, so clone and fetch run this after
// the URI packs are in. The Rust core walks when the addon has it; `walkConnected` otherwise.

import { MpgitError } from '../errors.js';
import { core, coreError } from '../core/index.js';
import { ObjectDb } from './odb.js';
import { parseCommit, parseTag, parseTree, MODE_GITLINK, MODE_TREE } from './objects.js';
import { readShallow } from './shallow.js';

/** What to do about a connectivity failure. */
const MISSING_HINT = 'the server sent an incomplete answer; fetch again (with --no-packfile-uris if its URIs are at fault)';

/**
 * Checks that every object reachable from `tips` is in the repository (what git's
 * check_connected does after a fetch): with packfile URIs the inline pack alone is not
 * complete, and a clone or fetch must not count as done until the URI packs fill it.
 * `before` is the object database as it was before the fetch: what it had was complete, so
 * the walk stops there (with git, the refs play that part: `--not --all`). `shallow` commits
 * (and those of the repository's shallow file) have no parents here by design. Walked by the Rust core on libuv's pool when the addon
 * loads, else in process by `walkConnected`. Returns the objects reached.
 */
export async function checkConnected(gitDir: string, tips: string[], opts: { shallow?: Iterable<string>; before?: ObjectDb | null } = {}): Promise<{ objects: number }> {
  const before = opts.before ?? null;
  // The repository's shallow file counts, as it does for git.
  const shallow = [...new Set([...readShallow(gitDir), ...(opts.shallow ?? [])])];
  const n = core.connectivity;
  if (n && (!before || before.handle)) {
    const db = ObjectDb.openSync(gitDir);
    try {
      if (db.handle) return await n.connectivityCheck(db.handle, tips, shallow, before?.handle ?? null);
    } catch (e) {
      const t = coreError(e);
      throw t instanceof MpgitError && t.code === 'MPGIT_MISSING_OBJECTS' ? new MpgitError(t.code, t.message, MISSING_HINT) : t;
    } finally {
      db.close();
    }
  }
  return walkConnected(gitDir, tips, { shallow, before });
}

/** The TypeScript walk (without the addon). */
export function walkConnected(gitDir: string, tips: string[], opts: { shallow?: Iterable<string>; before?: ObjectDb | null } = {}): { objects: number } {
  const cut = new Set(opts.shallow ?? []);
  const before = opts.before ?? null;
  const db = ObjectDb.openSync(gitDir);
  // Who referred to an object, for the error message only (kept as ids, made text on failure).
  const referrer = new Map<string, string>();
  const missing = (oid: string) => {
    const from = referrer.get(oid);
    return new MpgitError('MPGIT_MISSING_OBJECTS', `object ${oid} (reached from ${from ? `object ${from}` : 'a ref'}) is missing: the fetched packs are incomplete`, MISSING_HINT);
  };
  try {
    const seen = new Set<string>();
    const stack: string[] = [];
    const push = (oid: string, from: string | null) => {
      if (seen.has(oid)) return;
      seen.add(oid);
      if (from) referrer.set(oid, from);
      stack.push(oid);
    };
    for (const t of tips) push(t, null);
    // Trees wait until the commits are walked, then go newest first: packs keep recent objects
    // whole and older ones as deltas against them, so this order resolves each delta once.
    const trees: string[] = [];
    let t = 0;
    while (stack.length || t < trees.length) {
      const oid = stack.length ? stack.pop()! : trees[t++]!;
      if (before?.hasSync(oid)) continue;
      const obj = db.readSync(oid);
      if (!obj) throw missing(oid);
      if (obj.type === 'commit') {
        const c = parseCommit(obj.data, oid);
        if (!seen.has(c.tree)) {
          seen.add(c.tree);
          referrer.set(c.tree, oid);
          trees.push(c.tree);
        }
        if (!cut.has(oid)) for (const p of c.parents) push(p, oid);
      } else if (obj.type === 'tree') {
        for (const e of parseTree(obj.data, oid)) {
          if (e.mode === MODE_GITLINK || seen.has(e.oid)) continue;
          if (e.mode === MODE_TREE) push(e.oid, oid);
          else {
            // A blob needs only to be there: no need to read it.
            seen.add(e.oid);
            if (!db.hasSync(e.oid)) {
              referrer.set(e.oid, oid);
              throw missing(e.oid);
            }
          }
        }
      } else if (obj.type === 'tag') {
        push(parseTag(obj.data, oid).object, oid);
      }
    }
    return { objects: seen.size };
  } finally {
    db.close();
  }
}
