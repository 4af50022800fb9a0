// The TypeScript fuzz harness (fast-check): each target gets inputs bounded in size (valid
// encodings, their byte-level mutations, and random bytes), a deterministic seed, the saved
// corpus replayed first, and these checks per input:
// - no exception but a typed MpgitError (a TypeError, RangeError... is a crash);
// - no hang: each input must settle within `hangMs`;
// - memory: what a parse returns is at most 8x its input + 4 KiB (readers buffer at most their
//   stated high-water mark), and the process's RSS grows at most 96 MiB over a whole run;
// - where an encoder exists, the result re-encodes to the same bytes (or parses the same).
// A failing input is saved under test/fuzz/corpus/ts/<target>/ and replayed on every run.

import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MpgitError } from '../../ts/errors.js';

export const CORPUS_DIR = new URL('./corpus/ts/', import.meta.url).pathname;

export type Verdict = 'parsed' | 'refused';

export interface TsTarget {
  name: string;
  maxLen: number;
  /** Inputs: usually `hostile(valid, maxLen)`. */
  arb: fc.Arbitrary<Buffer>;
  /** Throws PropertyError for a broken property; typed errors are caught by the harness. */
  run(input: Buffer): Promise<{ verdict: Verdict; resultBytes?: number }> | { verdict: Verdict; resultBytes?: number };
}

/** A broken property (a bug): never a refusal of bad input. */
export class PropertyError extends Error {}

export function check(cond: unknown, why: () => string): asserts cond {
  if (!cond) throw new PropertyError(why());
}

const mutation = fc.record({ op: fc.nat(7), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }), byte: fc.constantFrom(0, 1, 0x0a, 0x20, 0x30, 0x7f, 0x80, 0xff, 0x3a, 0x2e) });

function applyMutations(b: Buffer, ms: { op: number; at: number; len: number; byte: number }[], maxLen: number): Buffer {
  let v = Buffer.from(b);
  for (const m of ms) {
    const at = v.length ? m.at % v.length : 0;
    switch (m.op) {
      case 0:
        if (v.length) v[at] = v[at]! ^ (1 << m.len % 8);
        break;
      case 1:
        if (v.length) v[at] = m.byte;
        break;
      case 2:
        v = Buffer.concat([v.subarray(0, at), Buffer.alloc(m.len % 8 + 1, m.byte), v.subarray(at)]);
        break;
      case 3:
        v = Buffer.concat([v.subarray(0, at), v.subarray(at + m.len)]);
        break;
      case 4:
        v = v.subarray(0, at);
        break;
      case 5:
        v = Buffer.concat([v.subarray(0, at), v.subarray(at, at + m.len), v.subarray(at)]);
        break;
      case 6:
        if (v.length) v[at] = (v[at]! + (m.len % 2 ? 1 : 255)) & 0xff;
        break;
      default:
        v = Buffer.concat([v, v.subarray(at, at + m.len * 4)]);
    }
  }
  return v.subarray(0, maxLen);
}

/** Valid inputs, their mutations, and random bytes, all at most `maxLen` bytes. */
export function hostile(valid: fc.Arbitrary<Buffer>, maxLen: number): fc.Arbitrary<Buffer> {
  return fc
    .oneof(
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: Math.min(maxLen, 512) }).map((a) => Buffer.from(a)) },
      { weight: 2, arbitrary: valid },
      { weight: 6, arbitrary: fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([b, ms]) => applyMutations(b, ms, maxLen)) },
    )
    .map((b) => (b.length > maxLen ? b.subarray(0, maxLen) : b));
}

/** A readable stream that delivers `buf` in chunks whose sizes the bytes decide, then ends. */
export function streamOf(buf: Buffer): Readable {
  const chunks: Buffer[] = [];
  let step = 1 + ((buf[0] ?? 0) % 61);
  for (let at = 0; at < buf.length; ) {
    chunks.push(buf.subarray(at, at + step));
    at += step;
    step = ((step * 7) % 509) + 1;
  }
  return Readable.from(chunks, { objectMode: false });
}

