// The bundle header and bundle list codecs against what git writes and reads: headers of
// bundles made by `git bundle create` (v2 and v3), ours verified by `git bundle verify`, lists
// in both forms (protocol lines, config files) with relative URIs, and what must be refused.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, tempDir } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { BundleStreamCheck, encodeBundleHeader, parseBundleHeader, readBundleHeader } from '../ts/bundle/format.js';
import { bundleListPairs, formatBundleListFile, parseBundleListFile, parseBundleListLines } from '../ts/bundle/list.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

test("git's bundles parse: v2 and v3, prerequisites, refs, the pack right after the header", async (t) => {
  const dir = await tempDir(t);
  const repo = join(dir, 'r');
  await makeRepo(repo);
  for (const version of [2, 3] as const) {
    const file = join(dir, `v${version}.bundle`);
    await git(['bundle', 'create', '-q', `--version=${version}`, file, 'HEAD~1..main'], { cwd: repo });
    const h = await readBundleHeader(file);
    t.is(h.version, version);
    if (version === 3) t.is(h.capabilities.get('object-format'), 'sha1');
    t.deepEqual(h.prerequisites.map((p) => p.oid), [(await git(['rev-parse', 'HEAD~1'], { cwd: repo })).stdout.trim()]);
    t.deepEqual(h.refs, [{ oid: (await git(['rev-parse', 'main'], { cwd: repo })).stdout.trim(), name: 'refs/heads/main' }]);
    const bytes = readFileSync(file);
    t.is(bytes.toString('latin1', h.length, h.length + 4), 'PACK');
    // Fed in small pieces, the stream check finds the same header and a sound pack.
    const check = new BundleStreamCheck();
    for (let i = 0; i < bytes.length; i += 7) check.update(bytes.subarray(i, i + 7));
    const sums = check.finish();
    t.is(sums.computed, sums.trailer);
    t.is(check.header!.length, h.length);
  }
});

test('a header we write is one git accepts', async (t) => {
  const dir = await tempDir(t);
  const repo = join(dir, 'r');
  await makeRepo(repo);
  const head = (await git(['rev-parse', 'main'], { cwd: repo })).stdout.trim();
  const file = join(dir, 'ours.bundle');
  // The pack as bytes (the test helpers return output as text).
  const packBytes = execFileSync('git', ['pack-objects', '--stdout', '--revs', '-q'], { cwd: repo, input: `${head}\n` });
  writeFileSync(file, Buffer.concat([encodeBundleHeader([], [{ oid: head, name: 'refs/heads/main' }]), packBytes]));
  const v = await git(['bundle', 'verify', file], { cwd: repo });
  t.regex(v.stdout + v.stderr, /is okay/);
});

test('headers that are not bundles, or ask for what we lack, are refused', (t) => {
  t.is(parseBundleHeader(Buffer.from('# v2 git bundle\n')), null, 'incomplete: wait for more');
  t.throws(() => parseBundleHeader(Buffer.from('<!DOCTYPE html><html>')), { code: 'MPGIT_BAD_BUNDLE' });
  t.throws(() => parseBundleHeader(Buffer.from('# v4 git bundle\n\n')), { code: 'MPGIT_BAD_BUNDLE' });
  t.throws(() => parseBundleHeader(Buffer.from(`# v3 git bundle\n@filter=blob:none\n${A} refs/heads/x\n\n`)), { message: /filtered/ });
  t.throws(() => parseBundleHeader(Buffer.from(`# v3 git bundle\n@object-format=sha256\n${A} refs/heads/x\n\n`)), { message: /sha256/ });
  t.throws(() => parseBundleHeader(Buffer.from(`# v2 git bundle\n${A} refs/heads/../x\n\n`)), { message: /malformed bundle ref/ });
  t.throws(() => parseBundleHeader(Buffer.from('# v2 git bundle\n\n')), { message: /without refs/ });
  const h = parseBundleHeader(Buffer.from(`# v2 git bundle\n-${B} some comment\n${A} refs/tags/v1\n\nPACK`))!;
  t.deepEqual(h.prerequisites, [{ oid: B, comment: 'some comment' }]);
  t.is(h.length, 16 + 42 + 13 + 41 + 13 + 1);
});

test('bundle lists: protocol lines as git sends them, config files, relative URIs, bad lists', (t) => {
  const entries = [
    { id: 'b-1', uri: 'https://cdn.example/r/one.bundle', creationToken: 10n },
    { id: 'b-2', uri: 'https://cdn.example/r/two.bundle', creationToken: 20n },
  ];
  const lines = bundleListPairs(entries).map(([k, v]) => `${k}=${v}`);
  t.true(lines.includes('bundle.b-1.creationtoken=10'), 'lower-case key, as git matches it');
  const fromLines = parseBundleListLines([...lines, 'garbage', 'bundle.x=']);
  t.deepEqual(fromLines, { mode: 'all', heuristic: 'creationToken', bundles: entries });
  t.deepEqual(parseBundleListFile(formatBundleListFile(entries), 'https://cdn.example/r/list'), fromLines);
  // Tokens are unsigned 64-bit, as git keeps them: exact past 2^53, refused past 2^64 - 1.
  const big = parseBundleListLines(['bundle.version=1', 'bundle.mode=all', 'bundle.a.uri=https://h/a', 'bundle.a.creationtoken=18446744073709551615', 'bundle.b.uri=https://h/b', 'bundle.b.creationtoken=18446744073709551616', 'bundle.c.uri=https://h/c', 'bundle.c.creationtoken=9007199254740993']);
  t.deepEqual(big.bundles.map((b) => b.creationToken), [18446744073709551615n, null, 9007199254740993n]);
  const rel = parseBundleListFile('[bundle]\n\tversion = 1\n\tmode = any\n[bundle "a"]\n\turi = a.bundle\n[bundle "b"]\n\turi = /top/b.bundle\n', 'https://h.example/x/list');
  t.deepEqual(rel.bundles.map((b) => b.uri), ['https://h.example/x/a.bundle', 'https://h.example/top/b.bundle']);
  t.is(rel.heuristic, null);
  t.throws(() => parseBundleListLines(['bundle.version=2', 'bundle.mode=all']), { message: /version 2/ });
  t.throws(() => parseBundleListLines(['bundle.version=1']), { message: /bundle.mode/ });
  t.throws(() => parseBundleListFile('not [ a config', 'file:///x'), { code: 'MPGIT_BAD_BUNDLE' });
});
