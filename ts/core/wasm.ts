// The WebAssembly build of the Rust core (crates/wasm, wasm32-unknown-unknown): loading the
// module once, and a thin typed wrapper over its ABI (handles are pointers into the instance's
// memory; a failed call returns -1 or null and leaves its error in the instance; results of
// variable length come back through one output buffer). Every instance is single-threaded:
// parallel work runs one instance per worker thread (ts/core/wasm-worker.ts).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { wasmHost } from './wasm-host.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The module: MPGIT_WASM_PATH names another build; `npm run build:wasm` writes this one. */
export const wasmPath: string = process.env.MPGIT_WASM_PATH || join(root, 'wasm', 'mpgit_core.wasm');

/** The exports crates/wasm/src/abi.rs declares (pointers and sizes are numbers). */
export interface WasmExports {
  memory: WebAssembly.Memory;
  mp_init(): void;
  mp_alloc(n: number): number;
  mp_free(p: number, n: number): void;
  mp_err_code(): number;
  mp_err_len(): number;
  mp_err_ptr(): number;
  mp_out_ptr(): number;
  mp_out_len(): number;
  mp_object_id(kind: number, p: number, n: number): number;
  mp_ix_new(): number;
  mp_ix_free(h: number): void;
  mp_ix_reserve(h: number, n: number): number;
  mp_ix_commit(h: number, unused: number): number;
  mp_ix_open(h: number, p: number, n: number): number;
  /** `total` is passed as a double: any file size, exactly. */
  mp_ix_expect(h: number, total: number): void;
  mp_ix_progress(h: number): number;
  mp_ix_end(h: number, digest: number): number;
  mp_ix_roots(h: number): number;
  mp_ix_resolve(h: number, p: number, n: number): number;
  mp_ix_table(h: number): number;
  mp_ix_batch(h: number, p: number, n: number): number;
  mp_ix_apply(h: number, p: number, n: number): void;
  mp_ix_missing(h: number): number;
  mp_ix_add_base(h: number, oid: number, kind: number, p: number, n: number): number;
  mp_ix_thin_next(h: number): number;
  mp_ix_base_kind(h: number, k: number): number;
  mp_ix_thin_append(h: number, k: number, p: number, n: number): number;
  mp_ix_count_after(h: number): number;
  mp_ix_seal(h: number, digest: number): void;
  mp_ix_tail_ptr(h: number): number;
  mp_ix_tail_len(h: number): number;
  /** A double: any offset, exactly. */
  mp_ix_original_body(h: number): number;
  mp_ix_index(h: number, sum: number): number;
  mp_wk_new(): number;
  mp_wk_open(h: number, p: number, n: number): number;
  mp_wk_table(h: number, p: number, n: number): number;
  mp_wk_resolve(h: number, p: number, n: number, dp: number, dn: number): number;
  mp_wk_free(h: number): void;
  mp_err_errno(): number;
  // The object database, checkout, connectivity check (crates/wasm/src/odb_abi.rs).
  mp_odb_open(p: number, n: number, cacheBytes: number): number;
  mp_odb_add_pack(h: number, pp: number, pn: number, ip: number, inn: number): number;
  mp_odb_close(h: number): void;
  mp_odb_has(h: number, oid: number): number;
  mp_odb_read(h: number, oid: number): number;
  mp_odb_read_commit(h: number, oid: number): number;
  mp_co_new(h: number, tree: number, wp: number, wn: number, ip: number, inn: number): number;
  mp_co_step(job: number, entries: number): number;
  mp_co_plan(job: number, threads: number, budget: number): number;
  mp_co_batch(job: number, entries: number): number;
  mp_co_record(job: number, p: number, n: number): number;
  mp_co_write(job: number, bp: number, bn: number): number;
  mp_cw_write(h: number, wp: number, wn: number, bp: number, bn: number): number;
  mp_co_progress(job: number): number;
  mp_co_free(job: number): void;
  mp_cc_new(h: number, tp: number, nt: number, sp: number, ns: number, before: number): number;
  mp_cc_step(walk: number, objects: number): number;
  mp_cc_free(walk: number): void;
}

