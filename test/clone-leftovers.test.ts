// A clone killed outright (kill -9) leaves its hidden build directory next to the target; the
// next clone into the same target removes what dead clones left, and nothing a live one uses.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitDaemon } from './helpers/gitserve.js';
import { makeBulkRepo, makeRepo } from './helpers/repo.js';
import { git, MPGIT, mpgit, start, tempDir } from './helpers/proc.js';

const leftovers = (dir: string) => readdirSync(dir).filter((n) => n.includes('.mpgit-clone-')).sort();

test('after kill -9 of a clone, the next clone into the same target removes its leftovers', async (t) => {
  const base = await tempDir(t);
  await makeBulkRepo(join(base, 'bulk.git'), 24);
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  const first = start(t, process.execPath, [MPGIT, 'clone', '--progress', d.url('bulk.git'), 'demo'], { cwd: work });
  // Killed while receiving the pack.
  await first.waitFor(/Receiving objects:\s+\d+%/, 60_000);
  first.kill('SIGKILL');
  await first.exited;
  const left = leftovers(work);
  t.is(left.length, 1, `expected the dead clone's directory, found ${left.join(', ')}`);
  t.regex(left[0]!, new RegExp(`^\\.demo\\.mpgit-clone-${first.child.pid}-[0-9a-f]{8}$`));
  t.false(existsSync(join(work, 'demo')));

  const again = await mpgit(['clone', d.url('bulk.git'), 'demo'], { cwd: work });
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, new RegExp(`Removed ${left[0]!.replace(/\./g, '\\.')}, left by an interrupted clone \\(pid ${first.child.pid}, no longer running\\)`));
  t.deepEqual(leftovers(work), []);
  t.is((await git(['status', '--porcelain'], { cwd: join(work, 'demo') })).stdout, '');
});

test('leftovers of live clones and of other targets stay', async (t) => {
  const base = await tempDir(t);
  await makeRepo(join(base, 'up.git'));
  const d = await gitDaemon(t, base);
  const work = await tempDir(t);
  const dead = spawnSync('true').pid!;
  const names = {
    dead: `.demo.mpgit-clone-${dead}-0000abcd`,
    // Made by an mpgit that did not record its pid: nothing can be using it any more.
    legacy: '.demo.mpgit-clone-90da5787',
    live: `.demo.mpgit-clone-${process.pid}-1111abcd`,
    other: `.other.mpgit-clone-${dead}-2222abcd`,
  };
  for (const n of Object.values(names)) {
    mkdirSync(join(work, n, '.git', 'objects'), { recursive: true });
    writeFileSync(join(work, n, '.git', 'objects', 'junk'), 'x'.repeat(1000));
  }
  const r = await mpgit(['clone', d.url('up.git'), 'demo'], { cwd: work });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(leftovers(work), [names.live, names.other].sort());
  t.true(existsSync(join(work, 'demo', '.git')));
});
