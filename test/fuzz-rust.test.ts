// The suite's fuzz pass over the Rust core's parsers (crates/core/src/fuzz): pack entry headers,
// inflate, delta application, .idx reading, loose objects, trees / commits / tags, the index
// file, the pack scanner. Seed 1, 2,000 inputs per target, the saved corpus
// (test/fuzz/corpus/rust) replayed first.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, run } from './helpers/proc.js';

test('fuzz the Rust parsers: no panic, signal, hang or unbounded memory over a seeded pass', async (t) => {
  const crashDir = mkdtempSync(join(tmpdir(), 'mpgit-fuzz-rust-'));
  const r = await run('cargo', ['test', '--release', '-q', '-p', 'mpgit-core', '--lib', 'fuzz::run', '--', '--nocapture', '--test-threads=1'], {
    cwd: ROOT,
    env: { ...process.env, MPGIT_FUZZ_SEED: '1', MPGIT_FUZZ_INPUTS: '2000', MPGIT_FUZZ_CRASH_DIR: crashDir },
    timeoutMs: 280_000,
  });
  const reports = r.stdout.split('\n').filter((l) => l.startsWith('FUZZ-RESULT ')).map((l) => JSON.parse(l.slice(12)));
  t.is(r.code, 0, `cargo test failed (failing inputs under ${crashDir}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  const names = reports.map((x) => x.target);
  t.deepEqual(names, ['pack-entry-header', 'inflate', 'delta', 'tree', 'commit', 'index-file', 'loose', 'idx', 'pack-scan']);
  for (const x of reports) {
    t.log(`${x.target}: ${x.inputs} inputs, ${x.parsed} parsed, ${x.refused} refused, slowest ${x.slowestUs} us, peak reserved ${x.peakReservedBytes} B`);
    t.deepEqual([x.crashes, x.hangs, x.memory], [0, 0, 0], x.target);
    t.true(x.inputs >= 2000 && x.parsed > 0 && x.refused > 0, `${x.target} reaches results and errors`);
  }
});
