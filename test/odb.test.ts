// The two object readers (the native core's, and the WebAssembly core's: TypeScript over that
// core's inflate and delta application) against each other and against git cat-file; the two
// index writers against each other for the same checkout; and a hostile tree refused by clone
// under both cores.

import test from 'ava';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ObjectDb } from '../ts/repo/odb.js';
import { checkout, flattenTree } from '../ts/repo/checkout.js';
import { encodeIndex, type IndexEntry } from '../ts/repo/index-file.js';
import { parseCommit } from '../ts/repo/objects.js';
import { core } from '../ts/core/index.js';
import { wasmCodec, wasmModule } from '../ts/core/wasm.js';
import { JsObjectDb } from '../ts/repo/odb-js.js';
import { initBare, makeRepo } from './helpers/repo.js';
import { git, mpgit, run, runOk, tempDir } from './helpers/proc.js';
import { gitDaemon } from './helpers/gitserve.js';

/** Every object as `git cat-file --batch-all-objects --batch` prints it. */
function catFileAll(repo: string): Promise<Map<string, { type: string; data: Buffer }>> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch-all-objects', '--batch'], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`cat-file exited ${code}`));
      const out = Buffer.concat(chunks);
      const all = new Map<string, { type: string; data: Buffer }>();
      for (let at = 0; at < out.length; ) {
        const nl = out.indexOf(10, at);
        const [oid, type, size] = out.toString('latin1', at, nl).split(' ') as [string, string, string];
        all.set(oid, { type, data: out.subarray(nl + 1, nl + 1 + Number(size)) });
        at = nl + 1 + Number(size) + 1;
      }
      resolve(all);
    });
  });
}

/** A repository with delta chains, an executable, a symlink, nested directories. */
async function deltaRepo(dir: string, ofsDeltas: boolean): Promise<void> {
  await makeRepo(dir, { commits: 30, filesPerCommit: 9 });
  await runOk('git', ['-c', `repack.useDeltaBaseOffset=${ofsDeltas}`, 'repack', '-adfq', '--depth=20', '--window=50'], { cwd: dir });
  await runOk('git', ['hash-object', '-w', '--stdin'], { cwd: dir, input: 'a loose blob\n' });
}

/** The WebAssembly core's object reader, whichever core this process loaded. */
function wasmReader(repo: string): JsObjectDb {
  const m = wasmModule();
  if ('error' in m) throw new Error(`the WebAssembly core is not built (npm run build:wasm): ${m.error}`);
  return new JsObjectDb(repo, wasmCodec(m.module));
}

test('the native and WebAssembly cores\' readers return the objects git cat-file returns (ofs and ref deltas, loose)', async (t) => {
  t.truthy(core.odb, 'the addon is built with the object database (npm run build:native)');
  for (const ofs of [true, false]) {
    const base = await tempDir(t);
    const repo = join(base, 'r.git');
    await deltaRepo(repo, ofs);
    const all = await catFileAll(repo);
    t.true(all.size > 300, `${all.size} objects`);
    const nat = ObjectDb.openSync(repo);
    const js = wasmReader(repo);
    t.is(nat.impl, 'native');
    try {
      let commits = 0;
      for (const [oid, want] of all) {
        const a = nat.readSync(oid);
        const b = js.readSync(oid);
        t.truthy(a && b, oid);
        if (a!.type !== want.type || b!.type !== want.type || !a!.data.equals(want.data) || !b!.data.equals(want.data)) {
          t.fail(`${oid}: native ${a!.type}/${a!.data.length}, wasm ${b!.type}/${b!.data.length}, git ${want.type}/${want.data.length}`);
        }
        if (want.type === 'commit') {
          commits++;
          const parsed = parseCommit(want.data, oid);
          t.deepEqual(nat.readCommit(oid), parsed);
          t.deepEqual(js.readCommit(oid), parsed);
        } else {
          t.is(nat.readCommit(oid), null);
        }
      }
      t.true(commits >= 30);
      for (const missing of ['0'.repeat(40), 'f'.repeat(40)]) {
        t.is(nat.readSync(missing), null);
        t.is(js.readSync(missing), null);
        t.false(nat.hasSync(missing));
        t.false(js.hasSync(missing));
      }
    } finally {
      nat.close();
      js.close();
    }
  }
});

