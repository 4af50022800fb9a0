// The object database, checkout and connectivity check of the WebAssembly core: the same Rust
// (crates/core/src/odb) as the native addon's, its file operations done by the host imports
// (./wasm-host.ts). One instance holds every open database; an instance has one thread: the walk
// runs in steps of about a thousand objects, a checkout in steps of a few hundred entries, with
// the event loop (timers, signals, the progress meter) served between them.

import { isOid } from '../oid.js';
import { WasmCore } from './wasm.js';
import { BATCH_ENTRIES, writeOnWorkers, type CheckoutWorkerData } from './wasm-checkout.js';
import type { CheckoutCore, CheckoutHandle, ConnectivityCore, OdbCore, OdbHandle } from './types.js';

function oidBytes(oid: string): Buffer {
  if (!isOid(oid)) throw Object.assign(new TypeError(`${JSON.stringify(oid)} is not a 40-digit hex object id`), { code: 'ERR_INVALID_ARG_TYPE' });
  return Buffer.from(oid, 'hex');
}

function ids(oids: string[]): Buffer {
  return Buffer.concat(oids.map(oidBytes));
}

/** Entries a checkout writes between two returns to the event loop (tens of milliseconds). */
const STEP_ENTRIES = 512;
/** Trees a checkout's plan reads (then directories it makes) between two returns to the event loop. */
const PLAN_STEP = 256;
/** Fewest entries a checkout writes on worker threads (fewer: on this thread, as starting them costs more). */
const PARALLEL_MIN_ENTRIES = 2000;
/**
 * Most checkout threads: each holds a copy of every .idx (read whole: wasm maps nothing) and a
 * delta base cache of its own, and file creation gains little past a few threads.
 */
const MAX_CHECKOUT_THREADS = 8;
/** Objects the connectivity walk reads between two returns to the event loop (about 10 ms). */
const WALK_STEP_OBJECTS = 1024;

function state(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_INVALID_STATE' });
}

export interface WasmOdbAreas {
  odb: OdbCore;
  checkout: CheckoutCore;
  connectivity: ConnectivityCore;
}

/**
 * What JavaScript holds: tokens, never reused, for pointers into the instance (an instance that
 * trapped is replaced, and a token of the old one must not reach a new pointer).
 */
class Tokens {
  private next = 1;
  private readonly m = new Map<number, number>();
  add(ptr: number): number {
    this.m.set(this.next, ptr);
    return this.next++;
  }
  get(token: number): number | undefined {
    return this.m.get(token);
  }
  delete(token: number): boolean {
    return this.m.delete(token);
  }
  clear(): void {
    this.m.clear();
  }
}

