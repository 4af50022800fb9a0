// The pack indexer of the WebAssembly core, as the IndexerCore the pack layer uses (the same
// contract as the addon's: docs/ARCHITECTURE.md). The bytes go to the pack file and through
// the instance, which parses entries as they complete and keeps what it needs of each (not the
// pack); at the end of input the delta trees are resolved in this instance (one thread) or
// split over worker threads, each with an instance of its own (ts/core/wasm-worker.ts), all
// reading entries back from the pack file by offset; the appended bases of a thin pack are
// deflated with pako (zlib's own algorithm: git's bytes); .idx/.rev come from the instance.

import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { deflate } from 'pako';
import type { CoreIndexProgress, CoreIndexResult, IndexerCore, PackHandle } from './types.js';
import { startWasmWorker, WasmCore } from './wasm.js';
import type { WorkerAnswer, WorkerRequest } from './wasm-worker.js';

/** Roots a worker takes at a time (small enough to balance uneven trees, big enough to batch). */
const ROOTS_PER_BATCH = 128;
/** Batches sent to a worker ahead of its answers. */
const BATCHES_IN_FLIGHT = 2;
/** Bytes read from a pack file per step (indexPackFile, and the checksum after --fix-thin). */
const READ_CHUNK = 8 << 20;
/** A pack file at least this big gets its resolution threads at the start (made while this
 * instance scans); smaller ones, and streams, only when there are roots enough to share. */
const EARLY_WORKERS_BYTES = 16 << 20;


/** A resolution thread: its answers go to `on` (set once resolving starts; until then only an error can come). */
interface Helper {
  worker: Worker;
  on: ((a: WorkerAnswer) => void) | null;
  failed: Error | null;
}

interface State {
  w: WasmCore;
  h: number;
  /** SHA-1 of the bytes so far but the last 20 (`held`): the trailer's check. */
  sum: Hash;
  held: Buffer;
  packPath: string;
  fd: number | null;
  threads: number;
  checksum: Buffer | null;
  helpers: Helper[];
}

const state = (h: PackHandle): State => h as unknown as State;

/** Hashes `chunk` into the trailer's SHA-1, holding back the last 20 bytes seen. */
function hashBehind(s: State, chunk: Uint8Array): void {
  const all = chunk.length >= 20 ? chunk : Buffer.concat([s.held, chunk]);
  if (all !== chunk) {
    if (all.length > 20) s.sum.update(all.subarray(0, all.length - 20));
  } else {
    s.sum.update(s.held);
    s.sum.update(chunk.subarray(0, chunk.length - 20));
  }
  s.held = Buffer.from(all.subarray(Math.max(0, all.length - 20)));
}

/** Bytes handed to the instance at a time: its scan's window holds about this much. */
const FEED_STEP = 1 << 20;

