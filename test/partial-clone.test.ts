// Partial clone: mpgit clone --filter=... makes the repository git makes (promisor remote,
// filter in the config, .promisor packs, the checkout's blobs fetched), stock git then fetches
// what is missing on demand from the same server (git daemon or mpgit daemon), mpgit fetch
// keeps the filter, and the in-process v2 server of offloaded repositories hands filtered
// requests to git upload-pack.

import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gitDaemon } from './helpers/gitserve.js';
import { mpgitDaemon } from './helpers/offload.js';
import { makeRepo } from './helpers/repo.js';
import { repoState } from './helpers/parity.js';
import { git, mpgit, run, runOk, tempDir } from './helpers/proc.js';

const isolated = (home: string): NodeJS.ProcessEnv => ({ HOME: home, XDG_CONFIG_HOME: join(home, '.config'), GIT_CONFIG_NOSYSTEM: '1' });

async function upstream(t: Parameters<Parameters<typeof test>[1]>[0]) {
  const base = await tempDir(t);
  const repo = join(base, 'up.git');
  await makeRepo(repo, { commits: 6, filesPerCommit: 6 });
  await git(['config', 'uploadpack.allowFilter', 'true'], { cwd: repo });
  return { base, repo };
}

const promisorPacks = (dir: string) => readdirSync(join(dir, '.git', 'objects', 'pack')).filter((n) => n.endsWith('.promisor')).length;
/** Objects reachable from `rev` that are not here (printed, not fetched: --missing=print). */
const missing = async (dir: string, rev: string) =>
  (await git(['rev-list', '--objects', '--missing=print', rev], { cwd: dir })).stdout
    .split('\n')
    .filter((l) => l.startsWith('?'))
    .sort();

for (const server of ['git daemon', 'mpgit daemon'] as const) {
  test(`clone --filter from ${server}: the repository git makes, and git fetches the rest on demand`, async (t) => {
    const { base, repo } = await upstream(t);
    const d = server === 'git daemon' ? await gitDaemon(t, base) : await mpgitDaemon(t, base);
    const home = await tempDir(t);
    const env = isolated(home);
    const full = (await git(['log', '-p', '--format=%H %s', 'main'], { cwd: repo })).stdout;
    for (const filter of ['blob:none', 'blob:limit=500', 'tree:0']) {
      const name = filter.replace(/[:=]/g, '-');
      const g = await run('git', ['clone', '-q', `--filter=${filter}`, d.url('up.git'), join(home, `g-${name}`)], { env });
      const m = await mpgit(['clone', '-q', `--filter=${filter}`, d.url('up.git'), join(home, `m-${name}`)], { env });
      t.is(g.code, 0, g.stderr);
      t.is(m.code, 0, `${filter}: ${m.stderr}`);
      t.is(m.stderr, g.stderr, filter);
      const mdir = join(home, `m-${name}`);
      t.is(await repoState(mdir), await repoState(join(home, `g-${name}`)), filter);
      t.true(promisorPacks(mdir) >= 1, `${filter}: .promisor packs`);
      t.is((await git(['status', '--porcelain'], { cwd: mdir, env })).stdout, '', `${filter}: the checkout is complete`);
      // Old blobs are not here; git log -p fetches them from the same server.
      t.not((await missing(mdir, 'main')).length, 0, `${filter}: history is partial`);
      t.is((await git(['log', '-p', '--format=%H %s', 'main'], { cwd: mdir, env })).stdout, full, `${filter}: git log -p`);
      await git(['checkout', '-q', 'main~4'], { cwd: mdir, env });
      t.is((await git(['status', '--porcelain'], { cwd: mdir, env })).stdout, '');
    }
    // The checkout's tree and blobs came on a second connection while the history came.
    const v = await mpgit(['clone', '-v', '--filter=blob:none', d.url('up.git'), join(home, 'verbose')], { env });
    t.regex(v.stderr, /Received the checkout's \d+ objects alongside the history \(\d+ pieces over \d connections?\)/);
    t.notRegex(v.stderr, /Fetching \d+ blobs for the checkout/);
  });
}

test('mpgit fetch keeps the filter: new blobs stay on the server, as with git fetch', async (t) => {
  const { base, repo } = await upstream(t);
  const d = await gitDaemon(t, base);
  const home = await tempDir(t);
  const env = isolated(home);
  await git(['clone', '-q', '--filter=blob:none', d.url('up.git'), join(home, 'g')], { env });
  await git(['clone', '-q', '--filter=blob:none', d.url('up.git'), join(home, 'm')], { env });
  // Upstream moves on: a commit with new contents.
  const work = join(home, 'w');
  await git(['clone', '-q', repo, work], { env });
  await runOk('sh', ['-c', 'for i in 1 2 3; do echo "new $i" > new$i.txt; done && git add . && git -c user.name=T -c user.email=t@e commit -q -m more && git push -q origin HEAD:main'], { cwd: work, env });
  const packsBefore = promisorPacks(join(home, 'm'));
  const f = await mpgit(['fetch', '-q'], { cwd: join(home, 'm'), env });
  t.is(f.code, 0, f.stderr);
  await git(['fetch', '-q'], { cwd: join(home, 'g'), env });
  t.is(promisorPacks(join(home, 'm')), packsBefore + 1, 'the fetched pack is a promisor pack');
  t.deepEqual(await missing(join(home, 'm'), 'origin/main'), await missing(join(home, 'g'), 'origin/main'));
  t.is(await repoState(join(home, 'm')), await repoState(join(home, 'g')));
});

test('an offloaded repository: the in-process v2 server hands filtered fetches to git upload-pack', async (t) => {
  const { base, repo } = await upstream(t);
  const pub = await tempDir(t);
  const off = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://127.0.0.1:9/', '--base', 'main~2']);
  t.is(off.code, 0, off.stderr);
  const d = await mpgitDaemon(t, base, ['--verbose']);
  const home = await tempDir(t);
  const env = isolated(home);
  const m = await mpgit(['clone', '-q', '--no-packfile-uris', '--filter=blob:none', d.url('up.git'), join(home, 'm')], { env });
  t.is(m.code, 0, m.stderr);
  const g = await run('git', ['clone', '-q', '--filter=blob:none', d.url('up.git'), join(home, 'g')], { env });
  t.is(g.code, 0, g.stderr);
  t.is(await repoState(join(home, 'm')), await repoState(join(home, 'g')));
  t.regex(d.proc.output(), /fetch: filtered request answered by git upload-pack/);
  t.not((await missing(join(home, 'm'), 'main')).length, 0);
});

test('a server that does not allow filters: the same warning and repository as git', async (t) => {
  const { base, repo } = await upstream(t);
  await git(['config', 'uploadpack.allowFilter', 'false'], { cwd: repo });
  const d = await gitDaemon(t, base);
  const home = await tempDir(t);
  const env = isolated(home);
  const g = await run('git', ['clone', '--filter=blob:none', d.url('up.git'), join(home, 'g')], { env });
  const m = await mpgit(['clone', '-v', '--filter=blob:none', d.url('up.git'), join(home, 'm')], { env });
  t.is(m.code, 0, m.stderr);
  t.regex(g.stderr, /^warning: filtering not recognized by server, ignoring$/m);
  t.regex(m.stderr, /^warning: filtering not recognized by server, ignoring$/m);
  // Everything came in the clone's own pack: no second fetch.
  t.notRegex(m.stderr, /alongside the history|for the checkout/);
  t.is(await repoState(join(home, 'm')), await repoState(join(home, 'g')));
  t.deepEqual(await missing(join(home, 'm'), 'main'), []);
});
