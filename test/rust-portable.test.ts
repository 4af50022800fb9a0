// The Rust unit tests of the portable indexer (crates/core/src/pack/portable/tests.rs: what
// the WebAssembly core runs, built natively with the `portable` feature) against git
// index-pack: the same .idx/.rev and --fix-thin bytes however the input is chunked and the
// roots shared out, errors on corrupt input, the size limit.

import test from 'ava';
import { ROOT, run } from './helpers/proc.js';

test('cargo test: the portable indexer gives git\'s bytes and clear errors', async (t) => {
  const r = await run('cargo', ['test', '-q', '-p', 'mpgit-core', '--features', 'portable', '--lib', 'pack::portable'], { cwd: ROOT, timeoutMs: 280_000 });
  t.is(r.code, 0, `cargo test failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  const ran = /test result: ok\. (\d+) passed/.exec(r.stdout);
  t.truthy(ran, r.stdout.slice(-2000));
  t.true(Number(ran![1]) >= 6, `only ${ran![1]} tests ran`);
});