function feed(s: State, chunk: Uint8Array): void {
  hashBehind(s, chunk);
  const x = s.w.x;
  for (let at = 0; at < chunk.length; at += FEED_STEP) {
    const part = chunk.subarray(at, Math.min(at + FEED_STEP, chunk.length));
    const p = x.mp_ix_reserve(s.h, part.length);
    s.w.bytes(p, part.length).set(part);
    s.w.check(x.mp_ix_commit(s.h, 0));
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Starts the `threads - 1` resolution threads. */
function startHelpers(s: State): void {
  for (let i = s.helpers.length; i < s.threads - 1; i++) {
    const h: Helper = { worker: startWorker({ module: s.w.module, packPath: s.packPath }), on: null, failed: null };
    const fail = (e: Error) => {
      h.failed ??= e;
      h.on?.({ error: { message: e.message, code: (e as { code?: string }).code } });
    };
    h.worker.on('message', (a: WorkerAnswer) => ('error' in a ? fail(Object.assign(new Error(a.error.message), { code: a.error.code })) : h.on?.(a)));
    h.worker.on('error', fail);
    h.worker.on('exit', (code) => code && fail(new Error(`a pack resolution thread exited with ${code}`)));
    // Not keeping node alive before resolving: an indexer given up on must not hang the process.
    h.worker.unref();
    s.helpers.push(h);
  }
}

/**
 * Resolves the delta trees: here, and with more threads also in `threads - 1` workers; this
 * instance and the workers take batches of roots from one queue until it is empty.
 */
async function resolveAll(s: State): Promise<void> {
  const x = s.w.x;
  const n = s.w.check(x.mp_ix_roots(s.h));
  const roots = new Uint32Array(s.w.out(n * 4).buffer, 0, n);
  const here = (batch: Uint32Array) => s.w.withBytes(new Uint8Array(batch.buffer, batch.byteOffset, batch.byteLength), (p) => s.w.check(x.mp_ix_resolve(s.h, p, batch.length)));
  if (s.threads <= 1 || n < 2 * ROOTS_PER_BATCH) {
    stopHelpers(s);
    here(roots);
    return;
  }
  startHelpers(s);
  const table = s.w.out(s.w.check(x.mp_ix_table(s.h)));
  let next = 0;
  let failed: unknown = null;
  // This thread's share: a batch at a time, letting the workers' answers in between.
  const local = async () => {
    while (next < n && !failed) {
      const batch = roots.subarray(next, Math.min(next + ROOTS_PER_BATCH, n));
      next += batch.length;
      here(batch);
      await new Promise((r) => setImmediate(r));
    }
  };
  const one = (h: Helper, t: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      // Two batches in flight per worker: it starts the next as soon as one is done, not when
      // this thread, busy with a batch of its own, gets round to answering.
      let inFlight = 0;
      const top = () => {
        while (inFlight < BATCHES_IN_FLIGHT && !failed && next < n) {
          const batch = roots.slice(next, Math.min(next + ROOTS_PER_BATCH, n));
          next += batch.length;
          inFlight++;
          // With the kept deltas of these trees only: a worker holds none beyond its batch.
          const deltas = s.w.out(s.w.withBytes(new Uint8Array(batch.buffer), (p) => s.w.check(x.mp_ix_batch(s.h, p, batch.length))));
          h.worker.postMessage({ roots: batch, deltas } satisfies WorkerRequest, [batch.buffer, deltas.buffer as ArrayBuffer]);
        }
        if (inFlight === 0) h.worker.postMessage({ roots: null } satisfies WorkerRequest);
      };
      h.on = (a) => {
        if ('error' in a) {
          failed ??= a.error;
          reject(Object.assign(new Error(a.error.message), { code: a.error.code }));
          return;
        }
        if (a.done) return resolve();
        if (a.results) {
          s.w.withBytes(a.results, (p) => x.mp_ix_apply(s.h, p, a.results!.length / 24));
          inFlight--;
        }
        top();
      };
      if (h.failed) return h.on({ error: { message: h.failed.message, code: (h.failed as { code?: string }).code } });
      h.worker.ref();
      // Moved, not copied (the table is tens of bytes an object): each worker gets its own.
      h.worker.postMessage({ table: t } satisfies WorkerRequest, [t.buffer as ArrayBuffer]);
    });
  const workers = s.helpers.map((h, i) => one(h, i === s.helpers.length - 1 ? table : new Uint8Array(table)));
  try {
    await Promise.all([
      local().catch((e: unknown) => {
        failed = e;
        throw e;
      }),
      ...workers,
    ]);
  } finally {
    stopHelpers(s);
  }
}

function stopHelpers(s: State): void {
  for (const h of s.helpers.splice(0)) void h.worker.terminate();
}

function startWorker(workerData: object): Worker {
  return startWasmWorker('wasm-worker', workerData);
}

function missing(s: State): string[] {
  const n = s.w.check(s.w.x.mp_ix_missing(s.h));
  const b = s.w.out(n * 20);
  return Array.from({ length: n }, (_, i) => hex(b.subarray(i * 20, i * 20 + 20)));
}

/** Appends the supplied bases git would: the new entries where the trailer was, the new count,
 * then the trailer, the SHA-1 of the whole file read back (as git's --fix-thin does). */
function fixThin(s: State, level: number): number {
  const x = s.w.x;
  let appended = 0;
  for (let k = x.mp_ix_thin_next(s.h); k >= 0; k = x.mp_ix_thin_next(s.h)) {
    const data = s.w.out(x.mp_out_len());
    const z = deflate(data, { level: level as 1, legacyHash: true } as Parameters<typeof deflate>[1]);
    s.w.withBytes(z, (p, n) => s.w.check(x.mp_ix_thin_append(s.h, k, p, n)));
    appended++;
  }
  if (!appended) return 0;
  const from = x.mp_ix_original_body(s.h);
  const tail = Buffer.from(s.w.bytes(x.mp_ix_tail_ptr(s.h), x.mp_ix_tail_len(s.h)));
  const count = Buffer.alloc(4);
  count.writeUInt32BE(x.mp_ix_count_after(s.h) >>> 0);
  const fd = s.fd ?? openSync(s.packPath, 'r+');
  try {
    writeSync(fd, tail, 0, tail.length, from);
    writeSync(fd, count, 0, 4, 8);
    const sum = createHash('sha1');
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    const end = from + tail.length;
    for (let at = 0; at < end; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, end - at), at);
      if (n === 0) throw Object.assign(new Error(`${s.packPath} is shorter than the ${end} bytes written`), { code: 'EIO' });
      sum.update(buf.subarray(0, n));
      at += n;
    }
    s.checksum = sum.digest();
    writeSync(fd, s.checksum, 0, 20, end);
  } finally {
    if (fd !== s.fd) closeSync(fd);
  }
  s.w.withBytes(s.checksum, (p) => x.mp_ix_seal(s.h, p));
  return appended;
}