export function wasmOdb(module: WebAssembly.Module): WasmOdbAreas {
  let w: WasmCore | null = null;
  let oidAt = 0;
  const open = new Tokens();
  const jobs = new Tokens();
  /** How a checkout thread opens each database again, and what each checkout was asked. */
  const sources = new Map<number, Omit<CheckoutWorkerData, 'module' | 'workTree'>>();
  const asked = new Map<number, { source: Omit<CheckoutWorkerData, 'module' | 'workTree'>; workTree: string; threads: number }>();
  const core = (): WasmCore => {
    if (!w) {
      w = new WasmCore(module);
      oidAt = w.x.mp_alloc(20);
    }
    return w;
  };
  /**
   * Runs a call into the instance: a panic's trap becomes the error it left, and the instance
   * (its locks and buffers as the panic left them) is dropped with every handle into it.
   */
  const call = <T>(f: (c: WasmCore) => T): T => {
    const c = core();
    try {
      return f(c);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        w = null;
        open.clear();
        jobs.clear();
      }
      throw c.trapped(e);
    }
  };
  const handle = (h: OdbHandle): number => {
    const n = open.get(h as unknown as number);
    if (n === undefined) throw state('the object database is closed');
    return n;
  };
  const withOid = <T>(c: WasmCore, oid: string, f: (p: number) => T): T => {
    c.bytes(oidAt, 20).set(oidBytes(oid));
    return f(oidAt);
  };
  const withPath = <T>(c: WasmCore, path: string, f: (p: number, n: number) => T): T => c.withBytes(Buffer.from(path), f);

  const odb: OdbCore = {
    odbOpen(gitDir, opts) {
      return call((c) => {
        const h = withPath(c, gitDir, (p, n) => c.x.mp_odb_open(p, n, opts?.cacheBytes ?? -1));
        if (h === 0) throw c.error();
        const token = open.add(h);
        sources.set(token, { gitDir, cacheBytes: opts?.cacheBytes ?? -1, packs: [] });
        return token as unknown as OdbHandle;
      });
    },
    odbAddPack(h, packPath, idxPath) {
      const n = handle(h);
      call((c) => withPath(c, packPath, (pp, pn) => withPath(c, idxPath, (ip, inn) => c.check(c.x.mp_odb_add_pack(n, pp, pn, ip, inn)))));
      sources.get(h as unknown as number)?.packs.push([packPath, idxPath]);
    },
    odbClose(h) {
      const n = open.get(h as unknown as number);
      if (n === undefined) return;
      open.delete(h as unknown as number);
      sources.delete(h as unknown as number);
      call((c) => c.x.mp_odb_close(n));
    },
    odbHas(h, oid) {
      const n = handle(h);
      return call((c) => withOid(c, oid, (p) => c.check(c.x.mp_odb_has(n, p)) === 1));
    },
    odbRead(h, oid) {
      const n = handle(h);
      return call((c) => {
        const type = withOid(c, oid, (p) => c.check(c.x.mp_odb_read(n, p)));
        return type === 0 ? null : { type, data: c.out(c.x.mp_out_len()) };
      });
    },
    odbReadCommit(h, oid) {
      const n = handle(h);
      return call((c) => {
        if (withOid(c, oid, (p) => c.check(c.x.mp_odb_read_commit(n, p))) === 0) return null;
        const b = c.out(c.x.mp_out_len());
        const parents: string[] = [];
        for (let at = 28; at + 20 <= b.length; at += 20) parents.push(b.subarray(at, at + 20).toString('hex'));
        return { tree: b.subarray(0, 20).toString('hex'), parents, time: b.readDoubleLE(20) };
      });
    },
  };

  /** Checkouts running (between steps), and the progress of those that ran (their state freed). */
  const running = new Set<number>();
  const finished = new Map<number, { done: number; total: number }>();
  const progressOf = (c: WasmCore, job: number) => {
    const b = c.out(c.check(c.x.mp_co_progress(job)));
    return { done: b.readDoubleLE(0), total: b.readDoubleLE(8) };
  };
  const checkout: CheckoutCore = {
    checkoutNew(h, treeOrCommit, workTree, opts) {
      const n = handle(h);
      return call((c) =>
        withOid(c, treeOrCommit, (t) =>
          withPath(c, workTree, (wp, wn) => {
            const make = (ip: number, inn: number) => {
              const job = c.x.mp_co_new(n, t, wp, wn, ip, inn);
              if (job === 0) throw c.error();
              const token = jobs.add(job);
              asked.set(token, { source: sources.get(h as unknown as number)!, workTree, threads: opts.threads });
              return token as unknown as CheckoutHandle;
            };
            return opts.indexPath === null ? make(0, 0) : withPath(c, opts.indexPath, make);
          }),
        ),
      );
    },
    async checkoutRun(job) {
      const token = job as unknown as number;
      const j = jobs.get(token);
      if (j === undefined || running.has(token)) throw state('this checkout has already run');
      running.add(token);
      const a = asked.get(token)!;
      asked.delete(token);
      const threads = Math.min(a.threads, MAX_CHECKOUT_THREADS);
      try {
        let entries = 0;
        for (;;) {
          const r = call((c) => c.check(c.x.mp_co_plan(j, threads, PLAN_STEP)));
          if (r === 0) {
            entries = call((c) => c.out(8).readDoubleLE(0));
            break;
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        if (threads > 1 && entries >= PARALLEL_MIN_ENTRIES) {
          const next = () => call((c) => (c.check(c.x.mp_co_batch(j, BATCH_ENTRIES)) ? c.out(c.x.mp_out_len()) : null));
          const record = (answer: Uint8Array) => call((c) => c.withBytes(answer, (p, n) => c.check(c.x.mp_co_record(j, p, n))));
          const here = (batch: Uint8Array) => call((c) => c.withBytes(batch, (p, n) => c.out(c.check(c.x.mp_co_write(j, p, n)))));
          await writeOnWorkers({ module, workTree: a.workTree, ...a.source }, threads, next, record, here);
        }
        for (;;) {
          // The summary (out) or the error is read before the progress call replaces out.
          const r = call((c) => c.x.mp_co_step(j, STEP_ENTRIES));
          if (r === 1) {
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          return call((c) => {
            const summary = r === 0 ? c.out(c.x.mp_out_len()) : null;
            const failure = summary ? null : c.error();
            finished.set(token, progressOf(c, j));
            if (!summary) throw failure;
            return { entries: summary.readDoubleLE(0), directories: summary.readDoubleLE(8), bytes: summary.readDoubleLE(16) };
          });
        }
      } finally {
        // A trap dropped the instance, and the job with it.
        if (jobs.delete(token) && w) w.x.mp_co_free(j);
        running.delete(token);
      }
    },
    checkoutProgress(job) {
      const token = job as unknown as number;
      const j = jobs.get(token);
      if (j !== undefined) return call((c) => progressOf(c, j));
      return finished.get(token) ?? { done: 0, total: 0 };
    },
  };

  const connectivity: ConnectivityCore = {
    async connectivityCheck(h, tips, shallow, before) {
      const n = handle(h);
      const b = before === null ? 0 : handle(before);
      const walk = call((c) => c.withBytes(ids(tips), (tp) => c.withBytes(ids(shallow), (sp) => c.x.mp_cc_new(n, tp, tips.length, sp, shallow.length, b))));
      const alive = w;
      try {
        for (;;) {
          const r = call((c) => c.x.mp_cc_step(walk, WALK_STEP_OBJECTS));
          if (r === 0) return call((c) => ({ objects: c.out(8).readDoubleLE(0) }));
          if (r === -1) throw call((c) => c.error());
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        // A trap dropped the instance, and the walk with it.
        if (w && w === alive) w.x.mp_cc_free(walk);
      }
    },
  };
  return { odb, checkout, connectivity };
}
