// A mirror's day: N stock-git clones of one commit at once (a CI fleet), from git daemon and
// from mpgit daemon with a cold pack cache (the first wave: one pack-objects run per distinct
// request, everyone else follows it) and a warm one (every clone a hit). Measured per wave:
// the server's CPU seconds (the daemon and every child it reaped: upload-pack, pack-objects,
// the hook), wall time from the first clone's start to the last one's end, and failures.
// Repositories: a generated one (--preset) and one of real source history (--real, default
// this checkout's own repository). Also one clone alone from each server (cost per miss and
// per hit) and the cache's disk use.
//
//   npm run bench:mirror [-- --clones 16,64] [--preset medium] [--real PATH] [--only gen|real]
//
// Goals: warm cache CPU per clone <= 0.2x git daemon's; first wave <= 0.5x; wall time no
// worse than git daemon's; every clone completes.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { benchArgs, cpuSeconds, machine, printTable, round, writeJson, type Row } from './lib/bench.js';
import { freePort } from '../test/helpers/proc.js';
import { BENCH_ROOT, cachedRepo, presetSpec } from './lib/genrepo.js';

const MPGIT = join(BENCH_ROOT, '..', 'bin', 'mpgit');
const CLONE_TIMEOUT_MS = 30 * 60_000;

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** Children of a process not yet exited and reaped (their CPU is not in cutime until then). */
function children(pid: number): number {
  let n = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    n += readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).length;
  }
  return n;
}

interface Server {
  name: string;
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

async function startServer(kind: 'git' | 'mpgit', base: string, cacheDir: string): Promise<Server> {
  const port = await freePort();
  const common = [`--base-path=${base}`, '--export-all', '--reuseaddr', '--listen=127.0.0.1', `--port=${port}`, '--max-connections=0'];
  const child =
    kind === 'git'
      ? // git-daemon itself: `git daemon` would be a wrapper whose CPU figures wait for its exit.
        spawn(join(sh('git', ['--exec-path']).trim(), 'git-daemon'), common, { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(process.execPath, [MPGIT, 'daemon', ...common, `--cache-dir=${cacheDir}`, '--log-format=json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} daemon exited: ${text}`);
    if (Date.now() > deadline) throw new Error(`${kind} daemon not ready: ${text}`);
    if (kind === 'mpgit' ? /"event":"ready"/.test(text) : await connects(port)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (kind === 'mpgit' && !/"event":"pack-cache"/.test(text)) throw new Error(`mpgit daemon runs without its pack cache: ${text}`);
  return {
    name: kind === 'git' ? 'git daemon' : 'mpgit daemon',
    child,
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    },
  };
}

function connects(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      res(true);
    });
    s.on('error', () => res(false));
  });
}

interface Wave {
  cpuS: number;
  wallS: number;
  failures: number;
  errors: string[];
}

/** N bare clones at once; the server's CPU from before the first to after every child is reaped. */
async function wave(server: Server, repo: string, n: number, work: string): Promise<Wave> {
  const pid = server.child.pid!;
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  const errors: string[] = [];
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise<void>((res) => {
        const dest = join(work, `c${i}`);
        const c = spawn('git', ['clone', '-q', '--bare', `git://127.0.0.1:${server.port}/${repo}`, dest], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        c.stderr!.on('data', (b: Buffer) => (err += b.toString()));
        const timer = setTimeout(() => c.kill('SIGKILL'), CLONE_TIMEOUT_MS);
        c.on('exit', (code) => {
          clearTimeout(timer);
          if (code !== 0) errors.push(`clone ${i}: exit ${code}: ${err.trim().slice(-300)}`);
          rmSync(dest, { recursive: true, force: true });
          res();
        });
      }),
    ),
  );
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  // upload-pack (and the cache's pack-objects) count once reaped.
  const deadline = Date.now() + 60_000;
  while (children(pid) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { cpuS: cpuSeconds(pid) - cpu0, wallS, failures: errors.length, errors };
}

function dirBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.pack')) continue;
    files++;
    bytes += statSync(join(dir, f)).size;
  }
  return { files, bytes };
}

/** A bare copy of `src`'s default branch (and its tags) under `base`, repacked as a server keeps it. */
function prepare(src: string, base: string, name: string): { path: string; objects: number; packMB: number; bitmap: boolean; commits: number; tags: boolean } {
  const dest = join(base, name);
  const head = sh('git', ['symbolic-ref', '--short', 'HEAD'], src).trim();
  let tags = true;
  try {
    sh('git', ['clone', '-q', '--bare', '--no-local', '--single-branch', '--branch', head, src, dest]);
    sh('git', ['repack', '-a', '-d', '-q', '--write-bitmap-index'], dest);
  } catch {
    // A source whose tags reach objects it lacks (a partial mirror): the branch alone.
    process.stderr.write(`${src}: its tags are incomplete; serving ${head} without tags\n`);
    tags = false;
    rmSync(dest, { recursive: true, force: true });
    sh('git', ['clone', '-q', '--bare', '--no-local', '--single-branch', '--no-tags', '--branch', head, src, dest]);
    sh('git', ['repack', '-a', '-d', '-q', '--write-bitmap-index'], dest);
  }
  const counts = sh('git', ['count-objects', '-v'], dest);
  const num = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(counts)?.[1] ?? 0);
  const bitmap = readdirSync(join(dest, 'objects', 'pack')).some((f) => f.endsWith('.bitmap'));
  const commits = Number(sh('git', ['rev-list', '--count', 'HEAD'], dest).trim());
  return { path: dest, objects: num('in-pack'), packMB: num('size-pack') / 1024, bitmap, commits, tags };
}

