// Shared bench plumbing: run a command measuring wall time and peak RSS (through
// /usr/bin/time), print a table, write JSON to benches/out/<name>.json. Peak RSS is GNU time's
// %M, the kernel's ru_maxrss for the command: the largest resident set any single process of
// its tree reached (the command and every descendant it waited for, e.g. git clone's
// index-pack), not a sum over processes running at once. CPU time is GNU time's %U + %S: the
// command's and its waited-for descendants' user and system time (on a shared machine, wall
// time stretches with the others' load; CPU time much less).

import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_ROOT } from './genrepo.js';
import { versionReport } from '../../ts/version.js';

export const OUT_DIR = join(BENCH_ROOT, 'out');

/**
 * A bench's command line, every option a `--name value` string: `defaults` names each one with
 * its default (undefined: none). An unknown option is refused, as parseArgs does.
 */
export function benchArgs<const D extends Record<string, string | undefined>>(defaults: D): { [K in keyof D]: D[K] extends string ? string : string | undefined } {
  const options: Record<string, { type: 'string'; default?: string }> = {};
  for (const [name, value] of Object.entries(defaults)) options[name] = value === undefined ? { type: 'string' } : { type: 'string', default: value };
  return parseArgs({ options }).values as never;
}
const TIME = '/usr/bin/time';
/** Longest a single measured command may run. */
const RUN_TIMEOUT_MS = 30 * 60_000;

export interface Measured {
  wallMs: number;
  peakRssMB: number;
  cpuMs: number;
  stdout: string;
}

/** Runs `cmd args` once; throws with its output unless it exits 0. */
export function measure(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdinFile?: string } = {}): Promise<Measured> {
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: install the "time" package (apt-get install time)`);
  const scratch = mkdtempSync(join(tmpdir(), 'mpgit-bench-'));
  const report = join(scratch, 'time');
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(TIME, ['-f', '%M %U %S', '-o', report, cmd, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    if (opts.stdinFile) {
      createReadStream(opts.stdinFile).pipe(child.stdin!);
      child.stdin!.on('error', () => {});
    }
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      try {
        if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`);
        const [kb, user, sys] = readFileSync(report, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        resolve({ wallMs, peakRssMB: kb! / 1024, cpuMs: (user! + sys!) * 1000, stdout: out });
      } catch (e) {
        reject(e);
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export type Row = Record<string, string | number>;

/** Prints rows as an aligned text table (numbers right-aligned). */
export function printTable(title: string, rows: Row[]): void {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined) => (v === undefined ? '' : String(v));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: (string | number | undefined)[]) =>
    vals.map((v, i) => (typeof v === 'number' ? cell(v).padStart(width[i]!) : cell(v).padEnd(width[i]!))).join('  ');
  process.stdout.write(`\n${title}\n${line(cols)}\n${width.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`${line(cols.map((c) => r[c]))}\n`);
  process.stdout.write('\n');
}

export interface Machine {
  cpus: number;
  cpu: string;
  /** From /proc/cpuinfo: the flags that decide the core's code paths (null: unreadable). */
  cpuFlags: Record<string, boolean> | null;
  /** The SHA-1 backend mpgit chooses here (MPGIT_SHA1_BACKEND as set for the bench), or
   * node:crypto without the addon; each supported backend's MB/s from that choice. */
  sha1Backend: string | null;
  sha1MBps: Record<string, number | null>;
  nativeAddon: boolean;
  node: string;
  git: string;
  loadavg1: number;
}

/** What the numbers were measured on: every bench's JSON records it. */
export function machine(): Machine {
  let gitVersion = 'unknown';
  try {
    gitVersion = execFileSync('git', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as unknown
  }
  const v = versionReport();
  return {
    cpus: cpus().length,
    cpu: v.cpu.model,
    cpuFlags: v.cpu.flags,
    sha1Backend: v.sha1.error ? `error: ${v.sha1.error}` : v.sha1.backend,
    sha1MBps: Object.fromEntries(v.sha1.backends.filter((b) => b.supported).map((b) => [b.name, b.mbPerSec])),
    nativeAddon: v.native.loaded,
    node: process.version,
    git: gitVersion,
    // The 1-minute load average: timings taken on a busy machine are noisy (ratios less so).
    loadavg1: round(loadavg()[0]!),
  };
}

/** One line naming the machine, for the top of a bench's table. */
export function machineLine(m: Machine): string {
  const flags = m.cpuFlags ? Object.entries(m.cpuFlags).map(([f, on]) => `${f} ${on ? 'yes' : 'no'}`).join(', ') : 'flags unknown';
  return `${m.cpu}, ${m.cpus} CPUs (${flags}); SHA-1 backend ${m.sha1Backend}; load ${m.loadavg1}`;
}

/** Writes benches/out/<name>.json; returns its path. */
export function writeJson(name: string, data: unknown): string {
  mkdirSync(OUT_DIR, { recursive: true });
  const path = join(OUT_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

/** Rounds for display. */
export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds of a process and its reaped children: fields 14-17 of /proc/<pid>/stat (utime stime cutime cstime). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [11, 12, 13, 14].reduce((a, i) => a + Number(f[i]), 0) / CLK_TCK;
}
