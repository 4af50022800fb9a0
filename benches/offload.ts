// Packfile-URI offload: a clone of a generated repository from `mpgit daemon`, plain (git
// upload-pack sends everything) and with base-pack offload (a nightly snapshot a few commits
// behind main is published to nginx; the daemon sends only what the base lacks). Measured per
// clone: bytes the daemon sent (kernel counters, from its log), the daemon's CPU seconds (its
// own and its children's: upload-pack, pack-objects, rev-list), bytes nginx served, wall time.
// Goal: with offload the daemon sends under 5% of the bytes and spends under 10% of the CPU of
// a plain clone. Offloaded clones are measured as the first clone after `mpgit offload` (which
// prepares the answer), the first clone after a ref moved (nothing cached: pack-objects runs),
// a repeated clone (cached), and N concurrent clones right after a ref moved (a CI fleet).
// Bundle URIs: the same base published as a bundle (`--bundles`), cloned by git 2.55 with
// transfer.bundleURI=true and by mpgit (bundles and packfile URIs both asked for). Goal: the
// daemon under the same shares, and mpgit's clone at most 0.7x git 2.55's time.
//
//   npm run bench:offload [-- --preset small|medium|bench] [--runs N] [--base-back N] [--concurrent N]

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs, cpuSeconds, machine, median, printTable, round, writeJson, type Row } from './lib/bench.js';
import { BENCH_ROOT, cachedRepo, presetSpec } from './lib/genrepo.js';
import { startNginx } from '../test/helpers/nginx.js';
import { currentGit } from '../test/helpers/current-git.js';
import { freePort } from '../test/helpers/proc.js';

const MPGIT = join(BENCH_ROOT, '..', 'bin', 'mpgit');
const CLONE_TIMEOUT_MS = 30 * 60_000;
/** Wait for the daemon to log a connection's end after the client exited. */
const LOG_WAIT_MS = 10_000;

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
}

interface Daemon {
  child: ChildProcess;
  port: number;
  events(): { event: string; bytesSent?: number; conn?: number }[];
}

