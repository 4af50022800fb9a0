// Corrupt packs through the indexer, in process (the Rust addon): every byte of a small real
// pack flipped once, a sample of bytes of a larger one, and truncations at every entry boundary.
// Each must be a typed error naming the offset, leave no .idx (and, streamed, no partial pack)
// behind, and settle within a bound. git index-pack runs on the same files (one shell loop per
// batch) and must refuse each as well.

import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { indexPackFile, indexStream } from '../ts/pack/indexer.js';
import { MpgitError } from '../ts/errors.js';
import { makeRepo } from './helpers/repo.js';
import { git, run } from './helpers/proc.js';

const PER_CASE_MS = 5000;

/** A pack of every object of `repo`, as git pack-objects writes it (OFS or REF deltas). */
async function packBytes(repo: string, ofs: boolean): Promise<Buffer> {
  const out = join(repo, `p-${ofs}`);
  await git(['pack-objects', '--all', '-q', ...(ofs ? ['--delta-base-offset'] : []), out], { cwd: repo });
  const name = readdirSync(repo).find((n) => n.startsWith(`p-${ofs}-`) && n.endsWith('.pack'))!;
  return readFileSync(join(repo, name));
}

/** Entry offsets of a good pack, from git verify-pack. */
async function entryOffsets(dir: string, pack: Buffer): Promise<number[]> {
  const p = join(dir, 'good.pack');
  writeFileSync(p, pack);
  await git(['index-pack', p]);
  const v = await git(['verify-pack', '-v', join(dir, 'good.idx')]);
  return v.stdout.split('\n').map((l) => l.split(/\s+/)).filter((f) => /^[0-9a-f]{40}$/.test(f[0] ?? '') && f.length >= 5).map((f) => Number(f[4])).sort((a, b) => a - b);
}

interface Outcome {
  code: string;
  message: string;
  ms: number;
  idxLeft: boolean;
}

async function indexOne(packPath: string): Promise<Outcome | null> {
  const idxPath = packPath.replace(/\.pack$/, '.idx');
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([indexPackFile(packPath, { threads: 1, idxPath }), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`no answer within ${PER_CASE_MS} ms`)), PER_CASE_MS)))]);
    return null;
  } catch (e) {
    const err = e as MpgitError;
    return { code: err instanceof MpgitError ? err.code : `untyped ${(e as Error).name}`, message: err.message, ms: performance.now() - t0, idxLeft: existsSync(idxPath) };
  } finally {
    clearTimeout(timer);
  }
}

/** git index-pack over every *.pack in `dir`, in one shell loop: names it accepted. */
async function gitAccepts(dir: string): Promise<string[]> {
  const script = `cd "$1" && for f in *.pack; do git index-pack -o "\${f%.pack}.gitidx" "$f" >/dev/null 2>&1 && echo "$f"; done; true`;
  const r = await run('bash', ['-c', script, 'loop', dir], { timeoutMs: 240_000 });
  return r.stdout.split('\n').filter(Boolean);
}

function expectTyped(t: import('ava').ExecutionContext, what: string, o: Outcome | null): void {
  if (!o) {
    t.fail(`${what}: accepted`);
    return;
  }
  const ok = (o.code === 'MPGIT_BAD_PACK' || o.code === 'MPGIT_MISSING_BASE') && /offset \d+/.test(o.message) && !o.idxLeft;
  if (!ok) t.fail(`${what}: ${o.code} "${o.message}"${o.idxLeft ? ', .idx left behind' : ''}`);
}

