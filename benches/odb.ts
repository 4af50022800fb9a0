// Checkout (the tree into an empty work tree, and the index) and the connectivity walk of a
// whole history, by the native core, the WebAssembly core (the same Rust, its file operations
// through node's fs) and stock git (`read-tree --reset -u`, `rev-list --objects`), on the same
// generated repository. A checkout counts only when git then finds the work tree clean against
// the index it wrote, a walk only when it reaches the objects rev-list lists. Time is wall and
// CPU (user + system: process.cpuUsage for the cores, in process, their threads included; GNU
// time for git); the median of --runs.
//
//   npm run bench:odb [-- --preset small|medium|bench] [--runs N]

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
// The compiled modules (npm run build:ts, which the script runs first), as the installed CLI
// runs them: a worker thread then starts from JavaScript, not through tsx's loader.
import { loadNative } from '../dist/core/native.js';
import { wasmModule } from '../dist/core/wasm.js';
import { wasmOdb } from '../dist/core/wasm-odb.js';
import type { CheckoutCore, ConnectivityCore, OdbCore } from '../ts/core/types.js';
import { benchArgs, machine, machineLine, measure, median, printTable, round, writeJson, type Row } from './lib/bench.js';
import { cachedRepo, presetSpec } from './lib/genrepo.js';

interface Core {
  name: string;
  threads: number;
  odb: OdbCore;
  checkout: CheckoutCore;
  connectivity: ConnectivityCore;
}

interface Timing {
  wallMs: number;
  cpuMs: number;
  /** The longest the event loop went without running a 1 ms timer (none for git: another process). */
  gapMs?: number;
}

async function timed(f: () => Promise<unknown>): Promise<Timing> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let last = t0;
  let gapMs = 0;
  const tick = () => {
    const now = performance.now();
    gapMs = Math.max(gapMs, now - last);
    last = now;
  };
  const timer = setInterval(tick, 1);
  try {
    await f();
  } finally {
    clearInterval(timer);
  }
  tick();
  const c = process.cpuUsage(c0);
  return { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, gapMs };
}

function cores(): Core[] {
  const out: Core[] = [];
  const n = loadNative();
  if (!n.core?.odb || !n.core.checkout || !n.core.connectivity) throw new Error(`the native core is not built (npm run build:native): ${n.error}`);
  // The native core at 1 thread too: the wasm rows' threads compared with equal threads.
  for (const threads of [...new Set([1, availableParallelism()])]) out.push({ name: `native (${threads} thread${threads > 1 ? 's' : ''})`, threads, odb: n.core.odb, checkout: n.core.checkout, connectivity: n.core.connectivity });
  const m = wasmModule();
  if ('error' in m) throw new Error(`the wasm core is not built (npm run build:wasm): ${m.error}`);
  // The walk runs on the calling thread whatever the threads; checkout on that many workers.
  for (const threads of [...new Set([1, 2, availableParallelism()])]) out.push({ name: `wasm (${threads} thread${threads > 1 ? 's' : ''})`, threads, ...wasmOdb(m.module) });
  return out;
}

