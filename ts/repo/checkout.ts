// Checking out a tree into an empty work tree and writing the index for it: the core does it
// all (crates/core/src/odb/checkout.rs, native or WebAssembly): directories first, then every
// file, symlink and gitlink (an empty directory, as git leaves a submodule that is not
// initialized), each file's stat taken from its open descriptor for the index.

import { availableParallelism } from 'node:os';
import { MpgitError } from '../errors.js';
import { core, coreCall, coreMissing } from '../core/index.js';
import type { ObjectDb } from './odb.js';

export interface CheckoutOptions {
  onProgress?: (done: number, total: number) => void;
}

/** How often the core's checkout counters are read for the progress meter. */
const PROGRESS_POLL_MS = 100;

/**
 * Writes the tree `treeOid` into `workTree`, which must hold none of its paths, then the index
 * for it at `indexPath` (null: no index). Returns the number of index entries (files,
 * symlinks, gitlinks).
 */
export async function checkout(db: ObjectDb, treeOid: string, workTree: string, opts: CheckoutOptions & { indexPath: string | null }): Promise<{ entries: number }> {
  const n = core.checkout;
  if (!n) throw new MpgitError('MPGIT_NO_CORE', `the ${core.kind} core cannot check out: ${coreMissing('checkout')}`, 'run `npm run build:native`, or reinstall mpgit');
  const job = coreCall(() => n.checkoutNew(db.handle, treeOid, workTree, { threads: availableParallelism(), indexPath: opts.indexPath }));
  const report = () => {
    const p = n.checkoutProgress(job);
    if (p.total) opts.onProgress?.(p.done, p.total);
  };
  const timer = opts.onProgress ? setInterval(report, PROGRESS_POLL_MS) : null;
  try {
    const r = await coreCall(() => n.checkoutRun(job));
    report();
    return { entries: r.entries };
  } finally {
    if (timer) clearInterval(timer);
  }
}