async function flipAll(t: import('ava').ExecutionContext, pack: Buffer, positions: number[], tag: string): Promise<{ slowest: number; codes: Map<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), `mpgit-flip-${tag}-`));
  const codes = new Map<string, number>();
  let slowest = 0;
  for (const i of positions) {
    const bad = Buffer.from(pack);
    bad[i] = bad[i]! ^ 0xff;
    const p = join(dir, `flip-${i}.pack`);
    writeFileSync(p, bad);
    const o = await indexOne(p);
    expectTyped(t, `${tag}: byte ${i} flipped`, o);
    if (o) {
      slowest = Math.max(slowest, o.ms);
      codes.set(o.code, (codes.get(o.code) ?? 0) + 1);
    }
  }
  const accepted = await gitAccepts(dir);
  t.deepEqual(accepted, [], `git index-pack accepted flipped packs we refuse: ${accepted.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
  return { slowest, codes };
}

test('every byte of a small real pack flipped once: typed errors naming the offset, no .idx, git refuses each too', async (t) => {
  const repo = mkdtempSync(join(tmpdir(), 'mpgit-flip-repo-'));
  await makeRepo(repo, { commits: 2, filesPerCommit: 2 });
  const pack = await packBytes(repo, true);
  const r = await flipAll(t, pack, [...pack.keys()], 'small');
  t.log(`${pack.length} flips of a ${pack.length}-byte pack: ${[...r.codes].map(([c, n]) => `${n} ${c}`).join(', ')}; slowest ${r.slowest.toFixed(1)} ms`);
  t.true(r.slowest < PER_CASE_MS);
  rmSync(repo, { recursive: true, force: true });
});

test('a sample of bytes of a larger pack (REF_DELTA bases) flipped: typed errors, no .idx, git refuses each too', async (t) => {
  const repo = mkdtempSync(join(tmpdir(), 'mpgit-flip-repo-'));
  await makeRepo(repo, { commits: 25, filesPerCommit: 6 });
  const pack = await packBytes(repo, false);
  // Deterministic sample: 400 positions spread over the pack, the header and trailer included.
  let x = 12345;
  const positions = new Set<number>([0, 4, 7, 8, 11, 12, pack.length - 20, pack.length - 1]);
  while (positions.size < Math.min(400, pack.length)) positions.add((x = (x * 1103515245 + 12345) >>> 0) % pack.length);
  const r = await flipAll(t, pack, [...positions], 'large');
  t.log(`${positions.size} flips of a ${pack.length}-byte pack: ${[...r.codes].map(([c, n]) => `${n} ${c}`).join(', ')}; slowest ${r.slowest.toFixed(1)} ms`);
  rmSync(repo, { recursive: true, force: true });
});

test('packs truncated at every entry boundary (streamed, as a clone receives them): typed errors naming the offset, nothing left behind', async (t) => {
  const repo = mkdtempSync(join(tmpdir(), 'mpgit-trunc-repo-'));
  await makeRepo(repo, { commits: 6, filesPerCommit: 4 });
  const pack = await packBytes(repo, true);
  const dir = mkdtempSync(join(tmpdir(), 'mpgit-trunc-'));
  const offsets = await entryOffsets(dir, pack);
  t.true(offsets.length > 20);
  const cuts = new Set<number>([0, 4, 11]);
  for (const o of offsets) [o, o + 1, o + 2].forEach((c) => cuts.add(c));
  cuts.add(pack.length - 20);
  cuts.add(pack.length - 1);
  const gitDir = join(dir, 'for-git');
  mkdirSync(gitDir);
  for (const cut of cuts) {
    const packPath = join(dir, `cut-${cut}.pack`);
    const t0 = performance.now();
    const chunks = [pack.subarray(0, Math.min(cut, 7)), pack.subarray(Math.min(cut, 7), cut)].filter((c) => c.length);
    const err = await indexStream((async function* () { yield* chunks; })(), packPath, { threads: 1 }).then(
      () => null,
      (e: unknown) => e as MpgitError,
    );
    const ms = performance.now() - t0;
    expectTyped(t, `cut at ${cut}`, err && { code: err.code, message: err.message, ms, idxLeft: existsSync(packPath.replace(/\.pack$/, '.idx')) });
    t.false(existsSync(packPath), `cut at ${cut}: the partial pack was left behind`);
    t.true(ms < PER_CASE_MS);
    writeFileSync(join(gitDir, `cut-${cut}.pack`), pack.subarray(0, cut));
  }
  t.deepEqual(await gitAccepts(gitDir), []);
  t.log(`${cuts.size} truncations of a ${pack.length}-byte pack with ${offsets.length} entries`);
  rmSync(dir, { recursive: true, force: true });
  rmSync(repo, { recursive: true, force: true });
});
