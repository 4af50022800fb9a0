#!/usr/bin/env node
// `npm run build:wasm`: compiles crates/wasm to wasm32-unknown-unknown and puts the module at
// wasm/mpgit_core.wasm (what the main package ships). On Debian, with Debian's own rustc and
// cargo (packages rustc, cargo, libstd-rust-dev-wasm32, lld): rustup's toolchain here has no
// wasm32 standard library, and Debian's rustc (1.63) also checks the MSRV the shared modules
// state. Elsewhere (CI runners) `cargo` from PATH with the wasm32-unknown-unknown target.

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const debian = existsSync('/usr/bin/cargo') && existsSync('/usr/bin/rustc');
const cargo = process.env.MPGIT_WASM_CARGO || (debian ? '/usr/bin/cargo' : 'cargo');
const env = { ...process.env };
if (!process.env.MPGIT_WASM_CARGO && debian) {
  // The shims of rustup come first on PATH: name Debian's compiler explicitly.
  env.RUSTC = '/usr/bin/rustc';
  env.RUSTDOC = '/usr/bin/rustdoc';
}
const crate = join(root, 'crates', 'wasm');
try {
  execFileSync(cargo, ['build', '--release', '--target', 'wasm32-unknown-unknown'], { cwd: crate, env, stdio: 'inherit' });
} catch (e) {
  console.error(`build:wasm: ${cargo} failed (${e.message}); on Debian: apt-get install rustc cargo libstd-rust-dev-wasm32 lld`);
  process.exit(1);
}
mkdirSync(join(root, 'wasm'), { recursive: true });
copyFileSync(join(crate, 'target', 'wasm32-unknown-unknown', 'release', 'mpgit_wasm.wasm'), join(root, 'wasm', 'mpgit_core.wasm'));
