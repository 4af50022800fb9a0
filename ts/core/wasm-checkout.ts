// The WebAssembly core's checkout on worker threads: the main instance plans it (the tree
// flattened and checked, the directories made) and hands its units of entries out in batches
// to `threads` worker instances (wasm-checkout-worker.ts), each with the object database opened
// on its own; their answers (each entry's stat and size) go back into the plan, which then
// writes the index exactly as if it had written the entries itself. The first error of any
// worker ends the checkout (the others are stopped; no index is written).

import type { Worker } from 'node:worker_threads';
import { startWasmWorker } from './wasm.js';
import type { CheckoutAnswer, CheckoutRequest, CheckoutWorkerData } from './wasm-checkout-worker.js';

export type { CheckoutWorkerData };

/** Fewest entries a batch holds (whole units: a directory's entries, at most 256 at a time). */
export const BATCH_ENTRIES = 64;
/** Batches sent to a worker ahead of its answers, so that it never waits for the main thread. */
const IN_FLIGHT = 2;

/**
 * Writes every batch `next` gives (null: none left) on `threads` workers, handing each answer
 * to `record`; resolves once every batch is answered, rejects with the first error.
 */
export function writeOnWorkers(data: CheckoutWorkerData, threads: number, next: () => Uint8Array | null, record: (answer: Uint8Array) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const workers: Worker[] = [];
    let out = 0;
    let ended = false;
    const end = (err: unknown) => {
      if (ended) return;
      ended = true;
      for (const w of workers) void w.terminate();
      if (err) reject(err);
      else resolve();
    };
    /** Sends `w` the next batch; false when there is none. */
    const feed = (w: Worker): boolean => {
      const b = next();
      if (!b) return false;
      out++;
      w.postMessage({ batch: b } satisfies CheckoutRequest, [b.buffer as ArrayBuffer]);
      return true;
    };
    const answered = (w: Worker, a: CheckoutAnswer) => {
      if (ended) return;
      if ('error' in a) return end(Object.assign(new Error(a.error.message), { code: a.error.code }));
      out--;
      record(a.answer);
      if (!feed(w) && out === 0) end(null);
    };
    try {
      for (let i = 0; i < threads; i++) {
        const w = startWasmWorker('wasm-checkout-worker', data);
        workers.push(w);
        w.on('message', (a: CheckoutAnswer) => {
          try {
            answered(w, a);
          } catch (e) {
            end(e);
          }
        });
        w.on('error', end);
        w.on('exit', (code) => end(new Error(`a checkout thread exited (${code}) before the checkout was written`)));
      }
      for (let k = 0; k < IN_FLIGHT; k++) workers.forEach(feed);
      if (out === 0) end(null);
    } catch (e) {
      end(e);
    }
  });
}
