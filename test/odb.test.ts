// The object reader of the core this process loads (MPGIT_CORE=wasm: the WebAssembly core's;
// test/wasm-odb.test.ts compares the two) against git cat-file, and a hostile tree refused by
// clone under both cores.

import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ObjectDb } from '../ts/repo/odb.js';
import { parseCommit } from '../ts/repo/objects.js';
import { core } from '../ts/core/index.js';
import { initBare, makeRepo } from './helpers/repo.js';
import { git, mpgit, runOk, tempDir } from './helpers/proc.js';
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

test(`${core.kind}: the reader returns the objects git cat-file returns (ofs and ref deltas, loose)`, async (t) => {
  for (const ofs of [true, false]) {
    const base = await tempDir(t);
    const repo = join(base, 'r.git');
    await deltaRepo(repo, ofs);
    const all = await catFileAll(repo);
    t.true(all.size > 300, `${all.size} objects`);
    const db = ObjectDb.openSync(repo);
    try {
      let commits = 0;
      for (const [oid, want] of all) {
        const a = db.readSync(oid);
        t.truthy(a, oid);
        if (a!.type !== want.type || !a!.data.equals(want.data)) t.fail(`${oid}: ${core.kind} ${a!.type}/${a!.data.length}, git ${want.type}/${want.data.length}`);
        t.true(db.hasSync(oid), oid);
        if (want.type === 'commit') {
          commits++;
          t.deepEqual(db.readCommit(oid), parseCommit(want.data, oid));
        } else {
          t.is(db.readCommit(oid), null);
        }
      }
      t.true(commits >= 30);
      for (const missing of ['0'.repeat(40), 'f'.repeat(40)]) {
        t.is(db.readSync(missing), null);
        t.false(db.hasSync(missing));
      }
    } finally {
      db.close();
    }
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
