// mpgit index-pack against git index-pack on the same pack, at 1 and 2 threads: wall time,
// peak RSS, ratio to git at the same thread count. Every index produced is checked byte for
// byte against git's before it counts.
//
// The WebAssembly core (MPGIT_CORE=wasm) at 1 and 2 threads, and isomorphic-git's indexPack
// (the pure-JavaScript indexer users know) are rows too.
//
// With the addon, one extra row per SHA-1 backend the CPU supports (MPGIT_SHA1_BACKEND forced)
// at each thread count: no backend may be slower than the portable one.
//
//   npm run bench:index-pack [-- --preset small|medium|bench | --pack FILE.pack] [--runs N] [--no-backends] [--only REGEX]
//
// --only keeps the rows whose name matches (git's rows always stay: the ratios need them), so
// that a busy machine can give more rounds to the comparison at hand (`--only 'native\)|wasm'`).

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { core, passedOverNative } from '../ts/core/index.js';
import { machine, machineLine, measure, median, printTable, round, writeJson, type Row } from './lib/bench.js';
import { versionReport } from '../ts/version.js';
import { wasmModule } from '../ts/core/wasm.js';
import { BENCH_ROOT, cachedRepo, presetSpec } from './lib/genrepo.js';

const MPGIT = join(BENCH_ROOT, '..', 'bin', 'mpgit');
const ISO = join(BENCH_ROOT, 'lib', 'iso-index-pack.ts');
const isoVersion = (JSON.parse(readFileSync(join(BENCH_ROOT, '..', 'node_modules', 'isomorphic-git', 'package.json'), 'utf8')) as { version: string }).version;