async function finish(s: State, opts: { idxPath: string; revPath: string | null; fixThin: boolean; compressionLevel?: number }): Promise<CoreIndexResult> {
  if (!s.checksum) throw Object.assign(new Error('finish before resolve'), { code: 'ERR_INVALID_STATE' });
  try {
    const appendedBases = opts.fixThin ? fixThin(s, opts.compressionLevel ?? 1) : 0;
    const x = s.w.x;
    const sum = s.checksum;
    const idxLen = s.w.withBytes(sum, (p) => s.w.check(x.mp_ix_index(s.h, p)));
    const files = s.w.out(x.mp_out_len());
    if (s.fd !== null) fsyncSync(s.fd);
    writeFileSync(opts.idxPath, files.subarray(0, idxLen));
    if (opts.revPath) writeFileSync(opts.revPath, files.subarray(idxLen));
    const p = progress(s);
    return { packChecksum: hex(sum), objectCount: p.objectsReceived, deltaCount: p.deltasTotal, appendedBases };
  } finally {
    release(s);
  }
}

function release(s: State): void {
  stopHelpers(s);
  if (s.fd !== null) closeSync(s.fd);
  s.fd = null;
}

function progress(s: State): CoreIndexProgress {
  const b = s.w.out(s.w.x.mp_ix_progress(s.h));
  const v = (i: number) => b.readUInt32LE(8 + i * 4);
  return { bytes: b.readDoubleLE(0), objectsTotal: v(0), objectsReceived: v(1), deltasTotal: v(2), deltasResolved: v(3) };
}

async function endAndResolve(s: State): Promise<{ missing: string[] }> {
  try {
    s.checksum = s.w.withBytes(s.sum.digest(), (p) => s.w.out(s.w.check(s.w.x.mp_ix_end(s.h, p))));
    // Resolving reads the entries back from the file (complete now: written as it came).
    s.w.withBytes(Buffer.from(s.packPath), (p, n) => s.w.check(s.w.x.mp_ix_open(s.h, p, n)));
    await resolveAll(s);
    return { missing: missing(s) };
  } catch (e) {
    release(s);
    throw e;
  }
}

/** `f`, with a trap of the handle's instance turned into the error its panic left. */
function guarded<A extends unknown[], R>(f: (h: PackHandle, ...a: A) => R): (h: PackHandle, ...a: A) => R {
  return (h, ...a) => {
    const s = state(h);
    try {
      const r = f(h, ...a);
      return (r instanceof Promise ? r.catch((e: unknown) => Promise.reject(s.w.trapped(e))) : r) as R;
    } catch (e) {
      throw s.w.trapped(e);
    }
  };
}

/** The indexer over a module (a fresh instance per pack: its memory goes with it). */
export function wasmIndexer(module: WebAssembly.Module): IndexerCore {
  const open = (packPath: string, threads: number, fd: number | null): State => {
    const w = new WasmCore(module);
    return { w, h: w.x.mp_ix_new(), sum: createHash('sha1'), held: Buffer.alloc(0), packPath, fd, threads: Math.max(1, threads), checksum: null, helpers: [] };
  };
  return {
    packIndexerNew: (packPath, opts) => open(packPath, opts.threads, openSync(packPath, 'wx+')) as unknown as PackHandle,
    packIndexerWrite: guarded((h, chunk: Buffer) => {
      const s = state(h);
      if (s.fd === null || s.checksum) throw Object.assign(new Error('write after the end of input'), { code: 'ERR_INVALID_STATE' });
      writeSync(s.fd, chunk);
      try {
        feed(s, chunk);
      } catch (e) {
        release(s);
        throw e;
      }
      return 0;
    }),
    packIndexerProgress: guarded((h) => progress(state(h))),
    packIndexerResolve: guarded((h) => endAndResolve(state(h))),
    packIndexerAddBase: guarded((h, oid: string, type: number, data: Buffer) => {
      const s = state(h);
      s.w.withBytes(Buffer.from(oid, 'hex'), (o) => s.w.withBytes(data, (p, n) => s.w.check(s.w.x.mp_ix_add_base(s.h, o, type, p, n))));
    }),
    packIndexerFinish: guarded((h, opts: { idxPath: string; revPath: string | null; fixThin: boolean; compressionLevel?: number }) => finish(state(h), opts)),
    indexPackFile: (packPath, opts) => {
      const s = open(packPath, opts.threads, null);
      return guarded(() => indexFile(s, packPath, opts))(s as unknown as PackHandle);
    },
  };
}

async function indexFile(s: State, packPath: string, opts: { idxPath: string; revPath: string | null }): Promise<CoreIndexResult> {
  try {
    const fd = openSync(packPath, 'r');
    try {
      const size = fstatSync(fd).size;
      // A pack of more objects than the instance's tables hold is refused at its header.
      s.w.x.mp_ix_expect(s.h, size);
      // A big pack's resolution threads start (their instances made) while this one scans.
      if (size >= EARLY_WORKERS_BYTES) startHelpers(s);
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) feed(s, buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    const { missing: m } = await endAndResolve(s);
    if (m.length) throw Object.assign(new Error(`pack has ${m.length} missing delta bases (a thin pack): ${m.slice(0, 3).join(', ')}${m.length > 3 ? ', ...' : ''}`), { code: 'MPGIT_MISSING_BASE' });
    return await finish(s, { idxPath: opts.idxPath, revPath: opts.revPath, fixThin: false });
  } finally {
    release(s);
  }
}