async function main(): Promise<void> {
  const values = benchArgs({ preset: 'medium', runs: '3' });
  const runs = Math.max(1, Number(values.runs));
  const repo = await cachedRepo(presetSpec(values.preset));
  const git = (args: string[], env: NodeJS.ProcessEnv = {}) => execFileSync('git', args, { cwd: repo.gitDir, env: { ...process.env, ...env }, maxBuffer: 1 << 30, encoding: 'utf8' });
  const head = git(['rev-parse', 'HEAD']).trim();
  const files = git(['ls-tree', '-r', '--name-only', 'HEAD']).split('\n').length - 1;
  const work = mkdtempSync(join(tmpdir(), 'mpgit-bench-odb-'));
  const m = machine();
  const results: Record<string, { checkout: Timing; walk: Timing }> = {};
  try {
    let run = 0;
    const fresh = () => {
      const wt = join(work, `wt-${run++}`);
      mkdirSync(wt);
      // The last run's files written back first: writeback behind a run slows its file creation.
      execFileSync('sync');
      return { wt, index: `${wt}.index` };
    };
    // Work trees stay until the end: deleting one (with the file system's discard) slows the
    // file creation of the next run by more than the differences measured.
    const clean = (wt: string, index: string) => {
      execFileSync('git', ['--git-dir', repo.gitDir, '--work-tree', wt, 'diff-files', '--quiet'], { env: { ...process.env, GIT_INDEX_FILE: index } });
    };
    const want = git(['rev-list', '--objects', head]).split('\n').length - 1;
    const GIT = 'git read-tree -u / rev-list --objects';
    const all = cores();
    const handles = all.map((c) => c.odb.odbOpen(repo.gitDir));
    const got: Record<string, { checkout: Timing[]; walk: Timing[] }> = Object.fromEntries([GIT, ...all.map((c) => c.name)].map((n) => [n, { checkout: [], walk: [] }]));
    try {
      // Rows interleaved run by run, so that a change in the machine's load or the file
      // system's state falls on every row alike.
      for (let i = 0; i < runs; i++) {
        const g = fresh();
        got[GIT]!.checkout.push(await measure('git', ['--git-dir', repo.gitDir, '--work-tree', g.wt, 'read-tree', '--reset', '-u', 'HEAD'], { env: { GIT_INDEX_FILE: g.index } }));
        clean(g.wt, g.index);
        got[GIT]!.walk.push(await measure('git', ['--git-dir', repo.gitDir, 'rev-list', '--objects', head]));
        for (const [k, c] of all.entries()) {
          const h = handles[k]!;
          const { wt, index } = fresh();
          got[c.name]!.checkout.push(await timed(() => c.checkout.checkoutRun(c.checkout.checkoutNew(h, head, wt, { threads: c.threads, indexPath: index }))));
          clean(wt, index);
          let objects = 0;
          got[c.name]!.walk.push(await timed(async () => ({ objects } = await c.connectivity.connectivityCheck(h, [head], [], null))));
          if (objects !== want) throw new Error(`${c.name}: the walk reached ${objects} objects, rev-list lists ${want}`);
        }
      }
    } finally {
      all.forEach((c, k) => c.odb.odbClose(handles[k]!));
    }
    for (const [name, r] of Object.entries(got)) results[name] = { checkout: mid(r.checkout), walk: mid(r.walk) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const g = results['git read-tree -u / rev-list --objects']!;
  const rows: Row[] = Object.entries(results).map(([name, r]) => ({
    row: name,
    'checkout s': round(r.checkout.wallMs / 1000),
    'cpu s': round(r.checkout.cpuMs / 1000),
    'x git': round(r.checkout.wallMs / g.checkout.wallMs),
    'walk s': round(r.walk.wallMs / 1000),
    'walk cpu s': round(r.walk.cpuMs / 1000),
    'walk x git': round(r.walk.wallMs / g.walk.wallMs),
    'checkout max gap ms': r.checkout.gapMs === undefined ? '-' : round(r.checkout.gapMs, 1),
    'walk max gap ms': r.walk.gapMs === undefined ? '-' : round(r.walk.gapMs, 1),
  }));
  printTable(`bench:odb: ${values.preset} (${repo.objects} objects, ${files} files at HEAD, ${(repo.packBytes / 1e6).toFixed(1)} MB pack), median of ${runs}; ${machineLine(m)}`, rows);
  const path = writeJson('odb', { repo: { preset: values.preset, objects: repo.objects, files, packBytes: repo.packBytes }, runs, machine: m, backend: { native: 'libdeflate, pread, rayon', wasm: 'miniz_oxide, node fs host imports; checkout on worker threads (one instance each), the walk in steps on the main thread' }, results });
  process.stdout.write(`JSON: ${path}\n`);
}

function mid(ts: Timing[]): Timing {
  return { wallMs: median(ts.map((t) => t.wallMs)), cpuMs: median(ts.map((t) => t.cpuMs)), gapMs: ts[0]?.gapMs === undefined ? undefined : median(ts.map((t) => t.gapMs ?? 0)) };
}

main().catch((e) => {
  process.stderr.write(`bench:odb: ${(e as Error).message}\n`);
  process.exit(1);
});