function cpuFlags(): string[] {
  const m = /^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  const have = new Set((m?.[1] ?? '').split(/\s+/));
  return ['sse4_2', 'avx2', 'avx512f', 'sha_ni'].filter((f) => have.has(f));
}

async function main(): Promise<void> {
  const values = benchArgs({ clones: '16,64', preset: 'medium', real: undefined, only: undefined });
  const counts = values.clones!.split(',').map(Number);
  const hook = join(BENCH_ROOT, '..', 'target', 'release', 'mpgit-pack-hook');
  if (!existsSync(hook)) throw new Error(`${hook} is missing: run \`npm run build:native\``);
  const scratch = mkdtempSync(join(tmpdir(), 'mpgit-mirror-'));
  const base = join(scratch, 'srv');
  const work = join(scratch, 'work');
  const repos: { name: string; label: string; info: ReturnType<typeof prepare> }[] = [];
  try {
    if (values.only !== 'real') {
      const gen = await cachedRepo(presetSpec(values.preset!));
      repos.push({ name: 'gen.git', label: `generated (${values.preset})`, info: prepare(gen.gitDir, base, 'gen.git') });
    }
    if (values.only !== 'gen') {
      const real = resolve(values.real ?? sh('git', ['rev-parse', '--git-common-dir'], join(BENCH_ROOT, '..')).trim());
      repos.push({ name: 'real.git', label: `real history (${real})`, info: prepare(real, base, 'real.git') });
    }
    const results: Row[] = [];
    const rows: Row[] = [];
    for (const repo of repos) {
      const i = repo.info;
      process.stderr.write(`${repo.label}: ${i.commits} commits, ${i.objects} objects, ${i.packMB.toFixed(1)} MB pack, bitmap ${i.bitmap}\n`);
      for (const n of [1, ...counts]) {
        const cache = join(scratch, `cache-${repo.name}-${n}`);
        const git = await startServer('git', base, cache);
        const g = await wave(git, repo.name, n, work);
        await git.stop();
        const mp = await startServer('mpgit', base, cache);
        const cold = await wave(mp, repo.name, n, work);
        const disk = dirBytes(cache);
        const warm = await wave(mp, repo.name, n, work);
        await mp.stop();
        for (const [server, w] of [['git daemon', g], ['mpgit, cold cache', cold], ['mpgit, warm cache', warm]] as const) {
          const row: Row = {
            repo: repo.name,
            clones: n,
            server,
            'CPU s': round(w.cpuS, 2),
            'CPU/clone s': round(w.cpuS / n, 3),
            'CPU vs git': round(w.cpuS / g.cpuS, 2),
            'wall s': round(w.wallS, 2),
            'wall vs git': round(w.wallS / g.wallS, 2),
            ok: `${n - w.failures}/${n}`,
          };
          rows.push(row);
          results.push({ ...row, errors: w.errors.slice(0, 5).join(' | '), cacheEntries: server === 'git daemon' ? 0 : disk.files, cacheBytes: server === 'git daemon' ? 0 : disk.bytes });
        }
        process.stderr.write(`${repo.name} x${n}: git ${g.cpuS.toFixed(2)} s, cold ${cold.cpuS.toFixed(2)} s, warm ${warm.cpuS.toFixed(2)} s CPU; cache ${disk.files} entries, ${(disk.bytes / 1e6).toFixed(1)} MB\n`);
      }
    }
    const m = { ...machine(), cpuFlags: cpuFlags().join(' '), hook: 'mpgit-pack-hook (Rust, std only)' };
    printTable(`bench:mirror on ${m.cpu} (${m.cpus} cores, load ${m.loadavg1}); server CPU = daemon + reaped children`, rows);
    const goals = rows
      .filter((r) => r.server !== 'git daemon' && r.clones !== 1)
      .map((r) => ({
        repo: r.repo,
        clones: r.clones,
        server: r.server,
        cpuGoal: r.server === 'mpgit, warm cache' ? 0.2 : 0.5,
        cpuMet: (r['CPU vs git'] as number) <= (r.server === 'mpgit, warm cache' ? 0.2 : 0.5),
        wallMet: (r['wall vs git'] as number) <= 1,
        allCompleted: r.ok === `${r.clones}/${r.clones}`,
      }));
    const path = writeJson('mirror', { machine: m, repos: repos.map((r) => ({ name: r.name, label: r.label, ...r.info, path: undefined })), results, goals });
    process.stdout.write(`wrote ${path}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench:mirror: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
