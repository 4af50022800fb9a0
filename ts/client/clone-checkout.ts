// The last step of a clone with a work tree: HEAD's tree into the work tree and the index
// (after fetching what a partial clone's filter left out of it, as git does).

import { join } from 'node:path';
import { PackError } from '../errors.js';
import { Progress, type ProgressSink } from '../progress.js';
import { checkout } from '../repo/checkout.js';
import type { ObjectDb } from '../repo/odb.js';
import { backfillForCheckout, type BackfillOptions } from './partial-clone.js';

/** Delay before the checkout shows its meter (git's delayed progress). */
const CHECKOUT_PROGRESS_DELAY_MS = 1000;

export interface CheckoutHeadOptions {
  db: ObjectDb;
  gitDir: string;
  workTree: string;
  /** A partial clone: fetch the blobs of HEAD's tree first, with these. */
  backfill: Omit<BackfillOptions, 'db' | 'gitDir'> | null;
  progress: ProgressSink | null;
  verbose: ((line: string) => void) | null;
}

/** Checks out commit `head`; returns the objects a partial clone fetched for it. */
export async function checkoutHead(head: string, o: CheckoutHeadOptions): Promise<number> {
  const commit = o.db.readCommit(head);
  if (!commit) throw new PackError(`HEAD ${head} is not a commit in the received pack`, 'the server sent an incomplete pack; clone again');
  const backfilled = o.backfill ? await backfillForCheckout({ ...o.backfill, gitDir: o.gitDir, db: o.db }, commit.tree) : 0;
  const t0 = Date.now();
  const meter = new Progress(o.progress, 'Updating files', 0, { delayMs: CHECKOUT_PROGRESS_DELAY_MS });
  const { entries } = await checkout(o.db, commit.tree, o.workTree, {
    indexPath: join(o.gitDir, 'index'),
    onProgress: (done, total) => {
      meter.setTotal(total);
      meter.update(done);
    },
  });
  meter.done(entries);
  o.verbose?.(`Checked out ${entries} files and wrote the index in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
  return backfilled;
}

/**
 * A clone's last step: HEAD checked out where the clone has a work tree, or git's warning when
 * the remote's HEAD names nothing it sent. Returns the objects a partial clone fetched for it.
 */
export async function checkoutClone(head: string | null, o: CheckoutHeadOptions & { checkout: boolean; bare: boolean; fetched: boolean; say: ((line: string) => void) | null }): Promise<number> {
  if (o.checkout && head) return checkoutHead(head, o);
  if (!o.bare && o.fetched && !head) o.say?.(`warning: remote HEAD refers to nonexistent ref, unable to checkout`);
  return 0;
}
