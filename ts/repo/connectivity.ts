// The connectivity check (git's check_connected): every object the new refs reach is present.
// With packfile URIs the inline pack alone is not complete, so clone and fetch run this after
// the URI packs are in. The core walks (crates/core/src/odb/connect.rs, native or WebAssembly).

import { MpgitError } from '../errors.js';
import { core, coreError, coreMissing } from '../core/index.js';
import { ObjectDb } from './odb.js';
import { readShallow } from './shallow.js';

/** What to do about a connectivity failure. */
const MISSING_HINT = 'the server sent an incomplete answer; fetch again (with --no-packfile-uris if its URIs are at fault)';

/**
 * Checks that every object reachable from `tips` is in the repository (what git's
 * check_connected does after a fetch): with packfile URIs the inline pack alone is not
 * complete, and a clone or fetch must not count as done until the URI packs fill it.
 * `before` is the object database as it was before the fetch: what it had was complete, so
 * the walk stops there (with git, the refs play that part: `--not --all`). `shallow` commits
 * (and those of the repository's shallow file) have no parents here by design. Returns the
 * objects reached.
 */
export async function checkConnected(gitDir: string, tips: string[], opts: { shallow?: Iterable<string>; before?: ObjectDb | null } = {}): Promise<{ objects: number }> {
  const n = core.connectivity;
  if (!n) throw new MpgitError('MPGIT_NO_CORE', `the ${core.kind} core cannot check connectivity: ${coreMissing('connectivity')}`, 'run `npm run build:native`, or reinstall mpgit');
  // The repository's shallow file counts, as it does for git.
  const shallow = [...new Set([...readShallow(gitDir), ...(opts.shallow ?? [])])];
  const db = ObjectDb.openSync(gitDir);
  try {
    return await n.connectivityCheck(db.handle, tips, shallow, opts.before?.handle ?? null);
  } catch (e) {
    const t = coreError(e);
    throw t instanceof MpgitError && t.code === 'MPGIT_MISSING_OBJECTS' ? new MpgitError(t.code, t.message, MISSING_HINT) : t;
  } finally {
    db.close();
  }
}
