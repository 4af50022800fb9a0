// --fix-thin deflates the bases it appends at the repository's zlib level (core.looseCompression,
// else core.compression, else 1), as git index-pack does: the same bytes as git's, level 9 too,
// for index-pack and for a thin bundle a fetch applies.

import test from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitDaemon } from './helpers/gitserve.js';
import { git, mpgit, runOk, tempDir } from './helpers/proc.js';
import { zlibCompressionLevel } from '../ts/repo/compression.js';
import { GitConfig } from '../ts/repo/config.js';

/** Text that zlib compresses differently at levels 1 and 9: words from a small vocabulary, in a fixed pseudo-random order. */
function text(seed: number, words: number): string {
  const vocab = ['pack', 'delta', 'base', 'object', 'tree', 'blob', 'commit', 'index', 'thin', 'zlib', 'level', 'git'];
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push(vocab[x % vocab.length]!);
    if (x % 11 === 0) out.push('\n');
  }
  return out.join(' ');
}

/** A source repository of two commits and a thin pack of the second against the first. */
async function thinPack(dir: string): Promise<{ src: string; thin: Buffer; old: string }> {
  const src = join(dir, 'src');
  await git(['init', '-q', '-b', 'main', src]);
  for (const [i, f] of ['a.txt', 'b.txt', 'c.txt'].entries()) writeFileSync(join(src, f), text(i + 1, 20_000));
  await git(['add', '.'], { cwd: src });
  await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'one'], { cwd: src });
  for (const f of ['a.txt', 'b.txt', 'c.txt']) writeFileSync(join(src, f), `${readFileSync(join(src, f), 'utf8')}\nchanged\n`);
  await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-am', 'two'], { cwd: src });
  // A thin pack is not indexable as it is, so git writes it only to stdout.
  const file = join(dir, 'thin.pack');
  await runOk('sh', ['-c', `git pack-objects -q --thin --revs --stdout --delta-base-offset > '${file}'`], { cwd: src, input: 'main\n^main~1\n' });
  return { src, thin: readFileSync(file), old: (await git(['rev-parse', 'main~1'], { cwd: src })).stdout.trim() };
}

/** A bare repository holding `old`, with `config` set. */
async function receiver(path: string, src: string, old: string, config: string[]): Promise<string> {
  await git(['init', '-q', '--bare', path]);
  await git(['push', '-q', path, `${old}:refs/heads/main`], { cwd: src });
  for (const kv of config) await git(['config', ...kv.split('=')], { cwd: path });
  return path;
}

for (const kind of ['native', 'wasm']) {
  test(`${kind}: index-pack --fix-thin appends bases at core.compression=9 as git does, and at the default level otherwise`, async (t) => {
    const dir = await tempDir(t);
    const { src, thin, old } = await thinPack(dir);
    const results: Record<string, Buffer> = {};
    for (const [name, config] of [['default', []], ['compression9', ['core.compression=9']], ['loose9', ['core.compression=1', 'core.looseCompression=9']]] as const) {
      const theirs = await receiver(join(dir, `git-${name}.git`), src, old, [...config]);
      const ours = await receiver(join(dir, `ours-${name}.git`), src, old, [...config]);
      const g = await git(['index-pack', '--stdin', '--fix-thin'], { cwd: theirs, input: thin });
      const r = await mpgit(['index-pack', '--stdin', '--fix-thin'], { cwd: ours, input: thin, env: { MPGIT_CORE: kind } });
      t.is(r.code, 0, r.stderr);
      t.is(r.stdout, g.stdout, `${name}: the same pack checksum as git`);
      const sum = g.stdout.trim().split('\t')[1]!;
      const file = (repo: string) => readFileSync(join(repo, 'objects', 'pack', `pack-${sum}.pack`));
      t.true(file(ours).equals(file(theirs)), `${name}: the fixed pack is git's, byte for byte`);
      results[name] = file(ours);
    }
    t.false(results.default!.equals(results.compression9!), 'level 9 makes other bytes than the default level (the test can tell them apart)');
    t.true(results.loose9!.equals(results.compression9!), 'core.looseCompression wins over core.compression');
  });
}

test('mpgit fetch completes a thin bundle (fetch.bundleURI) at core.compression=9 as git bundle unbundle does', async (t) => {
  const dir = await tempDir(t);
  const { src, old } = await thinPack(dir);
  // A bundle of the second commit whose prerequisite is the first: its pack is thin.
  const bundle = join(dir, 'inc.bundle');
  await git(['bundle', 'create', '-q', bundle, 'main~1..main'], { cwd: src });
  await git(['clone', '-q', '--bare', src, join(dir, 'srv', 'src.git')]);
  const d = await gitDaemon(t, join(dir, 'srv'));
  const packs = (repo: string) => readdirSync(join(repo, 'objects', 'pack')).filter((n) => n.endsWith('.pack'));
  const unbundled: Record<string, string> = {};
  for (const [name, config] of [['default', []], ['compression9', ['core.compression=9']]] as const) {
    const theirs = await receiver(join(dir, `git-${name}.git`), src, old, [...config]);
    const before = new Set(packs(theirs));
    await git(['bundle', 'unbundle', bundle], { cwd: theirs });
    unbundled[name] = packs(theirs).find((n) => !before.has(n))!;
    t.truthy(unbundled[name], `${name}: git unbundle wrote a pack`);
  }
  t.not(unbundled.default, unbundled.compression9, 'level 9 makes another pack than the default level (the test can tell them apart)');
  const ours = await receiver(join(dir, 'ours.git'), src, old, ['core.compression=9', `remote.origin.url=${d.url('src.git')}`, 'remote.origin.fetch=+refs/heads/*:refs/remotes/origin/*', `fetch.bundleURI=${bundle}`]);
  const r = await mpgit(['fetch', '-q'], { cwd: ours });
  t.is(r.code, 0, r.stderr);
  const name = unbundled.compression9!;
  t.true(packs(ours).includes(name), `mpgit kept the bundle's pack as git names it (${name}); it has ${packs(ours).join(', ')}`);
  t.true(readFileSync(join(ours, 'objects', 'pack', name)).equals(readFileSync(join(dir, 'git-compression9.git', 'objects', 'pack', name))), "the completed pack is git's, byte for byte");
});

test('the zlib level is read as git reads it', (t) => {
  const level = (text: string) => zlibCompressionLevel(GitConfig.parse(text));
  t.is(level(''), 1);
  t.is(level('[core]\n\tcompression = 9\n'), 9);
  t.is(level('[core]\n\tcompression = -1\n'), -1);
  t.is(level('[core]\n\tcompression = 9\n\tlooseCompression = 0\n'), 0);
  t.throws(() => level('[core]\n\tcompression = 10\n'), { message: /bad zlib compression level 10/ });
});
