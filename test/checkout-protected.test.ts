// Trees git refuses to check out with its defaults: `git~1/` and `.git /` (what NTFS reads as
// `.git`, core.protectNTFS), a symbolic link named like `.gitmodules`, and two entries of one
// name (a link and a directory). `mpgit clone` refuses them (the first three as stock git
// does), under the native core and the WebAssembly one alike, naming the real cause and
// leaving nothing behind.

import test from 'ava';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { git, mpgit, run, runOk, tempDir } from './helpers/proc.js';
import { startDaemon } from './helpers/daemon.js';
import { initBare } from './helpers/repo.js';

/** A bare repository whose main commit has `tree` (given as `git mktree` input lines). */
async function repoWith(dir: string, build: (mktree: (lines: string) => Promise<string>, blob: string) => Promise<string>): Promise<void> {
  await initBare(dir);
  const mktree = async (lines: string) => (await runOk('git', ['mktree'], { cwd: dir, input: lines })).stdout.trim();
  const blob = (await runOk('git', ['hash-object', '-w', '--stdin'], { cwd: dir, input: '[core]\n\tfsmonitor = echo pwned\n' })).stdout.trim();
  const tree = await build(mktree, blob);
  const commit = (await runOk('git', ['commit-tree', tree, '-m', 'hostile'], { cwd: dir, env: { GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@b', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@b' } })).stdout.trim();
  await git(['update-ref', 'refs/heads/main', commit], { cwd: dir });
  await writeFile(join(dir, 'git-daemon-export-ok'), '');
}

// The last element: whether stock git refuses it too (git 2.39 checks out one of two
// duplicate entries and says nothing; fsck calls such a tree an error).
const CASES: [string, (mktree: (l: string) => Promise<string>, blob: string) => Promise<string>, RegExp, boolean][] = [
  ['git~1/config', async (mk, b) => mk(`040000 tree ${await mk(`100644 blob ${b}\tconfig\n`)}\tgit~1\n`), /unsafe entry name "git~1"/, true],
  ['".git "/config', async (mk, b) => mk(`040000 tree ${await mk(`100644 blob ${b}\tconfig\n`)}\t.git \n`), /unsafe entry name "\.git "/, true],
  ['a link named .gitmodules.', async (mk, b) => mk(`120000 blob ${b}\t.gitmodules.\n`), /unsafe entry name "\.gitmodules\."/, true],
  ['a link and a directory both named a', async (mk, b) => mk(`120000 blob ${b}\ta\n040000 tree ${await mk(`100644 blob ${b}\tx\n`)}\ta\n`), /two entries named "a"/, false],
];

for (const [what, build, reason, stockRefuses] of CASES) {
  for (const core of ['native', 'wasm'] as const) {
    test(`${what}: refused${stockRefuses ? " as stock git does" : ""} (${core} core)`, async (t) => {
      const base = await tempDir(t, 'mpgit-protected-');
      await repoWith(join(base, 'repo.git'), build);
      const d = await startDaemon(t, [`--base-path=${base}`]);
      const stock = await run('git', ['clone', d.url('repo.git'), join(base, 'stock')]);
      if (stockRefuses) t.not(stock.code, 0, `stock git refuses it too: ${stock.stderr}`);
      const ours = await mpgit(['clone', d.url('repo.git'), join(base, 'ours')], { env: { MPGIT_CORE: core } });
      t.not(ours.code, 0, ours.stderr);
      t.regex(ours.stderr, reason);
      t.notRegex(ours.stderr, /lost the connection|EEXIST/);
      t.false(existsSync(join(base, 'ours')), 'nothing is left behind');
    });
  }
}
