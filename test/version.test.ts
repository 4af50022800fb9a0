// What runs, as the user sees it: `mpgit version` (text and --json) reports the addon, the
// SHA-1 backend chosen by measurement with each supported backend's speed, the inflaters, the
// threads and the CPU; MPGIT_SHA1_BACKEND forces a backend (and the indexer then uses it, still
// writing git's bytes), asking for one the CPU lacks is an error naming the flags; a missing
// addon is one stderr line per command unless MPGIT_CORE=wasm; no compiled core at all, and the
// retired TypeScript core (MPGIT_CORE=js, MPGIT_NO_NATIVE), are fatal errors; doctor includes
// the report.
// Every backend gives the same digests and refuses the same collisions through the addon.

import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { core, SHA1_BACKENDS } from '../ts/core/index.js';
import type { VersionReport } from '../ts/version.js';
import { makeRepo } from './helpers/repo.js';
import { git, mpgit, ROOT, tempDir } from './helpers/proc.js';

/** The environment of a user who set none of mpgit's variables. */
const CLEAN = { MPGIT_CORE: undefined, MPGIT_SHA1_BACKEND: undefined, MPGIT_HIDE_CPU_FLAGS: undefined, MPGIT_NO_NATIVE: undefined, MPGIT_NATIVE_PATH: undefined, MPGIT_WASM_PATH: undefined };

async function report(env: NodeJS.ProcessEnv = {}): Promise<{ r: VersionReport; stderr: string }> {
  const out = await mpgit(['version', '--json'], { env: { ...CLEAN, ...env } });
  if (out.code !== 0) throw new Error(`mpgit version --json exited ${out.code}: ${out.stderr}`);
  return { r: JSON.parse(out.stdout) as VersionReport, stderr: out.stderr };
}

function cpuinfoFlags(): Set<string> {
  return new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))![1]!.trim().split(/\s+/));
}

/** The backends this CPU runs, by the flags /proc/cpuinfo lists. */
function supportedHere(): string[] {
  const f = cpuinfoFlags();
  const ni = f.has('sha_ni') && f.has('ssse3') && f.has('sse4_1');
  return ['portable', ...(ni ? ['shani'] : []), ...(ni && f.has('avx512f') ? ['shani-avx512'] : [])];
}

