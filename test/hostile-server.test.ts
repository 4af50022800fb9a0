// `mpgit clone` and `mpgit fetch` against a hostile git:// server (test/helpers/hostile-server):
// lying packs, hostile ref names and tree entries, packfile URIs that misbehave. Each must end
// in a clear error and a non-zero exit, write nothing outside the clone's directory, leave no
// half repository, and stay within a memory bound (/usr/bin/time -v).

import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MPGIT, git, run, tempDir } from './helpers/proc.js';
import { startHostileServer, startUriServer, type HostileScript } from './helpers/hostile-server.js';
import { buildPack, commitData, copy, delta, history, objectId, treeData, type PackEntry } from './helpers/pack-builder.js';

const MAX_RSS_MB = 300;
const good = history([{ name: 'README', data: Buffer.from('hello\n') }]);
const other = history([{ name: 'OTHER', data: Buffer.from('other bytes\n') }]);
const refsFor = (commit: string, extra: string[] = []) => [`${commit} HEAD symref-target:refs/heads/main`, `${commit} refs/heads/main`, ...extra];
const EMPTY_PACK = buildPack([]);

interface CloneRun {
  code: number | null;
  stderr: string;
  rssMb: number;
  sandbox: string;
  dst: string;
}

/** mpgit clone (or a command in an existing clone) under /usr/bin/time -v, in a sandbox dir. */
async function mpgitTimed(t: ExecutionContext, args: string[], opts: { sandbox?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CloneRun> {
  const sandbox = opts.sandbox ?? (await tempDir(t, 'mpgit-hostile-'));
  const dst = join(sandbox, 'clone');
  const argv = args.map((a) => (a === '$DST' ? dst : a));
  const r = await run('/usr/bin/time', ['-v', process.execPath, MPGIT, ...argv], { cwd: opts.cwd ?? sandbox, env: { ...opts.env, GIT_TERMINAL_PROMPT: '0' }, timeoutMs: 120_000 });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  t.truthy(m, `no /usr/bin/time report: ${r.stderr.slice(-500)}`);
  return { code: r.code, stderr: r.stderr.replace(/\n\tCommand being timed[\s\S]*$/, ''), rssMb: Math.round(Number(m?.[1] ?? 0) / 1024), sandbox, dst };
}

/** The clone failed clearly and left nothing: no repository, nothing beside it, memory bounded. */
function refused(t: ExecutionContext, r: CloneRun, message: RegExp, opts: { resumable?: boolean; maxRssMb?: number } = {}): void {
  t.not(r.code, 0, `exit 0 for a hostile clone: ${r.stderr}`);
  t.regex(r.stderr, message);
  t.notRegex(r.stderr, /TypeError|RangeError|at .*\.(ts|js):\d+/, 'a stack trace instead of a message');
  const left = readdirSync(r.sandbox);
  if (opts.resumable && left.length) {
    // An interrupted URI download keeps its resume state in the target, and nothing else.
    t.deepEqual(left, ['clone']);
    t.deepEqual(readdirSync(r.dst), ['.mpgit-clone-resume']);
  } else t.deepEqual(left, [], 'the failed clone left files behind');
  t.true(r.rssMb <= (opts.maxRssMb ?? MAX_RSS_MB), `peak RSS ${r.rssMb} MB`);
  t.log(`exit ${r.code}, peak RSS ${r.rssMb} MB: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
}

async function cloneFrom(t: ExecutionContext, script: HostileScript, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CloneRun> {
  const s = await startHostileServer(t, script);
  return mpgitTimed(t, ['clone', ...extra, s.url(), '$DST'], { env });
}

test('the kit itself: an honest script clones, and git fsck passes', async (t) => {
  const r = await cloneFrom(t, { refs: refsFor(good.commit), pack: good.pack });
  t.is(r.code, 0, r.stderr);
  await git(['fsck', '--strict'], { cwd: r.dst });
  t.is((await git(['rev-parse', 'HEAD'], { cwd: r.dst })).stdout.trim(), good.commit);
});

test('a truncated pack (flush after half of it) and a cut connection', async (t) => {
  const half = good.pack.subarray(0, good.pack.length >> 1);
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: half }), /truncated/);
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: good.pack, cutAfter: 40 }), /hung up|truncated|closed/);
});

test('an object header declaring 4 GB over a few bytes', async (t) => {
  const entries: PackEntry[] = [...good.entries];
  entries[0] = { type: 'blob', data: Buffer.from('hello\n'), declaredSize: 4 * 2 ** 30 };
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: buildPack(entries) }), /offset 12.*(4294967296|header says)/);
});

test('a REF_DELTA to a missing base', async (t) => {
  const entries: PackEntry[] = [{ refBase: 'ab'.repeat(20), delta: delta(10, 6, [copy(0, 6)]) }, ...good.entries.slice(1)];
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: buildPack(entries) }), /unresolved delta|missing/);
});

test('delta bombs: a claim no instruction can fill, and a 2 GiB result over a limit', async (t) => {
  // 8 bytes of instructions claiming a TiB.
  const base = Buffer.alloc(1 << 20);
  const claim: PackEntry[] = [{ type: 'blob', data: base }, { ofsBase: 0, delta: delta(base.length, 2n ** 40n, Array.from({ length: 4 }, () => copy(0, 0x10000))) }, ...good.entries.slice(1)];
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: buildPack(claim) }), /1099511627776/);
  // 2048 copies of a 1 MiB base: a well-formed 2 GiB blob from 4 KiB of (1 KiB compressed) deltas.
  const bomb: PackEntry[] = [{ type: 'blob', data: base }, { ofsBase: 0, delta: delta(base.length, 2 ** 31, Array.from({ length: 2048 }, () => copy(0, 1 << 20))) }, ...good.entries.slice(1)];
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: buildPack(bomb) }, [], { MPGIT_MAX_OBJECT_SIZE: '256m' }), /2147483648 bytes, more than the 268435456/);
});

test('garbage after the pack, and a stream that does not start with PACK', async (t) => {
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: Buffer.concat([good.pack, Buffer.from('garbage after the trailer')]) }), /junk after its trailer/);
  refused(t, await cloneFrom(t, { refs: refsFor(good.commit), pack: Buffer.concat([Buffer.from('PACX'), good.pack.subarray(4)]) }), /signature|not a pack/);
});

test('100k refs: cloned with bounded memory', async (t) => {
  const refs = function* () {
    yield* refsFor(good.commit);
    for (let i = 0; i < 100_000; i++) yield `${good.commit} refs/heads/branch-${i}`;
  };
  const r = await cloneFrom(t, { refs, pack: good.pack });
  t.is(r.code, 0, r.stderr);
  const n = (await git(['for-each-ref', '--format=x', 'refs/remotes/origin/'], { cwd: r.dst })).stdout.split('\n').filter(Boolean).length;
  t.is(n, 100_002); // main, HEAD, 100k branches
  t.true(r.rssMb <= 400, `peak RSS ${r.rssMb} MB`);
  t.log(`100k refs: peak RSS ${r.rssMb} MB`);
});

for (const name of ['refs/heads/a..b', 'refs/heads/x.lock', 'refs/heads/ctl\x01char', 'refs/heads/../../hooks/x', 'refs/heads/x/', '/etc/passwd']) {
  test(`a ref named ${JSON.stringify(name)}`, async (t) => {
    refused(t, await cloneFrom(t, { refs: refsFor(good.commit, [`${good.commit} ${name}`]), pack: good.pack }), /invalid ref name/);
  });
}

for (const target of ['refs/heads/../../config', '/etc/passwd', 'refs/heads/x\x01y', 'HEAD', 'refs/heads/nonexistent']) {
  test(`HEAD as a symref to ${JSON.stringify(target)}`, async (t) => {
    const r = await cloneFrom(t, { refs: [`${good.commit} HEAD symref-target:${target}`, `${good.commit} refs/heads/main`], pack: good.pack });
    // As git's guess_remote_head: a target that is no listed branch leaves HEAD detached at the
    // remote HEAD's commit (or the clone is refused); never a HEAD or config naming the target.
    if (r.code !== 0) return refused(t, r, /symref|invalid|HEAD/);
    t.deepEqual(readdirSync(r.sandbox), ['clone']);
    const head = (await run('cat', [join(r.dst, '.git', 'HEAD')])).stdout.trim();
    t.true(head === good.commit || head === 'ref: refs/heads/main', `.git/HEAD is ${JSON.stringify(head)}`);
    const cfg = (await run('git', ['config', '--list'], { cwd: r.dst })).stdout;
    t.notRegex(cfg, /\.\.|passwd|nonexistent|\x01/);
    await git(['fsck', '--strict'], { cwd: r.dst });
    t.true(r.rssMb <= MAX_RSS_MB);
  });
}

function treeCase(entries: Parameters<typeof treeData>[0], blobs: Buffer[], subtrees: Buffer[] = []): { commit: string; pack: Buffer } {
  const t = treeData(entries);
  const c = commitData(objectId('tree', t));
  const pack = buildPack([...blobs.map((data) => ({ type: 'blob' as const, data })), ...subtrees.map((data) => ({ type: 'tree' as const, data })), { type: 'tree', data: t }, { type: 'commit', data: c }]);
  return { commit: objectId('commit', c), pack };
}

const payload = Buffer.from('#!/bin/sh\ntouch pwned\n');
const pid = objectId('blob', payload);
const hooksTree = treeData([{ mode: '100755', name: 'post-checkout', oid: pid }]);
const hooksDir = treeData([{ mode: '40000', name: 'hooks', oid: objectId('tree', hooksTree) }]);
const treeCases: [string, ReturnType<typeof treeCase>][] = [
  ['../x', treeCase([{ mode: '100644', name: '../x', oid: pid }], [payload])],
  ['.git/hooks/x as one name', treeCase([{ mode: '100755', name: '.git/hooks/x', oid: pid }], [payload])],
  ['.git as a directory', treeCase([{ mode: '40000', name: '.git', oid: objectId('tree', hooksDir) }], [payload], [hooksTree, hooksDir])],
  ['.GIT', treeCase([{ mode: '40000', name: '.GIT', oid: objectId('tree', hooksDir) }], [payload], [hooksTree, hooksDir])],
  ['git~1', treeCase([{ mode: '40000', name: 'git~1', oid: objectId('tree', hooksDir) }], [payload], [hooksTree, hooksDir])],
  ['.git with a trailing space', treeCase([{ mode: '40000', name: '.git ', oid: objectId('tree', hooksDir) }], [payload], [hooksTree, hooksDir])],
  ['a name with NUL', treeCase([{ mode: '100644', name: Buffer.from('a\0b'), oid: pid }], [payload])],
  [
    'a symlink and a directory through it',
    treeCase(
      [
        { mode: '120000', name: 'l', oid: objectId('blob', Buffer.from('..')) },
        { mode: '40000', name: 'l', oid: objectId('tree', hooksTree) },
      ],
      [payload, Buffer.from('..')],
      [hooksTree],
    ),
  ],
];
for (const [what, c] of treeCases) {
  test(`a tree entry: ${what}`, async (t) => {
    const r = await cloneFrom(t, { refs: refsFor(c.commit), pack: c.pack });
    refused(t, r, /unsafe|malformed|refuse|two entries|invalid|not a valid/i);
    t.false(existsSync(join(r.sandbox, 'x')) || existsSync(join(r.sandbox, 'pwned')));
  });
}

test('a .gitmodules with a hostile URL and path, cloned with --recurse-submodules', async (t) => {
  const sandbox = await tempDir(t, 'mpgit-hostile-');
  const gm = Buffer.from(`[submodule "x"]\n\tpath = ../../escape\n\turl = --upload-pack=touch ${sandbox}/pwned\n`);
  const h = history([{ name: '.gitmodules', data: gm }], [{ mode: '160000', name: 'sub', oid: good.commit }]);
  const s = await startHostileServer(t, { refs: refsFor(h.commit), pack: h.pack });
  const r = await mpgitTimed(t, ['clone', '--recurse-submodules', s.url(), '$DST'], { sandbox });
  // As with git: the superproject is cloned whole; the submodule is refused (a non-zero exit)
  // or ignored with a warning naming the URL; its command never runs.
  if (r.code === 0) t.regex(r.stderr, /warning: ignoring 'submodule\.x\.url' which may be interpreted as a command-line option/);
  else t.regex(r.stderr, /submodule/i);
  t.notRegex(r.stderr, /TypeError|RangeError/);
  t.false(existsSync(join(sandbox, 'pwned')));
  t.deepEqual(readdirSync(sandbox), ['clone']);
  await git(['fsck', '--strict', '--no-dangling'], { cwd: r.dst }).catch((e: Error) => t.regex(e.message, /gitmodules/, 'only the hostile .gitmodules may upset fsck'));
  t.log(`exit ${r.code}, peak RSS ${r.rssMb} MB: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
});

const uriEnv = { MPGIT_URI_STALL_TIMEOUT_MS: '1500', MPGIT_URI_RETRIES: '1', MPGIT_URI_BACKOFF_MS: '20' };
const packHash = (p: Buffer) => p.subarray(p.length - 20).toString('hex');

async function uriClone(t: ExecutionContext, mode: Parameters<typeof startUriServer>[1]): Promise<CloneRun> {
  const u = await startUriServer(t, mode);
  return cloneFrom(t, { refs: refsFor(good.commit), pack: EMPTY_PACK, packfileUris: [`${packHash(good.pack)} ${u.url}`] }, [], uriEnv);
}

test('packfile URIs: the honest case clones', async (t) => {
  const r = await uriClone(t, { kind: 'serve', body: good.pack });
  t.is(r.code, 0, r.stderr);
  await git(['fsck', '--strict'], { cwd: r.dst });
});

const uriCases: [string, Parameters<typeof startUriServer>[1], RegExp][] = [
  ['wrong bytes', { kind: 'wrong-bytes', body: other.pack }, /hash|checksum|does not match/i],
  ['a body that never ends', { kind: 'never-ends', body: good.pack, sendFirst: 10 }, /stall|no byte|timed out/i],
  ['a redirect loop', { kind: 'redirect-loop' }, /redirect/i],
  ['416', { kind: 'status', status: 416 }, /416/],
];
for (const [what, mode, message] of uriCases) {
  test(`packfile URIs: ${what}`, async (t) => {
    refused(t, await uriClone(t, mode), message, { resumable: true });
  });
}

test('packfile URIs: a file changed under If-Range', async (t) => {
  const big = history([{ name: 'A', data: Buffer.alloc(200_000, 1) }]);
  const u = await startUriServer(t, { kind: 'changes-under-if-range', first: big.pack, then: other.pack });
  refused(t, await cloneFrom(t, { refs: refsFor(big.commit), pack: EMPTY_PACK, packfileUris: [`${packHash(big.pack)} ${u.url}`] }, [], uriEnv), /hash|checksum|changed|does not match/i, { resumable: true });
});

// Bundle URIs are an optimization, as in git: a bundle that fails is skipped and the server
// sends everything; what must hold is a whole clone, nothing else written, memory bounded.
const bundleCases: [string, Parameters<typeof startUriServer>[1]][] = [
  ['wrong bytes', { kind: 'wrong-bytes', body: Buffer.concat([Buffer.from(`# v2 git bundle\n${good.commit} refs/heads/main\n\n`), other.pack]) }],
  ['not a bundle', { kind: 'wrong-bytes', body: Buffer.from('<html>not found</html>') }],
  ['a body that never ends', { kind: 'never-ends', body: Buffer.concat([Buffer.from(`# v2 git bundle\n${good.commit} refs/heads/main\n\n`), good.pack]), sendFirst: 30 }],
  ['a redirect loop', { kind: 'redirect-loop' }],
  ['416', { kind: 'status', status: 416 }],
];
for (const [what, mode] of bundleCases) {
  test(`bundle URIs: ${what}`, async (t) => {
    const u = await startUriServer(t, mode);
    const bundleList = ['bundle.version=1', 'bundle.mode=all', 'bundle.heuristic=creationToken', `bundle.b1.uri=${u.url}`, 'bundle.b1.creationtoken=1'];
    const r = await cloneFrom(t, { refs: refsFor(good.commit), pack: good.pack, bundleList }, [], uriEnv);
    t.true(u.requests.length > 0, 'the bundle URI was not tried');
    if (r.code !== 0) return refused(t, r, /bundle/i);
    t.deepEqual(readdirSync(r.sandbox), ['clone']);
    await git(['fsck', '--strict'], { cwd: r.dst });
    t.is((await git(['rev-parse', 'HEAD'], { cwd: r.dst })).stdout.trim(), good.commit);
    t.true(r.rssMb <= MAX_RSS_MB, `peak RSS ${r.rssMb} MB`);
    t.log(`exit 0 after ${u.requests.length} request(s), peak RSS ${r.rssMb} MB: ${r.stderr.trim().split('\n').filter((l) => /bundle/i.test(l)).join(' | ')}`);
  });
}

test('mpgit fetch from a server that turned hostile: refused, the repository unchanged', async (t) => {
  const script: HostileScript = { refs: refsFor(good.commit), pack: good.pack };
  const s = await startHostileServer(t, script);
  const first = await mpgitTimed(t, ['clone', s.url(), '$DST']);
  t.is(first.code, 0, first.stderr);
  const before = (await git(['for-each-ref'], { cwd: first.dst })).stdout;
  const next = history([{ name: 'README', data: Buffer.from('hello again\n') }]);
  for (const [refs, pack, message] of [
    [refsFor(next.commit), next.pack.subarray(0, 60), /truncated/],
    [refsFor(next.commit, [`${next.commit} refs/heads/../../hooks/x`]), next.pack, /invalid ref name/],
    [refsFor(next.commit), Buffer.concat([next.pack, Buffer.from('junk')]), /junk/],
  ] as const) {
    script.refs = [...refs];
    script.pack = pack;
    const r = await mpgitTimed(t, ['fetch'], { cwd: first.dst, sandbox: first.sandbox });
    t.not(r.code, 0);
    t.regex(r.stderr, message);
    t.true(r.rssMb <= MAX_RSS_MB);
    t.is((await git(['for-each-ref'], { cwd: first.dst })).stdout, before);
    await git(['fsck', '--strict'], { cwd: first.dst });
    t.deepEqual(readdirSync(join(first.dst, '.git', 'objects', 'pack')).filter((n) => !/^pack-[0-9a-f]{40}\.(pack|idx|rev)$/.test(n)), []);
  }
  t.deepEqual(readdirSync(first.sandbox), ['clone']);
});