async function startDaemon(base: string): Promise<Daemon> {
  const port = await freePort();
  // Without the pack cache: the plain rows are what a clone costs (pack-objects), the measure
  // offload's goals are stated against; bench:mirror measures the cache.
  const child = spawn(process.execPath, [MPGIT, 'daemon', `--base-path=${base}`, '--export-all', '--reuseaddr', '--verbose', '--log-format=json', '--listen=127.0.0.1', `--port=${port}`, '--no-pack-cache'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  // Ready once it says so (a bare connect could reach another server that took the port).
  const deadline = Date.now() + 30_000;
  while (!/"event":"ready"/.test(text)) {
    if (child.exitCode !== null) throw new Error(`mpgit daemon exited: ${text}`);
    if (Date.now() > deadline) throw new Error(`mpgit daemon not ready within 30 s: ${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    port,
    events: () =>
      text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { event: string; bytesSent?: number; conn?: number }),
  };
}

function runClone(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ ms: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLONE_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
      else resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6 });
    });
  });
}

interface Sample {
  wallMs: number;
  daemonBytes: number;
  daemonCpu: number;
  uriBytes: number;
}

type Client = 'git 2.39' | 'git 2.55' | 'mpgit';

interface Case {
  name: string;
  repo: string;
  client: Client;
  runs: number;
  /** Run before each measured clone (not measured). */
  prepare?: (run: number) => void;
  /** Concurrent clones per run (default 1); the sample is their total. */
  concurrent?: number;
  /** The plain case whose figures this one is compared with. */
  vs: string;
}

async function main(): Promise<void> {
  const values = benchArgs({ preset: 'medium', runs: '3', 'base-back': '20', concurrent: '8' });
  const spec = presetSpec(values.preset!);
  const runs = Math.max(1, Number(values.runs));
  const back = Math.max(0, Number(values['base-back']));
  const fleet = Math.max(0, Number(values.concurrent));
  const repo = await cachedRepo(spec);
  const work = mkdtempSync(join(tmpdir(), 'mpgit-bench-offload-'));
  const cleanups: (() => Promise<void> | void)[] = [];
  const t = { teardown: (fn: () => unknown) => void cleanups.push(fn as () => Promise<void>) };
  try {
    const base = join(work, 'srv');
    const pub = join(work, 'pub');
    mkdirSync(base);
    mkdirSync(pub);
    // The generated repository has no reachability bitmap; `mpgit offload` writes one. A plain
    // clone of a repository with one (as hosting servers keep them) is measured too.
    sh('cp', ['-a', repo.gitDir, join(base, 'plain.git')]);
    sh('cp', ['-a', repo.gitDir, join(base, 'bitmap.git')]);
    sh('git', ['repack', '-a', '-d', '-q', '--write-bitmap-index'], join(base, 'bitmap.git'));
    sh('cp', ['-a', repo.gitDir, join(base, 'offload.git')]);
    const offloaded = join(base, 'offload.git');
    sh('cp', ['-a', repo.gitDir, join(base, 'bundles.git')]);
    const git55 = await currentGit();
    const nginx = await startNginx(t, pub);
    const baseRev = back ? `main~${back}` : 'main';
    const offloadArgs = [MPGIT, 'offload', offloaded, '--publish', pub, '--base-url', `${nginx.baseUrl}/`, '--base', baseRev];
    process.stderr.write(`offload: publishing the base pack (${baseRev}) of ${repo.objects} objects\n`);
    let t0 = Date.now();
    execFileSync(process.execPath, offloadArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
    const prepMs = Date.now() - t0;
    // The same base, published as packs and bundles, under a directory of its own (one bundle list per directory).
    mkdirSync(join(pub, 'b'));
    t0 = Date.now();
    execFileSync(process.execPath, [MPGIT, 'offload', join(base, 'bundles.git'), '--publish', join(pub, 'b'), '--base-url', `${nginx.baseUrl}/b/`, '--base', baseRev, '--bundles'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const bundlePrepMs = Date.now() - t0;
    const refreshMs: number[] = [];
    const daemon = await startDaemon(base);
    cleanups.push(() => {
      daemon.child.kill('SIGKILL');
    });

    const cacheDir = join(offloaded, 'mpgit-offload-cache');
    // The cache emptied, then `mpgit offload --refresh` (base unchanged) prepares the answer.
    const reprepare = () => {
      rmSync(cacheDir, { recursive: true, force: true });
      t0 = Date.now();
      sh(process.execPath, [...offloadArgs, '--refresh', '-q']);
      refreshMs.push(Date.now() - t0);
    };
    // A ref moves (a push): the advertised refs, hence what a clone wants, are new to the cache.
    let moves = 0;
    const moveRef = () => {
      moves++;
      sh('git', ['update-ref', 'refs/heads/bench-moving', `main~${moves}`], offloaded);
    };
    const cases: Case[] = [];
    for (const client of ['git 2.39', 'mpgit'] as const) {
      cases.push(
        { name: 'plain clone', repo: 'plain.git', client, runs, vs: 'plain clone' },
        { name: 'plain clone, bitmap', repo: 'bitmap.git', client, runs, vs: 'plain clone' },
        { name: 'offload, first clone after offload', repo: 'offload.git', client, runs, prepare: reprepare, vs: 'plain clone' },
        { name: 'offload, first clone after a ref change', repo: 'offload.git', client, runs, prepare: moveRef, vs: 'plain clone' },
        { name: 'offload, repeated clone', repo: 'offload.git', client, runs, vs: 'plain clone' },
      );
    }
    cases.push({ name: 'plain clone', repo: 'plain.git', client: 'git 2.55', runs, vs: 'plain clone' });
    for (const client of ['git 2.55', 'mpgit'] as const) cases.push({ name: 'bundle URIs, clone', repo: 'bundles.git', client, runs, vs: 'plain clone' });
    // The CI fleet: clones of the same commit at once, right after a push (nothing cached).
    if (fleet > 1) cases.push({ name: `offload, ${fleet} concurrent clones after a ref change`, repo: 'offload.git', client: 'git 2.39', runs: 1, prepare: moveRef, concurrent: fleet, vs: 'plain clone' });

    const results: { c: Case; samples: Sample[]; error?: string }[] = [];
    for (const c of cases) {
      const samples: Sample[] = [];
      let error: string | undefined;
      for (let r = 0; r < c.runs && !error; r++) {
        c.prepare?.(r);
        const n = c.concurrent ?? 1;
        const dests = Array.from({ length: n }, (_, i) => join(work, `clone-${results.length}-${r}-${i}`));
        const url = `git://127.0.0.1:${daemon.port}/${c.repo}`;
        const before = daemon.events().filter((e) => e.event === 'disconnected').length;
        const logBefore = (await nginx.accessLog()).length;
        const cpu0 = cpuSeconds(daemon.child.pid!);
        try {
          const started = process.hrtime.bigint();
          await Promise.all(
            dests.map((dest) =>
              c.client === 'mpgit'
                ? runClone(process.execPath, [MPGIT, 'clone', '-q', '--bare', url, dest])
                : c.client === 'git 2.55'
                  ? runClone(git55, ['-c', 'transfer.bundleURI=true', 'clone', '-q', '--bare', url, dest])
                  : runClone('git', ['-c', 'protocol.version=2', '-c', 'fetch.uriprotocols=http', 'clone', '-q', '--bare', url, dest]),
            ),
          );
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          // The daemon logs each connection's end (with its byte counters) just after.
          const deadline = Date.now() + LOG_WAIT_MS;
          while (daemon.events().filter((e) => e.event === 'disconnected').length < before + n && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
          const cpu1 = cpuSeconds(daemon.child.pid!);
          const ends = daemon.events().filter((e) => e.event === 'disconnected').slice(before);
          const log = (await nginx.accessLog()).slice(logBefore);
          for (const dest of dests) sh('git', ['fsck', '--connectivity-only', '--no-progress'], dest);
          samples.push({
            wallMs: ms,
            daemonBytes: ends.reduce((a, e) => a + (e.bytesSent ?? 0), 0),
            daemonCpu: cpu1 - cpu0,
            uriBytes: log.reduce((a, e) => a + e.bytes, 0),
          });
        } catch (e) {
          error = (e as Error).message.split('\n')[0]!.slice(0, 200);
        } finally {
          for (const dest of dests) rmSync(dest, { recursive: true, force: true });
        }
      }
      results.push({ c, samples, error });
    }

    const rows: Row[] = [];
    const json: Record<string, unknown>[] = [];
    const medianOf = (name: string, client: Client, k: keyof Sample) => {
      const r = results.find((p) => p.c.name === name && p.c.client === client && p.samples.length);
      return r ? median(r.samples.map((s) => s[k])) : NaN;
    };
    for (const r of results) {
      const { c } = r;
      if (r.error || !r.samples.length) {
        rows.push({ case: c.name, client: c.client, note: `failed: ${r.error}` });
        json.push({ case: c.name, client: c.client, error: r.error });
        continue;
      }
      const n = c.concurrent ?? 1;
      const med = (k: keyof Sample) => median(r.samples.map((s) => s[k]));
      // Against as many plain clones as this case made.
      const bytesShare = (100 * med('daemonBytes')) / (n * medianOf(c.vs, c.client, 'daemonBytes'));
      const cpuShare = (100 * med('daemonCpu')) / (n * medianOf(c.vs, c.client, 'daemonCpu'));
      const cpuShareBitmap = (100 * med('daemonCpu')) / (n * medianOf('plain clone, bitmap', c.client, 'daemonCpu'));
      const isPlain = c.name.startsWith('plain clone');
      rows.push({
        case: c.name,
        client: c.client,
        'daemon MB sent': round(med('daemonBytes') / 1e6, 2),
        'daemon CPU s': round(med('daemonCpu'), 2),
        'nginx MB': round(med('uriBytes') / 1e6, 2),
        'wall s': round(med('wallMs') / 1000, 2),
        'bytes vs plain %': round(bytesShare, 2),
        'CPU vs plain %': round(cpuShare, 1),
        'CPU vs bitmap plain %': round(cpuShareBitmap, 1),
      });
      json.push({
        case: c.name,
        client: c.client,
        concurrent: n,
        runs: r.samples,
        median: { wallMs: med('wallMs'), daemonBytes: med('daemonBytes'), daemonCpu: med('daemonCpu'), uriBytes: med('uriBytes') },
        bytesVsPlainPct: bytesShare,
        cpuVsPlainPct: cpuShare,
        cpuVsBitmapPlainPct: cpuShareBitmap,
        goalsMet: isPlain ? null : bytesShare < 5 && cpuShare < 10,
      });
    }
    printTable(
      `clone of ${values.preset} (${repo.objects} objects, ${(repo.packBytes / 1e6).toFixed(1)} MB pack), base = ${baseRev}, median of ${runs}; goal: offload < 5% bytes, < 10% CPU of a plain clone (concurrent: of ${fleet} plain clones)`,
      rows,
    );
    process.stdout.write(`mpgit offload took ${(prepMs / 1000).toFixed(1)} s (bitmap, base pack, clone answer); --refresh with the base unchanged ${(median(refreshMs) / 1000).toFixed(1)} s (median); with --bundles ${(bundlePrepMs / 1000).toFixed(1)} s\n`);
    const bundleRatio = medianOf('bundle URIs, clone', 'mpgit', 'wallMs') / medianOf('bundle URIs, clone', 'git 2.55', 'wallMs');
    process.stdout.write(`bundle URIs: mpgit clone ${round(bundleRatio, 2)}x git 2.55's time (goal <= 0.7x)\n`);
    const path = writeJson('offload', {
      machine: machine(),
      preset: values.preset,
      objects: repo.objects,
      packBytes: repo.packBytes,
      base: baseRev,
      runs,
      offloadMs: prepMs,
      bundleOffloadMs: bundlePrepMs,
      bundleCloneVsGit255: bundleRatio,
      refreshMs,
      results: json,
    });
    process.stdout.write(`wrote ${path}\n`);
  } finally {
    for (const c of cleanups.reverse()) await c();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