test('mpgit version --json: version, addon file, backend chosen by measurement with each speed, inflaters, threads, CPU', async (t) => {
  const { r, stderr } = await report();
  t.is(stderr, '');
  t.is(r.mpgit, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  t.true(r.native.loaded);
  t.is(r.native.error, null);
  t.true(r.native.path.endsWith('.node') && existsSync(r.native.path), r.native.path);
  t.is(r.sha1.chosenBy, 'measurement');
  t.true(r.sha1.collisionDetection);
  const supported = supportedHere();
  t.deepEqual(r.sha1.backends.filter((b) => b.supported).map((b) => b.name), supported);
  for (const b of r.sha1.backends) {
    if (b.supported) t.true(typeof b.mbPerSec === 'number' && b.mbPerSec > 0, `${b.name}: ${b.mbPerSec}`);
    else t.true(b.mbPerSec === null && b.missingFlags.length > 0, b.name);
  }
  // The chosen one is the fastest measured.
  const fastest = r.sha1.backends.filter((b) => b.supported).sort((a, b) => b.mbPerSec! - a.mbPerSec!)[0]!;
  t.is(r.sha1.backend, fastest.name);
  t.regex(r.inflate.whole, /^libdeflate \d+\.\d+/);
  t.regex(r.inflate.streaming, /^zlib \d/);
  t.is(r.threads, availableParallelism());
  const flags = cpuinfoFlags();
  t.deepEqual(r.cpu.flags, { sha_ni: flags.has('sha_ni'), avx2: flags.has('avx2'), avx512f: flags.has('avx512f') });
  t.truthy(r.cpu.model);

  const text = await mpgit(['version', '--build-options'], { env: CLEAN });
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^mpgit version ${r.mpgit.replace(/\./g, '\\.')}$`, 'm'));
  t.regex(text.stdout, /^native addon: loaded from \/.*\.node$/m);
  t.regex(text.stdout, new RegExp(`^sha1: ${fastest.name}, the fastest measured \\(portable [\\d.]+ MB/s`, 'm'));
  t.regex(text.stdout, /^inflate: libdeflate [\d.]+ \(whole entries\), zlib \S+ \(streaming\)$/m);
  t.regex(text.stdout, new RegExp(`^default threads: ${availableParallelism()}$`, 'm'));
  t.regex(text.stdout, /^cpu: .+ \(sha_ni (yes|no), avx2 (yes|no), avx512f (yes|no)\)$/m);
});

/** A small pack with deltas, and git's own .idx of it. */
async function packAndGitIdx(dir: string): Promise<{ pack: string; idx: Buffer }> {
  const repo = join(dir, 'r.git');
  await makeRepo(repo, { commits: 6 });
  const base = join(dir, 'p');
  const sum = (await git(['pack-objects', '--all', '-q', base], { cwd: repo })).stdout.trim();
  return { pack: `${base}-${sum}.pack`, idx: readFileSync(`${base}-${sum}.idx`) };
}

test("MPGIT_SHA1_BACKEND forces each supported backend, and index-pack on it writes git's .idx", async (t) => {
  const dir = await tempDir(t);
  const { pack, idx } = await packAndGitIdx(dir);
  for (const b of supportedHere()) {
    const { r } = await report({ MPGIT_SHA1_BACKEND: b });
    t.is(r.sha1.backend, b);
    t.is(r.sha1.chosenBy, 'MPGIT_SHA1_BACKEND');
    // Every supported backend is still measured and reported.
    t.deepEqual(r.sha1.backends.filter((x) => x.mbPerSec !== null).map((x) => x.name), supportedHere());
    const out = join(dir, `${b}.idx`);
    const ip = await mpgit(['index-pack', '-o', out, pack], { env: { ...CLEAN, MPGIT_SHA1_BACKEND: b } });
    t.is(ip.code, 0, ip.stderr);
    t.true(readFileSync(out).equals(idx), `${b}: .idx differs from git's`);
  }
});

test('forcing a backend the CPU lacks is an error naming the missing flags; an unknown name lists the names', async (t) => {
  const dir = await tempDir(t);
  const { pack } = await packAndGitIdx(dir);
  // MPGIT_HIDE_CPU_FLAGS makes the core act as a CPU without them (this one may have them all).
  const lacking = { ...CLEAN, MPGIT_SHA1_BACKEND: 'shani-avx512', MPGIT_HIDE_CPU_FLAGS: 'avx512f,sha_ni' };
  const out = join(dir, 'x.idx');
  const ip = await mpgit(['index-pack', '-o', out, pack], { env: lacking });
  t.is(ip.code, 128);
  t.is(ip.stderr, 'fatal: MPGIT_SHA1_BACKEND=shani-avx512 needs CPU flags this CPU lacks: sha_ni, avx512f (unset it to let mpgit choose)\n');
  t.false(existsSync(out), 'no index written');
  const { r } = await report(lacking);
  t.is(r.sha1.backend, null);
  t.regex(r.sha1.error!, /needs CPU flags this CPU lacks: sha_ni, avx512f/);
  t.deepEqual(r.sha1.backends.find((b) => b.name === 'shani-avx512')!.missingFlags, ['sha_ni', 'avx512f']);
  t.deepEqual(r.sha1.backends.find((b) => b.name === 'shani')!.missingFlags, ['sha_ni']);
  const text = await mpgit(['version'], { env: lacking });
  t.regex(text.stdout, /^sha1: error: MPGIT_SHA1_BACKEND=shani-avx512 needs CPU flags this CPU lacks: sha_ni, avx512f/m);
  // Without the forced backend the hidden flags only narrow the choice.
  const narrowed = (await report({ MPGIT_HIDE_CPU_FLAGS: 'avx512f' })).r;
  t.not(narrowed.sha1.backend, 'shani-avx512');
  t.false(narrowed.sha1.backends.find((b) => b.name === 'shani-avx512')!.supported);

  const bad = await mpgit(['index-pack', '-o', out, pack], { env: { ...CLEAN, MPGIT_SHA1_BACKEND: 'fast' } });
  t.is(bad.code, 128);
  t.regex(bad.stderr, /MPGIT_SHA1_BACKEND="fast" is no SHA-1 backend: use one of portable, shani, shani-avx512/);
});

test('an addon that cannot load: the WebAssembly core, one stderr line per command saying so and what it costs; MPGIT_CORE=wasm silences it', async (t) => {
  const dir = await tempDir(t);
  const { pack, idx } = await packAndGitIdx(dir);
  const broken = join(dir, 'mpgit.broken.node');
  writeFileSync(broken, 'not a shared object\n');
  for (const [path, why] of [[join(dir, 'absent.node'), /absent\.node is missing/], [broken, /mpgit\.broken\.node failed to load/]] as const) {
    const env = { ...CLEAN, MPGIT_NATIVE_PATH: path };
    const { r, stderr } = await report(env);
    const lines = stderr.split('\n').filter(Boolean);
    t.is(lines.length, 1, stderr);
    t.regex(lines[0]!, /^warning: native addon not loaded \(.*\): using the WebAssembly core, which is slower and has no MPTCP sockets/);
    t.regex(lines[0]!, why);
    t.false(r.native.loaded);
    t.is(r.core, 'wasm');
    t.regex(r.native.error!, why);
    t.deepEqual([r.sha1.backend, r.sha1.collisionDetection], ['sha1collisiondetection (wasm)', true]);
    // Any command says it once, and still works.
    const out = join(dir, 'wasm.idx');
    const ip = await mpgit(['index-pack', '-o', out, pack], { env });
    t.is(ip.code, 0, ip.stderr);
    t.is(ip.stderr.split('\n').filter((l) => l.startsWith('warning: native addon not loaded')).length, 1, ip.stderr);
    t.true(readFileSync(out).equals(idx));
  }
  const quiet = await mpgit(['version'], { env: { ...CLEAN, MPGIT_CORE: 'wasm' } });
  t.is(quiet.stderr, '');
  t.regex(quiet.stdout, /^core: wasm \(forced by MPGIT_CORE=wasm\)$/m);
  t.regex(quiet.stdout, /^native addon: not loaded: not tried: MPGIT_CORE=wasm$/m);
  t.regex(quiet.stdout, /^sha1: sha1collisiondetection \(wasm\) \(collision detection on\)$/m);
});

test('no compiled core is fatal, naming why each failed; the TypeScript core is gone (MPGIT_CORE=js, MPGIT_NO_NATIVE)', async (t) => {
  const dir = await tempDir(t);
  const { pack } = await packAndGitIdx(dir);
  const out = join(dir, 'none.idx');
  // The addon hidden and the wasm file missing: nothing runs, not even `version`.
  const none = { ...CLEAN, MPGIT_NATIVE_PATH: join(dir, 'absent.node'), MPGIT_WASM_PATH: '/nonexistent/mpgit_core.wasm' };
  for (const args of [['version', '--json'], ['index-pack', '-o', out, pack]]) {
    const r = await mpgit(args, { env: none });
    t.is(r.code, 128, r.stderr);
    t.is(r.stdout, '');
    t.regex(r.stderr, /^fatal: mpgit needs its compiled core: the native addon did not load \(.*absent\.node is missing: check MPGIT_NATIVE_PATH\) nor the WebAssembly core \(\/nonexistent\/mpgit_core\.wasm is missing: check MPGIT_WASM_PATH\)$/m);
    t.regex(r.stderr, /^hint: reinstall mpgit/m);
  }
  t.false(existsSync(out), 'no index written');
  for (const [env, what] of [[{ MPGIT_CORE: 'js' }, /^fatal: MPGIT_CORE=js: the TypeScript core is gone .*: use MPGIT_CORE=wasm/m], [{ MPGIT_NO_NATIVE: '1' }, /^fatal: MPGIT_NO_NATIVE is set: the TypeScript core is gone .*: use MPGIT_CORE=wasm/m]] as const) {
    const r = await mpgit(['index-pack', '-o', out, pack], { env: { ...CLEAN, ...env } });
    t.is(r.code, 128, r.stderr);
    t.regex(r.stderr, what);
    t.false(existsSync(out), 'no index written');
  }
  const bad = await mpgit(['version'], { env: { ...CLEAN, MPGIT_CORE: 'ts' } });
  t.is(bad.code, 128);
  t.regex(bad.stderr, /^fatal: MPGIT_CORE="ts" is no core: use one of native, wasm$/m);
});

test('mpgit doctor includes the version report', async (t) => {
  const json = await mpgit(['doctor', '--json'], { env: CLEAN });
  t.true(json.code === 0 || json.code === 1, json.stderr);
  const d = JSON.parse(json.stdout) as { mpgit: VersionReport; checks: unknown[] };
  t.true(Array.isArray(d.checks));
  t.true(d.mpgit.native.loaded);
  t.truthy(d.mpgit.sha1.backend);
  const text = await mpgit(['doctor'], { env: CLEAN });
  t.regex(text.stdout, /^mpgit on this host:\n {2}mpgit version \S+\n(?: {2}.*\n)*? {2}sha1: /m);
});

test('every supported backend gives node:crypto\'s digests and refuses the SHAttered collision', (t) => {
  const hash = core.info!.sha1Hash;
  const data = randomBytes(300_000);
  const backends = supportedHere();
  t.deepEqual(SHA1_BACKENDS.filter((b) => backends.includes(b)), backends);
  for (const b of [...backends, 'plain']) {
    t.is(hash(data, b, 0), createHash('sha1').update(data).digest('hex'), b);
    // As consecutive 1000-byte objects: the last object's id.
    t.is(hash(data, b, 1000), createHash('sha1').update(data.subarray(299_000)).digest('hex'), b);
  }
  const shattered = readFileSync(join(ROOT, 'crates/core/src/pack/sha1dc/testdata/shattered-1.prefix'));
  for (const b of backends) t.throws(() => hash(shattered, b, 0), { code: 'MPGIT_BAD_PACK' }, b);
  // Plain SHA-1 (the pack trailer's checksum) has no collision detection.
  t.notThrows(() => hash(shattered, 'plain', 0));
});
