// mpgit clone: list the remote's refs, fetch one pack, index it, write refs, config and the
// shallow file, check out HEAD and write the index. Everything happens in a temporary
// directory next to the target, renamed into place at the very end, so a failed clone
// leaves nothing behind.

import { renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { initRepository } from '../repo/layout.js';
import { ObjectDb } from '../repo/odb.js';
import { checkoutClone } from './clone-checkout.js';
import { fetchClone, remoteRefs, type CloneLink } from './clone-fetch.js';
import type { CloneOptions, CloneResult } from './clone-options.js';
import { cloneConfig, planClone, writeRefs } from './clone-refs.js';
import { startClone } from './clone-start.js';
import { abandonTarget, prepareTarget } from './clone-target.js';
import { wrapSocketError } from './connection.js';
import { clearResume } from './resume.js';

export type { CloneOptions, CloneResult } from './clone-options.js';

export async function clone(opts: CloneOptions): Promise<CloneResult> {
  const start = startClone(opts);
  const { target, shown, shape } = start;
  const prepared = prepareTarget(target, shown, { bare: shape.bare, resuming: !!start.record, say: opts.say });
  const { tmp } = prepared;
  opts.onTempDir?.(tmp);
  const gitDir = shape.bare ? tmp : join(tmp, '.git');
  opts.say?.(shape.bare ? `Cloning into bare repository '${shown}'...` : `Cloning into '${shown}'...`);
  const link: CloneLink = { session: null, resumable: !!start.record };
  try {
    const refs = await remoteRefs(start, opts, link);
    const plan = planClone(refs, start.branch, shape);
    for (const w of plan.warnings) opts.say?.(w);
    initRepository(gitDir, cloneConfig(start.url.url, shape, plan), plan.headRef ?? `refs/heads/${plan.branch ?? 'master'}`);
    let objects = await fetchClone({ start, opts, link, gitDir, refs, plan });

    const db = ObjectDb.openSync(gitDir);
    let head: string | null;
    try {
      head = await writeRefs(db, refs, plan, shape, { url: start.url.url, parent: shape.bare ? null : dirname(target) });
      const backfill = shape.filter ? { url: start.url, mptcp: opts.mptcp, protocolVersion: opts.protocolVersion, verbose: opts.verbose, progress: opts.progress } : null;
      objects += await checkoutClone(head, { db, gitDir, workTree: tmp, backfill, progress: opts.progress, verbose: opts.verbose, say: opts.say, checkout: shape.checkout, bare: shape.bare, fetched: plan.wants.length > 0 });
    } finally {
      db.close();
    }
    if (link.resumable) clearResume(target);
    // rename(2) also replaces an empty directory, which git allows as a clone target.
    renameSync(tmp, target);
    opts.onTempDir?.(null);
    return { dir: target, head, detached: plan.detached && shape.checkout, objects };
  } catch (e) {
    link.session?.destroy();
    abandonTarget(prepared, { shown, resumable: link.resumable, say: opts.say });
    opts.onTempDir?.(null);
    throw wrapSocketError(e, start.url);
  }
}