/** By mp_err_code; 10 is an I/O error whose errno name mp_err_errno gives. */
const ERROR_CODES = ['EIO', 'MPGIT_BAD_PACK', 'MPGIT_MISSING_BASE', 'ERR_INVALID_STATE', 'MPGIT_MISSING_OBJECTS', 'EIO', 'MPGIT_WASM_PANIC', 'MPGIT_PACK_TOO_LARGE', 'MPGIT_NOT_A_REPO', 'MPGIT_LOCKED'];
const IO_ERROR = 10;

/** One instance of the module, with the helpers every caller needs. */
export class WasmCore {
  readonly x: WasmExports;

  constructor(readonly module: WebAssembly.Module) {
    // Every instance gets the host's file operations (the object database needs them; the
    // indexer's workers do not call them, but the module imports them all the same).
    const host = wasmHost();
    this.x = new WebAssembly.Instance(module, { mpgit_host: host.imports }).exports as unknown as WasmExports;
    host.attach(this.x.memory);
    this.x.mp_init();
  }

  /** The memory as bytes (a new view: memory growth detaches the old one). Pointers and sizes
   * come back from wasm as signed 32-bit numbers: read them unsigned, past 2 GiB. */
  bytes(p: number, n: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, p >>> 0, n >>> 0);
  }

  /** The error the last failed call left, with its `code`. */
  error(): Error {
    const msg = Buffer.from(this.bytes(this.x.mp_err_ptr(), this.x.mp_err_len())).toString('utf8');
    const n = this.x.mp_err_code();
    const code = n === IO_ERROR ? this.out(this.x.mp_err_errno()).toString('utf8') || 'EIO' : (ERROR_CODES[n] ?? 'EIO');
    return Object.assign(new Error(msg), { code });
  }

  /** A trap (a panic in the core) as an error with the panic's message. */
  trapped(e: unknown): unknown {
    return e instanceof WebAssembly.RuntimeError && this.x.mp_err_code() === 6 ? this.error() : e;
  }

  /** `r` when it is not -1 (a failure), else throws the instance's error. */
  check(r: number): number {
    if (r === -1) throw this.error();
    return r;
  }

  /** A copy of the output buffer's first `n` bytes (`n` from the call that filled it). */
  out(n: number): Buffer {
    // A buffer of its own (not a slice of node's pool): callers may take its ArrayBuffer.
    const copy = new Uint8Array(n);
    copy.set(this.bytes(this.x.mp_out_ptr(), n));
    return Buffer.from(copy.buffer, 0, n);
  }

  /** Runs `f` with `data` copied into the instance's memory (freed afterwards). */
  withBytes<T>(data: Uint8Array, f: (p: number, n: number) => T): T {
    const p = this.x.mp_alloc(data.length);
    this.bytes(p, data.length).set(data);
    try {
      return f(p, data.length);
    } finally {
      this.x.mp_free(p, data.length);
    }
  }
}

let compiled: { module: WebAssembly.Module } | { error: string } | null = null;

/** The compiled module (once per thread), or why it cannot be had. */
export function wasmModule(): { module: WebAssembly.Module } | { error: string } {
  if (compiled) return compiled;
  if (!existsSync(wasmPath)) {
    const fix = process.env.MPGIT_WASM_PATH ? 'check MPGIT_WASM_PATH' : existsSync(join(root, 'Cargo.toml')) ? 'run `npm run build:wasm`' : 'the package is incomplete: reinstall mpgit';
    return (compiled = { error: `${wasmPath} is missing: ${fix}` });
  }
  try {
    return (compiled = { module: new WebAssembly.Module(readFileSync(wasmPath)) });
  } catch (e) {
    return (compiled = { error: `${wasmPath} failed to compile: ${(e as Error).message}` });
  }
}

/** node's flags less tsx's loader: a compiled worker needs none, and it costs ~300 ms to start. */
const jsExecArgv = process.execArgv.filter((a, i, all) => a !== '--import=tsx' && !(a === '--import' && all[i + 1] === 'tsx') && !(a === 'tsx' && all[i - 1] === '--import'));

/** Starts the worker thread of module `name` (beside this file: the .ts one under tsx, in tests and benches). */
export function startWasmWorker(name: string, workerData: object): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, import.meta.url), { workerData, execArgv: jsExecArgv });
  const url = new URL(`./${name}.ts`, import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`, { eval: true, workerData });
}
