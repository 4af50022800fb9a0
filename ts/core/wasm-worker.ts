// A pack resolution thread of the WebAssembly core (see wasm-indexer.ts): an instance of its
// own with the pack read from disk and the entry table, resolving the batches of roots it is
// sent, answering with (entry, object id) pairs.

import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { WasmCore } from './wasm.js';

export type WorkerRequest = { roots: Uint32Array | null };
export type WorkerAnswer = { results: Uint8Array | null; done: boolean } | { error: { message: string; code?: string } };

const { module, table, packPath, packLen } = workerData as { module: WebAssembly.Module; table: Uint8Array; packPath: string; packLen: number };

function load(): { w: WasmCore; h: number } {
  const w = new WasmCore(module);
  const h = w.withBytes(table, (p, n) => w.x.mp_wk_new(p, n, packLen));
  const fd = openSync(packPath, 'r');
  try {
    for (let at = 0; at < packLen; ) {
      const n = readSync(fd, w.bytes(w.x.mp_wk_pack(h) + at, packLen - at), 0, packLen - at, at);
      if (n === 0) throw Object.assign(new Error(`${packPath} is shorter than the ${packLen} bytes indexed`), { code: 'MPGIT_BAD_PACK' });
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return { w, h };
}

function answer(a: WorkerAnswer): void {
  parentPort!.postMessage(a);
}

try {
  const { w, h } = load();
  parentPort!.on('message', (req: WorkerRequest) => {
    if (!req.roots) {
      answer({ results: null, done: true });
      parentPort!.close();
      return;
    }
    try {
      const roots = new Uint8Array(req.roots.buffer, req.roots.byteOffset, req.roots.byteLength);
      const n = w.withBytes(roots, (p) => w.check(w.x.mp_wk_resolve(h, p, req.roots!.length)));
      answer({ results: w.out(n * 24), done: false });
    } catch (e) {
      const err = e as Error & { code?: string };
      answer({ error: { message: err.message, code: err.code } });
    }
  });
  answer({ results: null, done: false });
} catch (e) {
  const err = e as Error & { code?: string };
  answer({ error: { message: err.message, code: err.code } });
}