interface Case {
  name: string;
  threads: number;
  cmd: string;
  args: (pack: string, idx: string) => string[];
  env?: NodeJS.ProcessEnv;
  /** Why this row cannot run, if it cannot. */
  unavailable?: string | null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { preset: { type: 'string', default: 'bench' }, pack: { type: 'string' }, runs: { type: 'string', default: '3' }, 'no-backends': { type: 'boolean' }, only: { type: 'string' } },
  });
  const runs = Math.max(1, Number(values.runs));
  const work = mkdtempSync(join(tmpdir(), 'mpgit-bench-index-pack-'));
  try {
    const pack = join(work, 'bench.pack');
    let reference: Buffer;
    let packInfo: Record<string, unknown>;
    if (values.pack) {
      // Any pack (a real project's): git's index of it is the reference.
      copyFileSync(values.pack, pack);
      execFileSync('git', ['index-pack', '-o', join(work, 'ref.idx'), pack], { stdio: 'ignore' });
      reference = readFileSync(join(work, 'ref.idx'));
      const objects = reference.readUInt32BE(8 + 255 * 4);
      packInfo = { source: values.pack, objects, bytes: statSync(pack).size };
    } else {
      const repo = await cachedRepo(presetSpec(values.preset!));
      copyFileSync(repo.packPath, pack);
      reference = readFileSync(repo.idxPath);
      packInfo = { objects: repo.objects, bytes: repo.packBytes, preset: values.preset, spec: repo.spec };
    }
    const native = core.kind === 'native' ? null : passedOverNative();
    const w = wasmModule();
    const wasm = 'error' in w ? w.error : null;
    const backends = native || values['no-backends'] ? [] : versionReport().sha1.backends.filter((b) => b.supported).map((b) => b.name);
    const cases: Case[] = [];
    for (const threads of [1, 2]) {
      cases.push({ name: 'git index-pack', threads, cmd: 'git', args: (p, i) => ['index-pack', `--threads=${threads}`, '-o', i, p] });
      const args = (p: string, i: string) => [MPGIT, 'index-pack', '--threads', String(threads), '-o', i, p];
      cases.push({ name: 'mpgit index-pack (native)', threads, cmd: process.execPath, args, env: { MPGIT_CORE: 'native' }, unavailable: native && `native core not loaded: ${native}` });
      for (const b of backends) {
        cases.push({ name: `mpgit index-pack (native, sha1 ${b})`, threads, cmd: process.execPath, args, env: { MPGIT_CORE: 'native', MPGIT_SHA1_BACKEND: b } });
      }
      cases.push({ name: 'mpgit index-pack (wasm)', threads, cmd: process.execPath, args, env: { MPGIT_CORE: 'wasm' }, unavailable: wasm && `WebAssembly core not built: ${wasm}` });
    }
    cases.push({ name: `isomorphic-git ${isoVersion} indexPack`, threads: 1, cmd: process.execPath, args: (p, i) => ['--import', 'tsx', ISO, p, i] });

    // Rounds over all cases (not all runs of one case, then the next) so that a change in the
    // machine's load during the bench hits every row alike.
    const only = values.only ? new RegExp(values.only) : null;
    if (only) cases.splice(0, cases.length, ...cases.filter((c) => c.cmd === 'git' || only.test(c.name)));
    const runnable = cases.filter((c) => !c.unavailable);
    const walls = new Map<Case, number[]>(runnable.map((c) => [c, []]));
    const rss = new Map<Case, number[]>(runnable.map((c) => [c, []]));
    const cpu = new Map<Case, number[]>(runnable.map((c) => [c, []]));
    for (let r = 0; r < runs; r++) {
      for (const c of runnable) {
        const idx = join(work, 'run.idx');
        rmSync(idx, { force: true });
        const m = await measure(c.cmd, c.args(pack, idx), { env: c.env });
        if (!readFileSync(idx).equals(reference)) throw new Error(`${c.name} (${c.threads} threads) wrote an index that differs from git's`);
        rmSync(idx, { force: true });
        walls.get(c)!.push(m.wallMs);
        rss.get(c)!.push(m.peakRssMB);
        cpu.get(c)!.push(m.cpuMs);
        process.stderr.write(`round ${r + 1}/${runs}: ${c.name} threads=${c.threads}: ${(m.wallMs / 1000).toFixed(2)} s, ${m.peakRssMB.toFixed(0)} MB\n`);
      }
    }
    const results: (Row & { wallMs?: number })[] = cases.map((c): Row & { wallMs?: number } =>
      c.unavailable
        ? { indexer: c.name, threads: c.threads, note: c.unavailable }
        : { indexer: c.name, threads: c.threads, wallMs: median(walls.get(c)!), cpuMs: median(cpu.get(c)!), peakRssMB: Math.max(...rss.get(c)!), runsMs: walls.get(c)!.map((w) => round(w, 0)).join(' ') },
    );
    const gitAt = (threads: number) => results.find((r) => r.indexer === 'git index-pack' && r.threads === threads)?.wallMs;
    // Against the native core at the same threads: the median of each round's ratio (the two
    // ran back to back, so a change in the machine's load mostly cancels out).
    const nativeCase = (threads: number) => runnable.find((c) => c.name === 'mpgit index-pack (native)' && c.threads === threads);
    const xNative = (c: Case, of: Map<Case, number[]>): number | null => {
      const n = nativeCase(c.threads);
      return n && n !== c && of.has(c) ? median(of.get(c)!.map((v, i) => v / of.get(n)![i]!)) : null;
    };
    const vsNative = new Map(runnable.map((c) => [c.name + c.threads, { wall: xNative(c, walls), cpu: xNative(c, cpu) }]));
    const rows: Row[] = results.map((r) => {
      const git = gitAt(r.threads as number);
      return r.wallMs === undefined
        ? { indexer: r.indexer, threads: r.threads, 'wall s': '-', 'CPU s': '-', 'peak RSS MB': '-', 'x git': '-', 'x native wall/CPU': '-', note: r.note ?? '' }
        : {
            indexer: r.indexer,
            threads: r.threads,
            'wall s': round(r.wallMs / 1000),
            'CPU s': round((r.cpuMs as number) / 1000),
            'peak RSS MB': round(r.peakRssMB as number, 0),
            'x git': git ? round(r.wallMs / git) : '-',
            'x native wall/CPU': ratios(vsNative.get(String(r.indexer) + r.threads)),
            note: '',
          };
    });
    const m = machine();
    const title = `index-pack: ${packInfo.objects} objects, ${(Number(packInfo.bytes) / 1e6).toFixed(1)} MB pack, median of ${runs} (x git: wall time / git's at the same threads; x native: the median of each round's ratio to the native core at the same threads)\non ${machineLine(m)}`;
    printTable(title, rows);
    const path = writeJson(values.pack ? 'index-pack-file' : 'index-pack', {
      bench: 'index-pack',
      date: new Date().toISOString(),
      machine: m,
      pack: packInfo,
      runs,
      results: results.map((r) => ({
        ...r,
        ratioToGit: r.wallMs !== undefined && gitAt(r.threads as number) ? r.wallMs / gitAt(r.threads as number)! : null,
        ratioToNative: vsNative.get(String(r.indexer) + r.threads) ?? null,
      })),
    });
    process.stdout.write(`wrote ${path}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function ratios(v: { wall: number | null; cpu: number | null } | undefined): string {
  return v?.wall == null || v.cpu == null ? '-' : `${round(v.wall)} / ${round(v.cpu)}`;
}

main().catch((e) => {
  process.stderr.write(`bench index-pack: ${(e as Error).message}\n`);
  process.exit(1);
});
