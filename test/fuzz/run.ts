// `npm run fuzz -- [--seconds N | --inputs N] [--seed S] [--targets a,b] [--no-rust]`
// Runs every fuzz target (TypeScript in process, Rust through `cargo test`) for N seconds or N
// inputs each, with a new random seed unless one is given (printed first, so a run can be
// repeated). A failing input is saved into the corpus (test/fuzz/corpus/{ts,rust}/<target>/),
// where every later run, and the suite, replays it. Writes benches/out/fuzz.json.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { fuzzTarget, type Report } from './lib.js';
import { tsTargets } from './targets.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function args(argv: string[]): { seconds?: number; inputs?: number; seed: number; targets?: string[]; rust: boolean } {
  const o: ReturnType<typeof args> = { seed: Math.floor(Math.random() * 2 ** 31), rust: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => argv[++i] ?? '';
    if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--inputs') o.inputs = Number(next());
    else if (a === '--seed') o.seed = Number(next());
    else if (a === '--targets') o.targets = next().split(',');
    else if (a === '--no-rust') o.rust = false;
    else throw new Error(`unknown argument ${a}: expected --seconds N, --inputs N, --seed S, --targets a,b, --no-rust`);
  }
  if (o.seconds === undefined && o.inputs === undefined) o.seconds = 10;
  return o;
}

/** The Rust targets, through the crate's fuzz test; their reports are its FUZZ-RESULT lines. */
function runRust(o: ReturnType<typeof args>): Promise<Report[]> {
  const env = {
    ...process.env,
    MPGIT_FUZZ_SEED: String(o.seed),
    MPGIT_FUZZ_INPUTS: String(o.inputs ?? 0),
    MPGIT_FUZZ_SECONDS: o.seconds !== undefined ? String(o.seconds) : '',
    MPGIT_FUZZ_TARGETS: o.targets?.join(',') ?? '',
    MPGIT_FUZZ_CRASH_DIR: `${root}test/fuzz/corpus/rust`,
  };
  return new Promise((resolve, reject) => {
    const child = spawn('cargo', ['test', '--release', '-q', '-p', 'mpgit-core', '--lib', 'fuzz::run', '--', '--nocapture', '--test-threads=1'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      process.stdout.write(c.toString().split('\n').filter((l) => !l.startsWith('FUZZ-RESULT')).join('\n'));
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const reports = out.split('\n').filter((l) => l.startsWith('FUZZ-RESULT ')).map((l) => JSON.parse(l.slice(12)) as Report);
      if (code !== 0 && !reports.some((r) => r.crashes + r.hangs + r.memory > 0)) {
        reports.push({ target: 'rust (cargo test)', seed: o.seed, inputs: 0, parsed: 0, refused: 0, regressions: 0, crashes: 1, hangs: 0, memory: 0, maxInput: 0, slowestMs: 0, peakRssMb: 0, seconds: 0, failure: `cargo test exited ${code} (a hang or a signal: see its output; the input is saved under test/fuzz/corpus/rust)` });
      }
      resolve(reports);
    });
  });
}

async function main(): Promise<void> {
  const o = args(process.argv.slice(2));
  console.log(`fuzz: seed ${o.seed} (repeat with --seed ${o.seed}), ${o.seconds !== undefined ? `${o.seconds} s` : `${o.inputs} inputs`} per target`);
  const reports: Report[] = [];
  for (const t of tsTargets) {
    if (o.targets && !o.targets.includes(t.name)) continue;
    const r = await fuzzTarget(t, { seed: o.seed, numRuns: o.inputs ?? 1e9, seconds: o.seconds });
    console.log(`${t.name.padEnd(20)} ${String(r.inputs).padStart(8)} inputs  crashes ${r.crashes}  hangs ${r.hangs}  memory ${r.memory}  slowest ${r.slowestMs.toFixed(1)} ms  rss ${r.peakRssMb} MB`);
    if (r.failure) console.log(`  FAILED: ${r.failure.split('\n')[0]}\n  input saved as ${r.savedAs}`);
    reports.push(r);
  }
  if (o.rust) {
    const rust = await runRust(o);
    for (const r of rust) {
      const rss = r.peakRssMb || Math.round(((r as unknown as { peakRssKb?: number }).peakRssKb ?? 0) / 1024);
      console.log(`${`rust:${r.target}`.padEnd(20)} ${String(r.inputs).padStart(8)} inputs  crashes ${r.crashes}  hangs ${r.hangs}  memory ${r.memory}  rss ${rss} MB`);
    }
    reports.push(...rust.map((r) => ({ ...r, target: `rust:${r.target}` })));
  }
  const cpu = cpus()[0]?.model ?? 'unknown';
  const flags = (() => {
    try {
      return (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(' ').filter((f) => ['sha_ni', 'avx2', 'avx512f'].includes(f));
    } catch {
      return [];
    }
  })();
  mkdirSync(`${root}benches/out`, { recursive: true });
  writeFileSync(`${root}benches/out/fuzz.json`, JSON.stringify({ date: new Date().toISOString(), cpu, cpuFlags: flags, seed: o.seed, seconds: o.seconds ?? null, inputs: o.inputs ?? null, reports }, null, 1) + '\n');
  const bad = reports.filter((r) => r.crashes + r.hangs + r.memory > 0);
  const total = reports.reduce((s, r) => s + r.inputs, 0);
  console.log(`fuzz: ${reports.length} targets, ${total} inputs, ${bad.length} failing (${cpu}); report in benches/out/fuzz.json`);
  if (bad.length) process.exitCode = 1;
}

await main();
