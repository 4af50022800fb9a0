#!/usr/bin/env node
// `npm run pack`: builds what the packages hold and writes every tarball into pkg/: the main
// package (dist/, bin/, README, LICENSE, the WebAssembly core) and this machine's platform
// package (npm/<platform>/: the stripped addon, and mpgit-pack-hook on Linux). `--prepack` is the main
// package's prepack hook: it builds dist/ and the WebAssembly core, so a bare `npm pack` is
// complete too, and lists the platform packages as optionalDependencies (`--postpack` undoes
// that in the checkout). `--stage [platform [rust-target]]` only fills npm/<platform>/ from the build (the release
// workflow's step);
// `--no-build` packs what is built now.

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** napi-rs's platform name for this machine (the CLI's own answer, from the built dist/). */
async function platformName() {
  const { platformName: name } = await import('../dist/core/platform.js');
  return name();
}

/**
 * Copies the built addon and hook into npm/<platform>/, stripped of debug information. `triple`:
 * the Rust target the hook was built for with --target (CI), else the host build. The hook is
 * Linux-only: it goes where the package's `files` list it (the linux-* packages).
 */
function stage(name, triple) {
  const dir = join(root, 'npm', name);
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`no platform package for ${name} under npm/`);
  const files = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).files ?? [];
  const addon = `mpgit.${name}.node`;
  const hook = 'mpgit-pack-hook';
  const built = triple ? join(root, 'target', triple, 'release', hook) : join(root, 'target', 'release', hook);
  const copies = [[join(root, addon), addon]];
  if (files.includes(hook)) copies.push([built, hook]);
  for (const [from, to] of copies) {
    if (!existsSync(from)) throw new Error(`${from} is missing: run \`npm run build:native\``);
    copyFileSync(from, join(dir, to));
    // The release profile keeps line tables for profiling; the package does not need them.
    if (process.platform === 'linux') run('strip', ['--strip-unneeded', join(dir, to)]);
    else if (process.platform === 'darwin') run('strip', ['-x', join(dir, to)]);
  }
  // The addon carries sha1dc's C (MIT, Marc Stevens and Dan Shumow): both notices ship with it.
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  const sha1dc = readFileSync(join(root, 'crates/core/src/pack/sha1dc/LICENSE.txt'), 'utf8');
  writeFileSync(join(dir, 'LICENSE'), `${license}\n---\nsha1dc (crates/core/src/pack/sha1dc):\n\n${sha1dc}`);
  return dir;
}

const pkgJson = join(root, 'package.json');
const backup = join(root, '.package.json.prepack');

/**
 * The packed package.json lists every platform package (npm/*) as an optional dependency at
 * its own version, as napi-rs's prepublish does; the checkout's does not, because `npm ci`
 * needs every dependency in the lock file and unpublished platform packages cannot be there.
 */
function withOptionalDependencies() {
  if (existsSync(backup)) copyFileSync(backup, pkgJson);
  const text = readFileSync(pkgJson, 'utf8');
  const pkg = JSON.parse(text);
  const optional = {};
  for (const name of readdirSync(join(root, 'npm')).sort()) {
    const file = join(root, 'npm', name, 'package.json');
    if (!existsSync(file)) continue;
    const platform = JSON.parse(readFileSync(file, 'utf8'));
    if (platform.version !== pkg.version) throw new Error(`${file} is at ${platform.version}, the main package at ${pkg.version}`);
    optional[platform.name] = pkg.version;
  }
  writeFileSync(backup, text);
  writeFileSync(pkgJson, `${JSON.stringify({ ...pkg, optionalDependencies: optional }, null, 2)}\n`);
}

const mode = process.argv[2] ?? '--all';
if (mode === '--postpack') {
  // npm runs this after packing: the checkout's package.json back.
  if (existsSync(backup)) {
    copyFileSync(backup, pkgJson);
    rmSync(backup);
  }
} else if (mode === '--prepack') {
  // npm runs this before packing the main package.
  withOptionalDependencies();
  if (!process.env.MPGIT_PACK_BUILT) {
    run(npm, ['run', 'build:ts']);
    run(npm, ['run', 'build:wasm']);
  }
} else if (mode === '--stage') {
  stage(process.argv[3] ?? (await platformName()), process.argv[4]);
} else if (mode === '--all' || mode === '--no-build') {
  // --no-build: the tarballs of what is built now (the install tests; CI built it all first).
  if (mode === '--all') run(npm, ['run', 'build']);
  const out = join(root, 'pkg');
  mkdirSync(out, { recursive: true });
  const dir = stage(await platformName());
  const env = { ...process.env, MPGIT_PACK_BUILT: '1' };
  const quiet = mode === '--no-build' ? { stdio: ['ignore', 'ignore', 'inherit'] } : {};
  run(npm, ['pack', '--pack-destination', out, dir], { env, ...quiet });
  run(npm, ['pack', '--pack-destination', out], { env, ...quiet });
} else {
  throw new Error(`usage: node npm/pack.mjs [--all | --no-build | --prepack | --postpack | --stage [platform [rust-target]]]`);
}
