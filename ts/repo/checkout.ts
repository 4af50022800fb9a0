// Checking out a tree into an empty work tree and writing the index for it: directories
// first, then every file, symlink and gitlink (an empty directory, as git leaves a submodule
// that is not initialized). Each file's stat is taken from its open descriptor, for the index.
// The Rust core does it all (crates/core/src/odb/checkout.rs) when the addon loads; the
// TypeScript path below (worker threads, ./index-file.ts) is the fallback without it.

import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { PackError } from '../errors.js';
import { core, coreCall } from '../core/index.js';
import type { ObjectDb } from './odb.js';
import { parseTree, MODE_TREE, MODE_EXEC, MODE_SYMLINK, MODE_GITLINK, MODE_FILE } from './objects.js';
import { encodeIndex, type IndexEntry, type StatData } from './index-file.js';
import { writeLocked } from './lockfile.js';

/** Deepest tree nesting we follow. */
const MAX_TREE_DEPTH = 4096;

export interface CheckoutOptions {
  onProgress?: (done: number, total: number) => void;
}

/** How often the native checkout's counters are read for the progress meter. */
const PROGRESS_POLL_MS = 100;

/**
 * Writes the tree `treeOid` into `workTree`, which must hold none of its paths, then the index
 * for it at `indexPath` (null: no index). Returns the number of index entries (files,
 * symlinks, gitlinks).
 */
