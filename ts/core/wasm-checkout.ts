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
 * to `record`; resolves once every batch is answered, rejects with the first error. Until a
 * worker is ready (has started and opened the database) this thread writes batches itself
 * (`writeHere`), a batch per turn of the event loop: a checkout done before then pays nothing
 * for the threads.
 */
export function writeOnWorkers(data: CheckoutWorkerData, threads: number, next: () => Uint8Array | null, record: (answer: Uint8Array) => void, writeHere: (batch: Uint8Array) => Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const workers: Worker[] = [];
    /** Batches at the workers, unanswered. */
    let out = 0;
    let ready = false;
    let drained = false;
    let local = true;
    let ended = false;
    const end = (err: unknown) => {
      if (ended) return;
      ended = true;
      for (const w of workers) void w.terminate();
      if (err) reject(err);
      else resolve();
    };
    const settle = () => {
      if (drained && out === 0 && !local) end(null);
    };
    const take = (): Uint8Array | null => {
      const b = drained ? null : next();
      drained = !b;
      return b;
    };
    const feed = (w: Worker) => {
      const b = take();
      if (!b) return;
      out++;
      w.postMessage({ batch: b } satisfies CheckoutRequest, [b.buffer as ArrayBuffer]);
    };
    const answered = (w: Worker, a: CheckoutAnswer) => {
      if (ended) return;
      if ('error' in a) return end(Object.assign(new Error(a.error.message), { code: a.error.code }));
      if ('ready' in a) {
        ready = true;
        for (let k = 0; k < IN_FLIGHT; k++) feed(w);
      } else {
        out--;
        record(a.answer);
        feed(w);
      }
      settle();
    };
    const here = () => {
      if (ended) return;
      try {
        const b = ready ? null : take();
        if (!b) {
          local = false;
          return settle();
        }
        record(writeHere(b));
      } catch (e) {
        return end(e);
      }
      setImmediate(here);
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
    } catch (e) {
      return end(e);
    }
    here();
  });
}
