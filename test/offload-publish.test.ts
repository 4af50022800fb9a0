// `mpgit offload`: publishing packs for packfile URIs on a fully packed repository, in blob mode
// (git's own blobPackfileUri does nothing there) and base-pack mode, refresh, git's
// configuration taken over, and the command line's errors.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, mpgit, runOk, tempDir } from './helpers/proc.js';
import { readState } from '../ts/offload/state.js';
import { bigRepo } from './helpers/offload.js';

/** A fully packed bare repository with `big` random blobs of 200 KB. */
async function makeBig(t: ExecutionContext, big = 6): Promise<string> {
  const dir = join(await tempDir(t), 'src.git');
  await bigRepo(dir, { big });
  return dir;
}

/** Objects of a pack file (by indexing a copy with git). */
async function packObjects(t: ExecutionContext, pack: string): Promise<Map<string, string>> {
  const tmp = await tempDir(t);
  const repo = join(tmp, 'r.git');
  await git(['init', '-q', '--bare', repo]);
  const copy = join(repo, 'objects', 'pack', 'pack-x.pack');
  await runOk('cp', [pack, copy]);
  await git(['index-pack', copy], { cwd: repo });
  const out = (await git(['verify-pack', '-v', copy.replace(/\.pack$/, '.idx')], { cwd: repo })).stdout;
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const f = line.split(/\s+/);
    if (/^[0-9a-f]{40}$/.test(f[0] ?? '') && f[1]) m.set(f[0]!, f[1]!);
  }
  return m;
}

test('blob mode publishes every blob at or above the size, from a fully packed repository', async (t) => {
  const repo = await makeBig(t);
  const pub = await tempDir(t);
  const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://cdn.example/packs/', '--min-size', '100k']);
  t.is(r.code, 0, r.stderr);
  const state = (await readState(repo))!;
  t.is(state.mode, 'blob');
  t.is(state.minSize, 100 * 1024);
  const packs = state.packs.filter((p) => p.kind === 'blob');
  t.true(packs.length >= 2 && packs.length <= 4, `a few packs, got ${packs.length}`);
  // Exactly the big blobs, each once.
  const bigBlobs = (await git(['rev-list', '--objects', '--all'], { cwd: repo })).stdout
    .split('\n')
    .filter((l) => l.includes(' big/'))
    .map((l) => l.slice(0, 40))
    .sort();
  const published = packs.flatMap((p) => (p.kind === 'blob' ? p.blobs : [])).sort();
  t.deepEqual(published, bigBlobs);
  t.is(bigBlobs.length, 6);
  for (const p of packs) {
    // Content-addressed: the name is the pack's own checksum, and the pack holds what the state says.
    t.is(p.file, `pack-${p.hash}.pack`);
    const bytes = readFileSync(join(pub, p.file));
    t.is(bytes.subarray(bytes.length - 20).toString('hex'), p.hash);
    const objs = await packObjects(t, join(pub, p.file));
    t.deepEqual([...objs.keys()].sort(), [...(p.kind === 'blob' ? p.blobs : [])].sort());
    t.true([...objs.values()].every((type) => type === 'blob'));
    t.regex(r.stdout, new RegExp(`${p.hash} http://cdn\\.example/packs/${p.file}`));
  }
  // Nothing else lands in the publish directory (no temporary files left).
  t.deepEqual(readdirSync(pub).sort(), packs.map((p) => p.file).sort());

  // A refresh with nothing new publishes nothing; new big blobs get a new pack, old ones stay.
  const again = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://cdn.example/packs/', '--min-size', '100k', '--refresh']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /no new blobs/);
  const body = randomBytes(150_000);
  await runOk('git', ['fast-import', '--quiet'], {
    cwd: repo,
    input: Buffer.concat([Buffer.from(`commit refs/heads/main\ncommitter T <t@example.com> 1700100000 +0000\ndata 3\nnew\nfrom refs/heads/main^0\nM 100644 inline big/new.bin\ndata ${body.length}\n`), body, Buffer.from('\n\n')]),
  });
  const refreshed = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://cdn.example/packs/', '--min-size', '100k', '--refresh']);
  t.is(refreshed.code, 0, refreshed.stderr);
  const after = (await readState(repo))!.packs.filter((p) => p.kind === 'blob');
  t.is(after.length, packs.length + 1);
  t.true(packs.every((p) => after.some((q) => q.hash === p.hash && q.retiredAt === null)));
});

