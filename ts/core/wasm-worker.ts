// A pack resolution thread of the WebAssembly core (see wasm-indexer.ts): an instance of its
// own holding the pack (read from disk, while the main instance still scans when the pack is
// a file) and the table the scan made (entries, ids, the deltas it kept inflated); it resolves
// the batches of roots it is sent, answering with (entry, object id) pairs.

import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { WasmCore } from './wasm.js';

/** In order: `load` (the pack's length, once), `table` (once, after it), then batches of roots; `roots: null` ends. */
export type WorkerRequest = { load: number } | { table: Uint8Array } | { roots: Uint32Array | null };
export type WorkerAnswer = { results: Uint8Array | null; done: boolean } | { error: { message: string; code?: string } };

const { module, packPath } = workerData as { module: WebAssembly.Module; packPath: string };
const w = new WasmCore(module);
const h = w.x.mp_wk_new();

function load(packLen: number): void {
  const p = w.x.mp_wk_pack(h, packLen);
  if (p === 0) throw w.error();
  const fd = openSync(packPath, 'r');
  try {
    for (let at = 0; at < packLen; ) {
      const n = readSync(fd, w.bytes(p + at, packLen - at), 0, packLen - at, at);
      if (n === 0) throw Object.assign(new Error(`${packPath} is shorter than the ${packLen} bytes indexed`), { code: 'MPGIT_BAD_PACK' });
      at += n;
    }
  } finally {
    closeSync(fd);
  }
}

function answer(a: WorkerAnswer): void {
  parentPort!.postMessage(a);
}

parentPort!.on('message', (req: WorkerRequest) => {
  try {
    if ('load' in req) load(req.load);
    else if ('table' in req) {
      w.withBytes(req.table, (p, n) => w.check(w.x.mp_wk_table(h, p, n)));
      answer({ results: null, done: false });
    } else if (!req.roots) {
      answer({ results: null, done: true });
      parentPort!.close();
    } else {
      const roots = new Uint8Array(req.roots.buffer, req.roots.byteOffset, req.roots.byteLength);
      const n = w.withBytes(roots, (p) => w.check(w.x.mp_wk_resolve(h, p, req.roots!.length)));
      answer({ results: w.out(n * 24), done: false });
    }
  } catch (e) {
    const err = w.trapped(e) as Error & { code?: string };
    answer({ error: { message: err.message, code: err.code } });
  }
});