export async function checkout(db: ObjectDb, treeOid: string, workTree: string, opts: CheckoutOptions & { indexPath: string | null }): Promise<{ entries: number }> {
  const n = core.checkout;
  const handle = db.handle;
  if (handle && n) {
    const job = coreCall(() => n.checkoutNew(handle, treeOid, workTree, { threads: availableParallelism(), indexPath: opts.indexPath }));
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
  const entries = await checkoutTree(db, treeOid, workTree, opts);
  if (opts.indexPath) writeLocked(opts.indexPath, encodeIndex(entries));
  return { entries: entries.length };
}

export interface Item {
  path: string;
  mode: number;
  oid: string;
}

/** Lists the non-tree entries of `treeOid`, depth first in index order, and the directories. */
export function flattenTree(db: ObjectDb, treeOid: string): { items: Item[]; dirs: string[] } {
  const items: Item[] = [];
  const dirs: string[] = [];
  const walk = (oid: string, prefix: string, depth: number) => {
    if (depth > MAX_TREE_DEPTH) throw new PackError(`tree ${oid} nests deeper than ${MAX_TREE_DEPTH} levels`);
    const obj = db.readSync(oid);
    if (!obj) throw new PackError(`tree ${oid} is missing from the repository`, 'the pack is incomplete; clone again');
    if (obj.type !== 'tree') throw new PackError(`${oid} is a ${obj.type}, expected a tree`);
    for (const e of parseTree(obj.data, oid)) {
      const path = prefix + e.name;
      if (e.mode === MODE_TREE) {
        dirs.push(path);
        walk(e.oid, `${path}/`, depth + 1);
      } else {
        const mode = e.mode === MODE_GITLINK || e.mode === MODE_SYMLINK ? e.mode : e.mode & 0o111 ? MODE_EXEC : MODE_FILE;
        items.push({ path, mode, oid: e.oid });
      }
    }
  };
  walk(treeOid, '', 0);
  return { items, dirs };
}

/** Writes one entry of the work tree; returns its stat for the index (null for a gitlink). */
export function writeEntry(db: ObjectDb, item: Item, workTree: string): StatData | null {
  const abs = join(workTree, item.path);
  if (item.mode === MODE_GITLINK) {
    mkdirSync(abs);
    return null;
  }
  const obj = db.readSync(item.oid);
  if (!obj) throw new PackError(`blob ${item.oid} (${item.path}) is missing from the repository`, 'the pack is incomplete; clone again');
  if (obj.type !== 'blob') throw new PackError(`${item.path}: ${item.oid} is a ${obj.type}, expected a blob`);
  if (item.mode === MODE_SYMLINK) {
    symlinkSync(obj.data.toString('utf8'), abs);
    return pick(lstatSync(abs, { bigint: true }));
  }
  // Created 0666/0777 so the umask applies, as git does.
  const fd = openSync(abs, 'wx', item.mode === MODE_EXEC ? 0o777 : 0o666);
  try {
    const data = obj.data;
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
    return pick(fstatSync(fd, { bigint: true }));
  } finally {
    closeSync(fd);
  }
}

const pick = (s: StatData): StatData => ({ ctimeNs: s.ctimeNs, mtimeNs: s.mtimeNs, dev: s.dev, ino: s.ino, uid: s.uid, gid: s.gid, size: s.size });

/** Entries per unit of work handed to a thread (contiguous, so delta bases are shared). */
const SLICE = 512;
/** Threads decoding and writing at most (each has its own object database and caches). */
const MAX_THREADS = 4;

/** A slice of work for a checkout thread, and its answer. */
export interface SliceRequest {
  start: number;
  items: Item[];
}
export type SliceAnswer = { start: number; stats: (StatData | null)[] } | { error: { message: string; code?: string; hint?: string; name?: string } };

/**
 * The TypeScript checkout: writes the tree `treeOid` into `workTree` (which must be empty);
 * returns the index entries.
 * Decoding blobs (inflate, deltas) is CPU work and writing them is syscalls; both are spread
 * over threads that each take contiguous slices of the tree in turn. Small trees are written
 * on this thread: starting threads would cost more than it saves.
 */
export async function checkoutTree(db: ObjectDb, treeOid: string, workTree: string, opts: CheckoutOptions = {}): Promise<IndexEntry[]> {
  const { items, dirs } = flattenTree(db, treeOid);
  for (const d of dirs) mkdirSync(join(workTree, d));
  const entries: IndexEntry[] = items.map((it) => ({ path: it.path, mode: it.mode, oid: it.oid, stat: null }));
  const threads = Math.min(MAX_THREADS, availableParallelism(), Math.floor(items.length / SLICE));
  if (threads < 2) {
    for (let i = 0; i < items.length; i++) {
      entries[i]!.stat = writeEntry(db, items[i]!, workTree);
      if ((i & 255) === 255) opts.onProgress?.(i + 1, items.length);
    }
    opts.onProgress?.(items.length, items.length);
    return entries;
  }
  // The threads read the packs themselves: what this thread cached for the trees can go.
  db.releaseCaches();
  let next = 0;
  let done = 0;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = threads;
      let settled = false;
      const fail = (e: Error) => {
        if (!settled) reject(e);
        settled = true;
      };
      const feed = (w: Worker) => {
        if (settled) return;
        if (next >= items.length) {
          if (--running === 0) {
            settled = true;
            resolve();
          }
          return;
        }
        const req: SliceRequest = { start: next, items: items.slice(next, next + SLICE) };
        next += SLICE;
        w.postMessage(req);
      };
      for (let k = 0; k < threads; k++) {
        const w = startWorker({ gitDir: db.gitDir, workTree });
        workers.push(w);
        w.on('message', (m: SliceAnswer) => {
          if ('error' in m) {
            const { message, hint, code, name } = m.error;
            return fail(name === 'PackError' ? new PackError(message, hint) : Object.assign(new Error(message), { code }));
          }
          m.stats.forEach((st, j) => (entries[m.start + j]!.stat = st));
          done += m.stats.length;
          opts.onProgress?.(done, items.length);
          feed(w);
        });
        w.on('error', fail);
        w.on('exit', (code) => fail(new Error(`a checkout thread exited (code ${code}) before the checkout was done`)));
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return entries;
}

/**
 * A checkout thread. From dist/ it is plain JavaScript; run from the TypeScript sources (tests,
 * benches under tsx) the thread must register the loader itself before importing the module.
 */
function startWorker(workerData: { gitDir: string; workTree: string }): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./checkout-worker.js', import.meta.url), { workerData });
  const url = new URL('./checkout-worker.ts', import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`, { eval: true, workerData });
}