test('the native and the WebAssembly core\'s (TypeScript) index writers give the same .git/index for the same checkout', async (t) => {
  t.truthy(core.checkout, 'the addon is built with checkout (npm run build:native)');
  const base = await tempDir(t);
  const repo = join(base, 'r.git');
  await deltaRepo(repo, true);
  // A gitlink too (left empty, with no stat data, by both).
  const head = (await git(['rev-parse', 'main'], { cwd: repo })).stdout.trim();
  const tree = (await git(['rev-parse', 'main^{tree}'], { cwd: repo })).stdout.trim();
  const withLink = (await runOk('sh', ['-c', `(git ls-tree ${tree}; printf '160000 commit ${'1'.repeat(40)}\\tdeps\\n') | git mktree`], { cwd: repo })).stdout.trim();
  const commit = (await runOk('git', ['commit-tree', withLink, '-p', head, '-m', 'gitlink'], { cwd: repo })).stdout.trim();
  await git(['update-ref', 'refs/heads/main', commit], { cwd: repo });

  const wt = join(base, 'wt');
  await runOk('mkdir', [wt]);
  const index = join(base, 'index');
  const db = ObjectDb.openSync(repo);
  let entries: number;
  try {
    ({ entries } = await checkout(db, withLink, wt, { indexPath: index }));
  } finally {
    db.close();
  }
  // git agrees the work tree is clean against that index.
  const env = { GIT_DIR: repo, GIT_WORK_TREE: wt, GIT_INDEX_FILE: index };
  t.is((await run('git', ['diff-files', '--quiet'], { cwd: wt, env })).code, 0, 'git diff-files --quiet');
  t.is((await run('git', ['status', '--porcelain'], { cwd: wt, env })).stdout, '', 'git status clean');

  // The TypeScript writer, given the same paths and what lstat says about them now.
  const js = wasmReader(repo);
  try {
    const { items } = flattenTree(js, withLink);
    t.is(items.length, entries);
    const ours: IndexEntry[] = items.map((it) => {
      if (it.mode === 0o160000) return { ...it, stat: null };
      const s = lstatSync(join(wt, it.path), { bigint: true });
      return { ...it, stat: { ctimeNs: s.ctimeNs, mtimeNs: s.mtimeNs, dev: s.dev, ino: s.ino, uid: s.uid, gid: s.gid, size: s.size } };
    });
    t.true(encodeIndex(ours).equals(readFileSync(index)), 'byte for byte');
  } finally {
    js.close();
  }
});

for (const kind of ['native', 'wasm']) {
  test(`clone refuses a tree entry named .git and leaves nothing behind (${kind})`, async (t) => {
    const base = await tempDir(t);
    const repo = join(base, 'evil.git');
    await initBare(repo);
    const blob = (await runOk('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: '[core]\n\tfsmonitor = touch /tmp/pwned\n' })).stdout.trim();
    // Written unchecked, as a hostile server could: git mktree would refuse the name.
    const treeBytes = (mode: string, name: string, oid: string) => Buffer.concat([Buffer.from(`${mode} ${name}\0`), Buffer.from(oid, 'hex')]);
    const inner = (await runOk('git', ['hash-object', '-t', 'tree', '--literally', '-w', '--stdin'], { cwd: repo, input: treeBytes('100644', 'config', blob) })).stdout.trim();
    const top = (await runOk('git', ['hash-object', '-t', 'tree', '--literally', '-w', '--stdin'], { cwd: repo, input: treeBytes('40000', '.GIT', inner) })).stdout.trim();
    const commit = (await runOk('git', ['commit-tree', top, '-m', 'evil'], { cwd: repo, env: { GIT_AUTHOR_NAME: 'e', GIT_AUTHOR_EMAIL: 'e@x', GIT_COMMITTER_NAME: 'e', GIT_COMMITTER_EMAIL: 'e@x' } })).stdout.trim();
    await git(['update-ref', 'refs/heads/main', commit], { cwd: repo });
    const d = await gitDaemon(t, base);
    const work = await tempDir(t);
    const r = await mpgit(['clone', d.url('evil.git'), 'out'], { cwd: work, env: { MPGIT_CORE: kind } });
    t.is(r.code, 128, r.stderr);
    t.regex(r.stderr, /fatal: tree [0-9a-f]{40} has an unsafe entry name "\.GIT"/);
    t.deepEqual(readdirSync(work), [], 'no target directory, no temporary directory');
  });
}