export interface Report {
  target: string;
  seed: number;
  inputs: number;
  parsed: number;
  refused: number;
  regressions: number;
  crashes: number;
  hangs: number;
  memory: number;
  maxInput: number;
  slowestMs: number;
  peakRssMb: number;
  seconds: number;
  failure?: string;
  savedAs?: string;
}

export function loadCorpus(target: string): Buffer[] {
  const dir = join(CORPUS_DIR, target);
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.map((n) => readFileSync(join(dir, n)));
}

class HangError extends Error {}

async function settle<T>(p: Promise<T> | T, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([Promise.resolve(p), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new HangError(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export interface FuzzOptions {
  seed: number;
  /** Inputs to run (besides the corpus), or with `seconds`, at most this many. */
  numRuns: number;
  seconds?: number;
  hangMs?: number;
  /** Where a failing input is written (default: the corpus, making it a regression test). */
  saveDir?: string;
}

/** Runs one target; never throws for a failing input (the report says what failed). */
export async function fuzzTarget(t: TsTarget, o: FuzzOptions): Promise<Report> {
  const hangMs = o.hangMs ?? 2000;
  const corpus = loadCorpus(t.name);
  const r: Report = { target: t.name, seed: o.seed, inputs: 0, parsed: 0, refused: 0, regressions: 0, crashes: 0, hangs: 0, memory: 0, maxInput: 0, slowestMs: 0, peakRssMb: 0, seconds: 0 };
  const rss0 = process.memoryUsage.rss();
  let peak = rss0;
  const start = performance.now();
  const one = async (input: Buffer): Promise<boolean> => {
    r.inputs++;
    r.maxInput = Math.max(r.maxInput, input.length);
    const t0 = performance.now();
    try {
      const out = await settle(t.run(input), hangMs);
      r[out.verdict]++;
      if (out.resultBytes !== undefined && out.resultBytes > 8 * input.length + 4096) {
        r.memory++;
        throw new PropertyError(`result of ${out.resultBytes} bytes for a ${input.length}-byte input (bound 8x + 4 KiB)`);
      }
    } catch (e) {
      if (e instanceof MpgitError && !(e instanceof PropertyError)) r.refused++;
      else {
        if (e instanceof HangError) r.hangs++;
        else if (!(e instanceof PropertyError) || !/^result of/.test(e.message)) r.crashes++;
        r.failure ??= `${(e as Error).name}: ${(e as Error).message}\n${(e as Error).stack ?? ''}`;
        throw e;
      }
    } finally {
      r.slowestMs = Math.max(r.slowestMs, performance.now() - t0);
      if (r.inputs % 256 === 0) peak = Math.max(peak, process.memoryUsage.rss());
    }
    return true;
  };
  let failing: Buffer | null = null;
  for (const c of corpus) {
    r.regressions++;
    try {
      await one(c);
    } catch {
      failing ??= c;
    }
  }
  if (!failing) {
    const details = await fc.check(
      fc.asyncProperty(t.arb, async (input) => {
        try {
          return await one(input);
        } catch (e) {
          failing ??= input;
          throw e;
        }
      }),
      { seed: o.seed, numRuns: o.numRuns, interruptAfterTimeLimit: o.seconds ? o.seconds * 1000 : undefined, markInterruptAsFailure: false, endOnFailure: true },
    );
    if (details.failed && details.counterexample) failing = details.counterexample[0] as Buffer;
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  r.peakRssMb = Math.round(peak / 1048576);
  if (peak - rss0 > 96 * 1048576) {
    r.memory++;
    r.failure ??= `RSS grew by ${Math.round((peak - rss0) / 1048576)} MiB over the run (bound 96 MiB)`;
  }
  if (failing) {
    const dir = join(o.saveDir ?? CORPUS_DIR, t.name);
    mkdirSync(dir, { recursive: true });
    r.savedAs = join(dir, `crash-${createHash('sha1').update(failing).digest('hex').slice(0, 16)}.bin`);
    writeFileSync(r.savedAs, failing);
  }
  r.seconds = Math.round((performance.now() - start) / 10) / 100;
  return r;
}
