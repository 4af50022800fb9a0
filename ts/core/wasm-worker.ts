// A pack resolution thread of the WebAssembly core (see wasm-indexer.ts): an instance of its
// own with the table the scan made (entries, ids) and, with each batch of roots, the deltas it
// kept inflated for those trees, reading the other entries it needs from the pack file by offset (the host's pread: the pack is never held); it
// resolves the batches of roots it is sent, answering with (entry, object id) pairs.

import { parentPort, workerData } from 'node:worker_threads';
import { WasmCore } from './wasm.js';

/** In order: `table` (once: the pack file is complete by then), then batches of roots; `roots: null` ends. */
export type WorkerRequest = { table: Uint8Array } | { roots: Uint32Array; deltas: Uint8Array } | { roots: null };
export type WorkerAnswer = { results: Uint8Array | null; done: boolean } | { error: { message: string; code?: string } };

const { module, packPath } = workerData as { module: WebAssembly.Module; packPath: string };
const w = new WasmCore(module);
const h = w.x.mp_wk_new();

function answer(a: WorkerAnswer): void {
  parentPort!.postMessage(a);
}

parentPort!.on('message', (req: WorkerRequest) => {
  try {
    if ('table' in req) {
      w.withBytes(Buffer.from(packPath), (p, n) => w.check(w.x.mp_wk_open(h, p, n)));
      w.withBytes(req.table, (p, n) => w.check(w.x.mp_wk_table(h, p, n)));
      answer({ results: null, done: false });
    } else if (!req.roots) {
      answer({ results: null, done: true });
      parentPort!.close();
    } else {
      const roots = new Uint8Array(req.roots.buffer, req.roots.byteOffset, req.roots.byteLength);
      const n = w.withBytes(roots, (p) => w.withBytes(req.deltas, (dp, dn) => w.check(w.x.mp_wk_resolve(h, p, req.roots.length, dp, dn))));
      answer({ results: w.out(n * 24), done: false });
    }
  } catch (e) {
    const err = w.trapped(e) as Error & { code?: string };
    answer({ error: { message: err.message, code: err.code } });
  }
});
