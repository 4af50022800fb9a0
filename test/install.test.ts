// `npm i -g mpgit` from the packages `npm run pack` writes to pkg/, as a user installs them:
// into a fresh prefix, from a directory outside the checkout, with a PATH that has node and git
// but no cargo or rustc. With the platform package the native core runs; without it
// (--omit=optional) the WebAssembly core does, and says the native one is missing; with neither, nothing runs.

import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fsckClean } from './helpers/offload.js';
import { gitDaemon } from './helpers/gitserve.js';
import { makeRepo } from './helpers/repo.js';
import { git, ROOT, run, runOk, tempDir } from './helpers/proc.js';

const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const MAIN = join(ROOT, 'pkg', `mpgit-${version}.tgz`);
const PLATFORM = join(ROOT, 'pkg', `mpgit-linux-x64-gnu-${version}.tgz`);
/** The main package plus the platform package, unpacked (the bound). */
const MAX_UNPACKED = 5_000_000;

// The tarballs of the current build, once for the file (CI built everything in .ci/setup).
const packed = runOk(process.execPath, [join(ROOT, 'npm', 'pack.mjs'), '--no-build'], { cwd: ROOT, timeoutMs: 240_000 }).then(
  () => null,
  (e: unknown) => e,
);

/** A PATH with node, git and sh only (symlinks), in front of the prefix's bin. */
function userPath(dir: string, prefix: string): string {
  const tools = join(dir, 'tools');
  mkdirSync(tools);
  for (const [name, target] of [['node', process.execPath], ['git', '/usr/bin/git'], ['sh', '/bin/sh']] as const) symlinkSync(target, join(tools, name));
  return `${join(prefix, 'bin')}:${tools}`;
}

