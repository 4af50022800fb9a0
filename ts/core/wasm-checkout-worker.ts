// A checkout thread of the WebAssembly core (see wasm-checkout.ts): an instance of its own with
// the object database opened again from its git directory (and the packs added to the main
// one since), writing the batches of entries it is sent and answering with their stats.

import { parentPort, workerData } from 'node:worker_threads';
import { WasmCore } from './wasm.js';

/** What a checkout thread needs to open the database again: never a handle into another instance. */
export interface CheckoutWorkerData {
  module: WebAssembly.Module;
  gitDir: string;
  /** The delta base cache's size, negative for the default. */
  cacheBytes: number;
  /** Packs added to the database after it was opened: [pack, idx]. */
  packs: [string, string][];
  workTree: string;
}

/** A batch (mp_co_batch's bytes) to write; null ends the thread. */
export type CheckoutRequest = { batch: Uint8Array | null };
/** `ready` once the database is open, then an answer per batch; an error ends it. */
export type CheckoutAnswer = { ready: true } | { answer: Uint8Array } | { error: { message: string; code?: string } };

const data = workerData as CheckoutWorkerData;
const w = new WasmCore(data.module);

function answer(a: CheckoutAnswer): void {
  parentPort!.postMessage(a);
}

function fail(e: unknown): void {
  const err = w.trapped(e) as Error & { code?: string };
  answer({ error: { message: err.message, code: err.code } });
}

let h = 0;
try {
  h = w.withBytes(Buffer.from(data.gitDir), (p, n) => w.x.mp_odb_open(p, n, data.cacheBytes));
  if (h === 0) throw w.error();
  for (const [pack, idx] of data.packs) {
    w.withBytes(Buffer.from(pack), (pp, pn) => w.withBytes(Buffer.from(idx), (ip, inn) => w.check(w.x.mp_odb_add_pack(h, pp, pn, ip, inn))));
  }
  answer({ ready: true });
} catch (e) {
  h = 0;
  fail(e);
}

const workTree = Buffer.from(data.workTree);
parentPort!.on('message', (req: CheckoutRequest) => {
  if (!req.batch || h === 0) {
    parentPort!.close();
    return;
  }
  const batch = req.batch;
  try {
    const n = w.withBytes(workTree, (wp, wn) => w.withBytes(batch, (bp, bn) => w.check(w.x.mp_cw_write(h, wp, wn, bp, bn))));
    answer({ answer: w.out(n) });
  } catch (e) {
    fail(e);
  }
});
