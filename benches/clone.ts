// mpgit clone against git clone, from the same stock git daemon over loopback, on the same
// generated repository: wall time (median of the runs, taken alternately), peak RSS, ratio
// to git. Every mpgit clone is checked by git (HEAD, status) before its time counts.
//
//   npm run bench:clone [-- --preset small|medium|bench] [--runs N] [--filter blob:none]
//
// With --filter both clone partially (the daemon's upload-pack allows filters); the goal is
// then mpgit <= 0.6x git.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { core, passedOverNative } from '../ts/core/index.js';
import { wasmModule } from '../ts/core/wasm.js';
import { benchArgs, machine, machineLine, measure, median, printTable, round, writeJson, type Row } from './lib/bench.js';
import { BENCH_ROOT, cachedRepo, presetSpec } from './lib/genrepo.js';
import { freePort } from '../test/helpers/proc.js';

const MPGIT = join(BENCH_ROOT, '..', 'bin', 'mpgit');
/** Longest wait for the daemon to come up. */
const DAEMON_START_MS = 10_000;

interface Case {
  name: string;
  cmd: string;
  args: (url: string, dir: string) => string[];
  env?: NodeJS.ProcessEnv;
  unavailable?: string | null;
}

async function startDaemon(base: string, allowFilter: boolean): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const execPath = execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim();
  const child = spawn(join(execPath, 'git-daemon'), [`--base-path=${base}`, '--export-all', '--reuseaddr', '--verbose', '--listen=127.0.0.1', `--port=${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // upload-pack (the daemon's child) reads this as configuration: the shared bench repository stays untouched.
    env: allowFilter ? { ...process.env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'uploadpack.allowFilter', GIT_CONFIG_VALUE_0: 'true' } : process.env,
  });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`git daemon did not start: ${text}`)), DAEMON_START_MS);
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      if (/Ready to rumble/.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`git daemon exited ${code}: ${text}`)));
  });
  child.stderr!.resume();
  return { port, stop: () => child.kill('SIGKILL') };
}

/** What git says about an mpgit clone; throws unless it is complete and clean. */
function check(dir: string, head: string): void {
  const got = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
  if (got !== head) throw new Error(`clone in ${dir} has HEAD ${got}, expected ${head}`);
  const status = execFileSync('git', ['status', '--porcelain'], { cwd: dir, encoding: 'utf8' });
  if (status) throw new Error(`clone in ${dir} is not clean:\n${status.slice(0, 2000)}`);
  execFileSync('git', ['diff-files', '--quiet'], { cwd: dir });
}

async function main(): Promise<void> {
  const values = benchArgs({ preset: 'bench', runs: '3', filter: undefined });
  const filter = values.filter ? [`--filter=${values.filter}`] : [];
  const spec = presetSpec(values.preset!);
  const runs = Math.max(1, Number(values.runs));
  const repo = await cachedRepo(spec);
  const daemon = await startDaemon(dirname(repo.gitDir), filter.length > 0);
  const url = `git://127.0.0.1:${daemon.port}/repo.git`;
  const work = mkdtempSync(join(tmpdir(), 'mpgit-bench-clone-'));
  const native = core.kind === 'native' ? null : passedOverNative();
  const w = wasmModule();
  const wasm = 'error' in w ? w.error : null;
  const cases: Case[] = [
    { name: 'git clone', cmd: 'git', args: (u, d) => ['clone', '-q', ...filter, u, d] },
    { name: 'mpgit clone', cmd: process.execPath, args: (u, d) => [MPGIT, 'clone', '-q', ...filter, u, d], env: { MPGIT_CORE: 'native' }, unavailable: native && `native core not loaded: ${native}` },
    { name: 'mpgit clone (wasm core)', cmd: process.execPath, args: (u, d) => [MPGIT, 'clone', '-q', ...filter, u, d], env: { MPGIT_CORE: 'wasm' }, unavailable: wasm && `WebAssembly core not built: ${wasm}` },
  ];
  try {
    const walls = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    const rss = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    const cpu = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    for (let r = 0; r < runs; r++) {
      // Alternate the order so neither tool always gets the warmer page cache.
      const order = r % 2 ? [...cases].reverse() : cases;
      for (const c of order) {
        if (c.unavailable) continue;
        const dir = join(work, `clone-${r}`);
        rmSync(dir, { recursive: true, force: true });
        const m = await measure(c.cmd, c.args(url, dir), { env: c.env });
        if (c.cmd !== 'git') check(dir, repo.head);
        rmSync(dir, { recursive: true, force: true });
        walls.get(c.name)!.push(m.wallMs);
        rss.get(c.name)!.push(m.peakRssMB);
        cpu.get(c.name)!.push(m.cpuMs);
        process.stderr.write(`${c.name} run ${r + 1}/${runs}: ${(m.wallMs / 1000).toFixed(2)} s, ${m.peakRssMB.toFixed(0)} MB, CPU ${(m.cpuMs / 1000).toFixed(2)} s\n`);
      }
    }
    const gitWalls = walls.get('git clone')!;
    const gitWall = median(gitWalls);
    const rows: Row[] = cases.map((c) => {
      const w = walls.get(c.name)!;
      if (!w.length) return { clone: c.name, 'wall s': '-', 'peak RSS MB': '-', 'x git': '-', 'x git, per run': '-', 'client CPU s': '-', 'CPU x git': '-', note: c.unavailable ?? '' };
      // Each run's tools ran back to back: the median of per-run ratios shrugs off load that
      // comes and goes on a shared machine better than the ratio of medians.
      const paired = median(w.map((x, i) => x / gitWalls[i]!));
      // The client's CPU time (git clone's includes its index-pack; the server's is not counted).
      const cpuS = median(cpu.get(c.name)!) / 1000;
      const cpuGit = median(cpu.get('git clone')!) / 1000;
      return {
        clone: c.name,
        'wall s': round(median(w) / 1000),
        'peak RSS MB': round(Math.max(...rss.get(c.name)!), 0),
        'x git': round(median(w) / gitWall),
        'x git, per run': round(paired),
        'client CPU s': round(cpuS),
        'CPU x git': round(cpuS / cpuGit),
        note: '',
      };
    });
    const m = machine();
    const title =
      `clone${filter.length ? ` ${filter[0]}` : ''} over loopback from git daemon: ${repo.objects} objects, ${(repo.packBytes / 1e6).toFixed(1)} MB pack, median of ${runs} (goal: mpgit <= 0.6x git)\n` +
      'peak RSS: the largest process of each clone\'s tree over the runs (GNU time %M; git clone\'s index-pack included)\n' +
      `on ${machineLine(m)}`;
    printTable(title, rows);
    const path = writeJson(filter.length ? 'clone-filter' : 'clone', {
      preset: values.preset,
      filter: values.filter ?? null,
      repo: { objects: repo.objects, packBytes: repo.packBytes, head: repo.head },
      runs,
      machine: m,
      results: cases.map((c) => ({ name: c.name, wallMs: walls.get(c.name)!, peakRssMB: rss.get(c.name)!, cpuMs: cpu.get(c.name)!, unavailable: c.unavailable ?? null })),
      rows,
    });
    process.stdout.write(`wrote ${path}\n`);
  } finally {
    daemon.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
