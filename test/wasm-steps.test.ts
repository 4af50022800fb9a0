// The WebAssembly core's long operations leave the event loop free: the connectivity walk runs
// in steps (a timer fires while it runs), with the results and typed errors of the native core.

import test from 'ava';
import { readdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { wasmModule } from '../ts/core/wasm.js';
import { wasmOdb } from '../ts/core/wasm-odb.js';
import { loadNative } from '../ts/core/native.js';
import { initBare } from './helpers/repo.js';
import { git, runOk, tempDir } from './helpers/proc.js';

function wasmAreas() {
  const m = wasmModule();
  if ('error' in m) throw new Error(`the wasm core is not built (npm run build:wasm): ${m.error}`);
  return wasmOdb(m.module);
}

/** A bare repository of `commits` commits, each adding a file to one of 50 directories (loose objects). */
async function history(repo: string, commits: number): Promise<string> {
  await initBare(repo);
  const parts: string[] = [];
  for (let c = 1; c <= commits; c++) {
    const body = `file ${c}\n`;
    parts.push(`blob\nmark :${c}\ndata ${Buffer.byteLength(body)}\n${body}`);
    const msg = `c${c}\n`;
    parts.push(`commit refs/heads/main\ncommitter A <a@example.com> ${1_700_000_000 + c} +0000\ndata ${msg.length}\n${msg}`);
    parts.push(`M 100644 :${c} d${c % 50}/f${c}\n\n`);
  }
  await git(['fast-import', '--quiet'], { cwd: repo, input: parts.join('') });
  // Loose, so that one object can be taken away.
  const pack = join(repo, 'objects', 'pack');
  for (const name of readdirSync(pack).filter((n) => n.endsWith('.pack'))) {
    renameSync(join(pack, name), join(repo, name));
    unlinkSync(join(pack, name.replace(/\.pack$/, '.idx')));
    await runOk('sh', ['-c', `git unpack-objects -q < '${name}' && rm '${name}'`], { cwd: repo });
  }
  return (await git(['rev-parse', 'refs/heads/main'], { cwd: repo })).stdout.trim();
}

test('wasm: the connectivity walk lets a timer fire while it runs, counts what rev-list counts, and names a missing object as the native core does', async (t) => {
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  const head = await history(repo, 1500);
  const want = (await git(['rev-list', '--objects', head], { cwd: repo })).stdout.split('\n').length - 1;
  const { odb, connectivity } = wasmAreas();
  const h = odb.odbOpen(repo);
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const r = await connectivity.connectivityCheck(h, [head], [], null).finally(() => clearInterval(timer));
    t.is(r.objects, want);
    t.true(ticks > 0, 'a timer fired during the walk');
    // A blob of the oldest commit, which the walk reaches last.
    const first = (await git(['rev-list', '--max-parents=0', head], { cwd: repo })).stdout.trim();
    const blob = (await git(['rev-parse', `${first}:d1/f1`], { cwd: repo })).stdout.trim();
    unlinkSync(join(repo, 'objects', blob.slice(0, 2), blob.slice(2)));
    const native = loadNative().core?.connectivity;
    if (!native) throw new Error('the native core is not built (npm run build:native)');
    const nh = loadNative().core!.odb!.odbOpen(repo);
    const expected = await native.connectivityCheck(nh, [head], [], null).then(() => null, (e: Error & { code?: string }) => ({ code: e.code, message: e.message }));
    loadNative().core!.odb!.odbClose(nh);
    const e = await t.throwsAsync(connectivity.connectivityCheck(h, [head], [], null));
    t.is((e as Error & { code?: string }).code, 'MPGIT_MISSING_OBJECTS');
    t.regex(e!.message, new RegExp(`object ${blob}`));
    t.deepEqual({ code: (e as Error & { code?: string }).code, message: e!.message }, expected!);
    // The database a walk stops at: with everything in it, only the tip is counted.
    const before = odb.odbOpen(repo);
    t.is((await connectivity.connectivityCheck(h, [head], [], before)).objects, 1);
    odb.odbClose(before);
  } finally {
    odb.odbClose(h);
  }
});