test('an existing uploadpack.blobPackfileUri configuration is taken over, each pack once', async (t) => {
  const repo = await makeBig(t, 3);
  const pub = await tempDir(t);
  const blobs = (await git(['rev-list', '--objects', '--all'], { cwd: repo })).stdout
    .split('\n')
    .filter((l) => l.includes(' big/'))
    .map((l) => l.slice(0, 40));
  // Two blobs configured in one hand-made pack, as git's feature is set up.
  const packHash = 'ab'.repeat(20);
  await git(['config', '--add', 'uploadpack.blobPackfileUri', `${blobs[0]} ${packHash} https://other.example/p.pack`], { cwd: repo });
  await git(['config', '--add', 'uploadpack.blobPackfileUri', `${blobs[1]} ${packHash} https://other.example/p.pack`], { cwd: repo });
  const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://cdn.example', '--min-size', '100k']);
  t.is(r.code, 0, r.stderr);
  const state = (await readState(repo))!;
  const config = state.packs.filter((p) => p.kind === 'config');
  t.is(config.length, 1);
  t.deepEqual(config[0]!.kind === 'config' && config[0]!.blobs.sort(), [blobs[0], blobs[1]].sort());
  // The configured blobs are not published again; the third is.
  const published = state.packs.flatMap((p) => (p.kind === 'blob' ? p.blobs : []));
  t.deepEqual(published, [blobs[2]]);

  await git(['config', '--add', 'uploadpack.blobPackfileUri', 'not a valid entry'], { cwd: repo });
  const bad = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://cdn.example', '--min-size', '100k', '--refresh']);
  t.is(bad.code, 129);
  t.regex(bad.stderr, /uploadpack\.blobPackfileUri "not a valid entry"/);
});

test('base-pack mode publishes everything reachable from the base; refresh retires the old base but keeps it published', async (t) => {
  const repo = await makeBig(t, 3);
  const pub = await tempDir(t);
  const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'https://cdn.example/x', '--base', 'v1']);
  t.is(r.code, 0, r.stderr);
  let state = (await readState(repo))!;
  t.is(state.mode, 'base');
  const [base] = state.packs;
  t.truthy(base && base.kind === 'base');
  if (!base || base.kind !== 'base') return;
  t.is(base.object, (await git(['rev-parse', 'v1'], { cwd: repo })).stdout.trim());
  t.is(base.commit, (await git(['rev-parse', 'v1^{commit}'], { cwd: repo })).stdout.trim());
  t.is(base.commits, 3);
  const objs = await packObjects(t, join(pub, base.file));
  const reachable = (await git(['rev-list', '--objects', 'v1'], { cwd: repo })).stdout.split('\n').filter(Boolean).map((l) => l.slice(0, 40));
  t.deepEqual([...objs.keys()].sort(), [...new Set([...reachable, base.object])].sort(), 'the tag and everything it reaches');

  // Unchanged base: refresh is a no-op.
  const same = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'https://cdn.example/x', '--base', 'v1', '--refresh']);
  t.is(same.code, 0, same.stderr);
  t.regex(same.stderr, /stays/);
  t.is((await readState(repo))!.packs.length, 1);

  // The ref moves (a nightly): a new base, the old one retired but still served.
  await runOk('git', ['fast-import', '--quiet', '--force'], {
    cwd: repo,
    input: 'commit refs/heads/main\ncommitter T <t@example.com> 1700100000 +0000\ndata 5\nnext\nfrom refs/heads/main^0\nM 100644 inline n.txt\ndata 2\nn\n\nreset refs/tags/v1\nfrom refs/heads/main\n\n',
  });
  const moved = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'https://cdn.example/x', '--base', 'v1', '--refresh']);
  t.is(moved.code, 0, moved.stderr);
  state = (await readState(repo))!;
  const live = state.packs.filter((p) => p.kind === 'base' && p.retiredAt === null);
  const retired = state.packs.filter((p) => p.kind === 'base' && p.retiredAt !== null);
  t.is(live.length, 1);
  t.is(retired.length, 1);
  t.is(retired[0]!.hash, base.hash);
  t.true(existsSync(join(pub, base.file)), 'the retired base stays published');
  t.true(existsSync(join(pub, (live[0] as { file: string }).file)));
  t.regex(moved.stderr, /retired/);
});

test('the command line refuses what it cannot do, with the reason', async (t) => {
  const repo = await makeBig(t, 1);
  const pub = await tempDir(t);
  const both = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://x', '--min-size', '1m', '--base', 'main']);
  t.is(both.code, 129);
  t.regex(both.stderr, /exactly one of --min-size/);
  const none = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://x']);
  t.is(none.code, 129);
  const url = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'ftp://x', '--min-size', '1m']);
  t.is(url.code, 129);
  t.regex(url.stderr, /http or https/);
  const refresh = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://x', '--min-size', '1m', '--refresh']);
  t.is(refresh.code, 129);
  t.regex(refresh.stderr, /not set up/);
  const ref = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://x', '--base', 'no-such-ref']);
  t.is(ref.code, 129);
  t.regex(ref.stderr, /no such ref/);
  const size = await mpgit(['offload', repo, '--publish', pub, '--base-url', 'http://x', '--min-size', 'lots']);
  t.is(size.code, 129);
  t.regex(size.stderr, /bad size/);
  const notRepo = await mpgit(['offload', pub, '--publish', pub, '--base-url', 'http://x', '--min-size', '1m']);
  t.not(notRepo.code, 0);
  t.regex(notRepo.stderr, /not a git repository/);
  t.false(existsSync(join(repo, 'mpgit-offload.json')));
});