async function install(t: ExecutionContext, tarballs: string[], extra: string[] = []): Promise<{ dir: string; prefix: string; env: NodeJS.ProcessEnv; path: string }> {
  const failed = await packed;
  if (failed) throw failed;
  const dir = await tempDir(t, 'mpgit-install-');
  const prefix = join(dir, 'prefix');
  const cwd = join(dir, 'elsewhere');
  mkdirSync(cwd);
  const r = await run('npm', ['i', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', ...extra, ...tarballs], { cwd, timeoutMs: 240_000 });
  t.is(r.code, 0, r.stderr);
  const path = userPath(dir, prefix);
  const env = { PATH: path, HOME: dir, MPGIT_CORE: undefined, MPGIT_NO_NATIVE: undefined, MPGIT_NATIVE_PATH: undefined, MPGIT_WASM_PATH: undefined, MPGIT_PACK_HOOK: undefined };
  t.not((await run('sh', ['-c', 'command -v cargo || command -v rustc'], { env })).code, 0, 'cargo or rustc on the test PATH');
  return { dir: cwd, prefix, env, path };
}

/** The installed CLI, run as a user would (`mpgit ...` found on PATH). */
function mpgitAt(i: { dir: string; prefix: string; env: NodeJS.ProcessEnv }, args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(join(i.prefix, 'bin', 'mpgit'), args, { cwd: i.dir, env: { ...i.env, ...env }, timeoutMs: 120_000 });
}

async function served(t: ExecutionContext): Promise<{ url: string; repo: string }> {
  const base = await tempDir(t);
  const repo = join(base, 'src.git');
  await makeRepo(repo, { commits: 12 });
  const d = await gitDaemon(t, base);
  return { url: d.url('src.git'), repo };
}

function sizeOf(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    n += e.isDirectory() ? sizeOf(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  }
  return n;
}

test('installed with its platform package: the native core, a clone from git daemon fscks clean, under 5 MB', async (t) => {
  const i = await install(t, [PLATFORM, MAIN]);
  const v = await mpgitAt(i, ['version', '--json']);
  t.is(v.code, 0, v.stderr);
  t.is(v.stderr, '');
  const r = JSON.parse(v.stdout) as { core: string; native: { loaded: boolean; path: string }; sha1: { collisionDetection: boolean } };
  t.is(r.core, 'native');
  t.true(r.native.path.startsWith(join(i.prefix, 'lib', 'node_modules', 'mpgit-linux-x64-gnu')), r.native.path);
  t.true(r.sha1.collisionDetection);
  // Stripped, and nothing but the C library (and libgcc_s) needed: libdeflate and zlib are linked in.
  const ldd = await runOk('ldd', [r.native.path]);
  t.notRegex(ldd.stdout, /libdeflate|libz\.so/);
  t.notRegex((await runOk('readelf', ['-S', '-W', r.native.path])).stdout, /\.debug_|\.symtab/);
  // The packed main package names every platform package at its own version.
  const packed = JSON.parse((await runOk('tar', ['-xOzf', MAIN, 'package/package.json'])).stdout) as { optionalDependencies?: Record<string, string> };
  t.is(packed.optionalDependencies?.['mpgit-linux-x64-gnu'], version);
  t.is(Object.keys(packed.optionalDependencies ?? {}).length, 7);
  t.false(existsSync(join(ROOT, '.package.json.prepack')));
  const modules = join(i.prefix, 'lib', 'node_modules');
  const size = sizeOf(join(modules, 'mpgit')) + sizeOf(join(modules, 'mpgit-linux-x64-gnu'));
  t.true(size < MAX_UNPACKED, `${size} bytes unpacked`);

  const { url, repo } = await served(t);
  const c = await mpgitAt(i, ['clone', url, 'out']);
  t.is(c.code, 0, c.stderr);
  await fsckClean(t, join(i.dir, 'out'));
  t.is((await git(['rev-parse', 'HEAD'], { cwd: join(i.dir, 'out') })).stdout, (await git(['rev-parse', 'HEAD'], { cwd: repo })).stdout);
});

test('installed with --omit=optional: the WebAssembly core says the native one is missing, indexes as git does, clones; without it too, nothing runs', async (t) => {
  const i = await install(t, [MAIN], ['--omit=optional']);
  const v = await mpgitAt(i, ['version', '--json']);
  t.is(v.code, 0, v.stderr);
  const r = JSON.parse(v.stdout) as { core: string; sha1: { collisionDetection: boolean } };
  t.is(r.core, 'wasm');
  t.true(r.sha1.collisionDetection);
  t.regex(v.stderr, /^warning: native addon not loaded \(.*npm did not install mpgit-linux-x64-gnu.*\): using the WebAssembly core/);
  t.is(v.stderr.trim().split('\n').length, 1, v.stderr);

  const { url, repo } = await served(t);
  // index-pack: git's .idx bytes for the repository's pack.
  const work = join(i.dir, 'ip');
  mkdirSync(work);
  await git(['clone', '-q', '--bare', repo, join(work, 'g.git')]);
  await git(['repack', '-adq', '-f', '--depth=20'], { cwd: join(work, 'g.git') });
  const packDir = join(work, 'g.git', 'objects', 'pack');
  const pack = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.pack'))!);
  const ip = await mpgitAt(i, ['index-pack', '--threads', '2', '-o', join(work, 'ours.idx'), pack]);
  t.is(ip.code, 0, ip.stderr);
  t.true(readFileSync(join(work, 'ours.idx')).equals(readFileSync(pack.replace(/\.pack$/, '.idx'))));

  const c = await mpgitAt(i, ['clone', url, 'wasm']);
  t.is(c.code, 0, c.stderr);
  await fsckClean(t, join(i.dir, 'wasm'));
  // The checkout (objects read through the core's inflate and delta application) is HEAD's.
  t.is((await git(['status', '--porcelain'], { cwd: join(i.dir, 'wasm') })).stdout, '');
  t.is((await git(['rev-parse', 'HEAD'], { cwd: join(i.dir, 'wasm') })).stdout, (await git(['rev-parse', 'HEAD'], { cwd: repo })).stdout);
  // MPTCP needs the native addon: one line saying so, and the clone goes over TCP.
  const m = await mpgitAt(i, ['clone', '--mptcp', url, 'mptcp']);
  t.is(m.code, 0, m.stderr);
  t.regex(m.stderr, /^warning: MPTCP asked for \(--mptcp or GIT_ENABLE_MPTCP\), but MPTCP sockets need the native addon, which is not loaded: .*: connecting over TCP$/m);
  const forced = await mpgitAt(i, ['version'], { MPGIT_CORE: 'native' });
  t.is(forced.code, 128);
  t.regex(forced.stderr, /^fatal: MPGIT_CORE=native, but the native core cannot load: /m);
  // There is no TypeScript core to fall back to: without the wasm file nothing runs, and says why.
  const none = await mpgitAt(i, ['clone', url, 'none'], { MPGIT_WASM_PATH: '/nonexistent/mpgit_core.wasm' });
  t.is(none.code, 128);
  t.regex(none.stderr, /^fatal: mpgit needs its compiled core: the native addon did not load \(.*npm did not install mpgit-linux-x64-gnu.*\) nor the WebAssembly core \(\/nonexistent\/mpgit_core\.wasm is missing: check MPGIT_WASM_PATH\)$/m);
  t.regex(none.stderr, /^hint: reinstall mpgit/m);
  t.false(existsSync(join(i.dir, 'none')), 'nothing made');
  const js = await mpgitAt(i, ['version'], { MPGIT_CORE: 'js' });
  t.is(js.code, 128);
  t.regex(js.stderr, /^fatal: MPGIT_CORE=js: the TypeScript core is gone .*: use MPGIT_CORE=wasm/m);
});
