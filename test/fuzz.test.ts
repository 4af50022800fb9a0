// The suite's fuzz pass over the TypeScript parsers: every target, a fixed seed, a few seconds
// each; the saved corpus (test/fuzz/corpus/ts) is replayed first. `npm run fuzz` runs longer.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzTarget } from './fuzz/lib.js';
import { tsTargets } from './fuzz/targets.js';

const saveDir = mkdtempSync(join(tmpdir(), 'mpgit-fuzz-'));

for (const t of tsTargets) {
  test.serial(`fuzz ${t.name}: no crash, hang or unbounded memory over a seeded pass`, async (tt) => {
    // The daemon-config target writes a file per input: fewer of them.
    const r = await fuzzTarget(t, { seed: 1, numRuns: t.name === 'daemon-config' ? 400 : 1500, saveDir });
    tt.log(`${r.inputs} inputs (${r.regressions} from the corpus), ${r.parsed} parsed, ${r.refused} refused, slowest ${r.slowestMs.toFixed(1)} ms, ${r.seconds} s`);
    tt.is(r.failure, undefined, `failing input saved as ${r.savedAs}`);
    tt.deepEqual([r.crashes, r.hangs, r.memory], [0, 0, 0]);
    tt.true(r.parsed > 0 && r.refused > 0, 'the inputs reach both the parser\'s results and its errors');
  });
}
