// The pack indexer against stock git: every .idx/.rev must be byte for byte what `git
// index-pack` writes for the same pack, thin packs fixed with --fix-thin must give git's pack
// bytes too, and every corrupt or truncated pack must be refused with a PackError that leaves
// no index (and, when streamed, no pack) behind. The tests in this process use the core it
// loads (run the file with MPGIT_CORE=wasm for the WebAssembly core's); the command-line tests
// run both cores.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { createIndexer, indexPackFile, indexStream } from '../ts/pack/indexer.js';
import { core } from '../ts/core/index.js';
import { ObjectDb } from '../ts/repo/odb.js';
import { generateRepo, specFor } from '../benches/lib/genrepo.js';
import { makeRepo } from './helpers/repo.js';
import { git, mpgit, run, tempDir } from './helpers/proc.js';

/** The cores the command-line tests run (MPGIT_CORE). */
const CORES = ['native', 'wasm'] as const;
/** The core of the tests in this process. */
const impl = core.kind;

/** Runs git with binary stdin/stdout. */
function gitBytes(args: string[], opts: { cwd?: string; input?: Buffer } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`git ${args.join(' ')} exited ${code}: ${err}`))));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}

/** git index-pack's .idx and .rev for `pack` (written under `dir`). */
async function gitIndex(dir: string, pack: Buffer): Promise<{ idx: Buffer; rev: Buffer; checksum: string }> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'git.pack');
  writeFileSync(path, pack);
  const out = await git(['index-pack', '--rev-index', path]);
  return { idx: readFileSync(join(dir, 'git.idx')), rev: readFileSync(join(dir, 'git.rev')), checksum: out.stdout.trim() };
}

/** Chunks of varied sizes (1 byte up to 64 KiB), the same every run. */
async function* chunked(buf: Buffer, seed = 7): AsyncGenerator<Buffer> {
  let s = seed;
  for (let at = 0; at < buf.length; ) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = at < 64 ? 1 + (s % 3) : 1 + (s % 65536);
    yield buf.subarray(at, at + n);
    at += n;
  }
}

function packOf(repo: string, extra: string[] = []): Promise<Buffer> {
  return gitBytes(['pack-objects', '-q', '--all', '--stdout', ...extra], { cwd: repo });
}

/**
 * A history with real delta chains, made once for the whole file. It lives in a directory of
 * the file's own (not a test's tempDir, which that test's teardown deletes while other tests
 * still use the repository), removed once every test is done.
 */
let deltaRepo: Promise<string> | null = null;
const sharedDirs: string[] = [];
test.after.always(() => {
  for (const d of sharedDirs) rmSync(d, { recursive: true, force: true });
});
function getDeltaRepo(): Promise<string> {
  deltaRepo ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpgit-ip-gen-'));
    sharedDirs.push(dir);
    const repo = join(dir, 'repo.git');
    await generateRepo(specFor({ objects: 3000, packMB: 1, seed: 3 }), repo);
    return repo;
  })();
  return deltaRepo;
}

/**
 * Makes a thin pack of `src` from `since` to main, gives it to git index-pack --fix-thin and to
 * our indexer in two receivers that have `since`, and compares everything. Returns the number
 * of bases appended.
 */
async function checkFixThin(t: ExecutionContext, src: string, since: string, dir: string): Promise<number> {
  mkdirSync(dir, { recursive: true });
  const thin = await gitBytes(['pack-objects', '-q', '--thin', '--revs', '--stdout', '--delta-base-offset'], { cwd: src, input: Buffer.from(`main\n^${since}\n`) });
  const old = (await git(['rev-parse', since], { cwd: src })).stdout.trim();
  const receivers = [join(dir, 'git-dst.git'), join(dir, 'our-dst.git')];
  for (const d of receivers) {
    await git(['init', '-q', '--bare', d]);
    await git(['push', '-q', d, `${old}:refs/heads/main`], { cwd: src });
  }
  await gitBytes(['index-pack', '--stdin', '--fix-thin', '--rev-index'], { cwd: receivers[0], input: thin });
  const gitPackDir = join(receivers[0]!, 'objects', 'pack');
  const db = await ObjectDb.open(receivers[1]!);
  t.teardown(() => db.close());
  const ours = join(dir, 'ours.pack');
  const r = await indexStream(chunked(thin, 5), ours, { fixThin: db, revPath: join(dir, 'ours.rev') });
  t.true(r.appendedBases > 0, 'the pack was thin');
  const gitPack = join(gitPackDir, `pack-${r.packChecksum}.pack`);
  t.true(existsSync(gitPack), `git's fixed pack is not named by our checksum ${r.packChecksum}: the fixed packs differ`);
  t.true(readFileSync(ours).equals(readFileSync(gitPack)), 'fixed pack bytes equal git index-pack --fix-thin');
  t.true(readFileSync(join(dir, 'ours.idx')).equals(readFileSync(gitPack.replace(/\.pack$/, '.idx'))), '.idx equals git');
  t.true(readFileSync(join(dir, 'ours.rev')).equals(readFileSync(gitPack.replace(/\.pack$/, '.rev'))), '.rev equals git');
  t.is(r.objectCount, readFileSync(ours).readUInt32BE(8));
  return r.appendedBases;
}

test(`${impl}: .idx and .rev equal git's for a small repository's pack, from a file and streamed`, async (t) => {
  const dir = await tempDir(t);
  await makeRepo(join(dir, 'repo.git'), { commits: 8, filesPerCommit: 6 });
  const pack = await packOf(join(dir, 'repo.git'), ['--delta-base-offset']);
  const want = await gitIndex(join(dir, 'git'), pack);

  const file = join(dir, 'file.pack');
  writeFileSync(file, pack);
  const r = await indexPackFile(file, { revPath: join(dir, 'file.rev') });
  t.is(r.packChecksum, want.checksum);
  t.true(readFileSync(join(dir, 'file.idx')).equals(want.idx), '.idx differs from git');
  t.true(readFileSync(join(dir, 'file.rev')).equals(want.rev), '.rev differs from git');
  t.true(readFileSync(file).equals(pack), 'the pack on disk was not touched');

  const s = await indexStream(chunked(pack), join(dir, 'streamed.pack'), { revPath: join(dir, 'streamed.rev') });
  t.is(s.packChecksum, want.checksum);
  t.is(s.idxPath, join(dir, 'streamed.idx'));
  t.true(readFileSync(join(dir, 'streamed.pack')).equals(pack), 'the streamed pack was written as received');
  t.true(readFileSync(join(dir, 'streamed.idx')).equals(want.idx));
  t.true(readFileSync(join(dir, 'streamed.rev')).equals(want.rev));
});

test(`${impl}: long OFS and REF delta chains resolve like git's, even with a tiny base cache`, async (t) => {
  const repo = await getDeltaRepo();
  const dir = await tempDir(t);
  for (const [name, flags] of [
    ['ofs', ['--delta-base-offset']],
    ['ref', []],
  ] as const) {
    const pack = await packOf(repo, [...flags]);
    const want = await gitIndex(join(dir, `git-${name}`), pack);
    for (const cache of [undefined, 4096]) {
      const path = join(dir, `${name}-${cache ?? 'default'}.pack`);
      const ix = createIndexer(path, { threads: 2, maxCacheBytes: cache });
      for await (const c of chunked(pack, 11)) ix.write(c);
      t.deepEqual((await ix.resolve()).missing, []);
      const p = ix.progress();
      t.true(p.deltasTotal > 1000, `${name}: the pack has deltas (${p.deltasTotal})`);
      t.is(p.deltasResolved, p.deltasTotal);
      t.is(p.objectsReceived, p.objectsTotal);
      const r = await ix.finish({ idxPath: path.replace(/\.pack$/, '.idx'), revPath: path.replace(/\.pack$/, '.rev'), fixThin: false });
      t.is(r.deltaCount, p.deltasTotal);
      t.true(readFileSync(r.idxPath).equals(want.idx), `${name} pack, cache ${cache}: .idx differs from git`);
      t.true(readFileSync(r.revPath!).equals(want.rev), `${name} pack, cache ${cache}: .rev differs from git`);
    }
  }
});

test(`${impl}: thin packs fixed with --fix-thin are git's pack, .idx and .rev, byte for byte`, async (t) => {
  const dir = await tempDir(t);
  const small = join(dir, 'small.git');
  await makeRepo(small, { commits: 6, filesPerCommit: 5 });
  const few = await checkFixThin(t, small, 'main~2', join(dir, 'small'));
  // Many REF_DELTAs to outside bases, with in-pack chains on top of them.
  const many = await checkFixThin(t, await getDeltaRepo(), 'main~60', join(dir, 'gen'));
  t.true(few > 0 && many > few, `bases appended: ${few}, ${many}`);
});

test(`${impl}: a thin pack without --fix-thin is a missing-base error and leaves nothing behind`, async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src.git');
  await makeRepo(src, { commits: 5, filesPerCommit: 4 });
  const thin = await gitBytes(['pack-objects', '-q', '--thin', '--revs', '--stdout'], { cwd: src, input: Buffer.from('main\n^main~1\n') });
  const path = join(dir, 'thin.pack');
  const err = await t.throwsAsync(indexStream(chunked(thin), path));
  t.is((err as { code?: string }).code, 'MPGIT_MISSING_BASE');
  t.regex(err!.message, /unresolved delta/);
  t.deepEqual(readdirSync(dir).filter((n) => n !== 'src.git'), [], 'no pack, no index left');
});

/** A pack from raw entries, with a correct header count and trailer unless overridden. */
function craftPack(entries: Buffer[], count = entries.length): Buffer {
  const head = Buffer.alloc(12);
  head.write('PACK');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(count, 8);
  const body = Buffer.concat([head, ...entries]);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

function entryHeader(type: number, size: number): Buffer {
  const out = [((type << 4) | (size & 15)) | (size >= 16 ? 0x80 : 0)];
  for (let s = size >>> 4; s > 0; s >>>= 7) out.push((s & 0x7f) | (s >= 128 ? 0x80 : 0));
  return Buffer.from(out);
}

const whole = (type: number, data: Buffer, declared = data.length) => Buffer.concat([entryHeader(type, declared), deflateSync(data)]);

function ofsDelta(rel: number, delta: Buffer): Buffer {
  const bytes = [rel & 0x7f];
  for (let r = rel >>> 7; r > 0; r >>>= 7) bytes.unshift(((--r) & 0x7f) | 0x80);
  return Buffer.concat([entryHeader(6, delta.length), Buffer.from(bytes), deflateSync(delta)]);
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n >= 128 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return out;
}

interface Corrupt {
  name: string;
  pack: () => Promise<Buffer>;
  message: RegExp;
}

const BLOB = Buffer.from('hello, corrupt world\n');

const CORRUPT: Corrupt[] = [
  { name: 'truncated inside the header', pack: async () => (await realPack()).subarray(0, 7), message: /truncat|header|short|end/i },
  { name: 'truncated inside an object', pack: async () => (await realPack()).subarray(0, 200), message: /truncat|ended|end of|short/i },
  { name: 'truncated inside the trailer', pack: async () => { const p = await realPack(); return p.subarray(0, p.length - 7); }, message: /truncat|trailer|short/i },
  { name: 'a wrong trailer', pack: async () => { const p = Buffer.from(await realPack()); p[p.length - 1]! ^= 0xff; return p; }, message: /checksum|trailer|sha/i },
  { name: 'garbage after the trailer', pack: async () => Buffer.concat([await realPack(), Buffer.from('garbage')]), message: /garbage|after|trailing|junk/i },
  { name: 'not a pack', pack: async () => Buffer.from('PKCK\0\0\0\x02\0\0\0\x01' + 'x'.repeat(40)), message: /pack|signature|PACK/ },
  { name: 'bad zlib data', pack: async () => craftPack([Buffer.concat([entryHeader(3, 20), Buffer.from('this is not zlib at all, not even close')])]), message: /zlib|inflate|compress/i },
  { name: 'an object longer than its header says', pack: async () => craftPack([whole(3, BLOB, BLOB.length - 5)]), message: /size|bytes|inflat/i },
  { name: 'an object shorter than its header says', pack: async () => craftPack([whole(3, BLOB, BLOB.length + 5)]), message: /size|bytes|inflat/i },
  { name: 'an unknown object type', pack: async () => craftPack([whole(5, BLOB)]), message: /type/i },
  {
    name: 'a delta copying past its base',
    pack: async () => {
      const base = whole(3, BLOB);
      const delta = Buffer.from([...varint(BLOB.length), ...varint(10), 0x80 | 0x01 | 0x10, 15, 10]);
      return craftPack([base, ofsDelta(base.length, delta)]);
    },
    message: /delta|copy|bound/i,
  },
  {
    name: 'a delta whose base size is wrong',
    pack: async () => {
      const base = whole(3, BLOB);
      const delta = Buffer.from([...varint(BLOB.length + 1), ...varint(3), 3, 0x61, 0x62, 0x63]);
      return craftPack([base, ofsDelta(base.length, delta)]);
    },
    message: /delta|base|size/i,
  },
  {
    name: 'a delta base offset that is no object',
    pack: async () => {
      const base = whole(3, BLOB);
      const delta = Buffer.from([...varint(BLOB.length), ...varint(3), 3, 0x61, 0x62, 0x63]);
      return craftPack([base, ofsDelta(base.length - 2, delta)]);
    },
    message: /offset|base|object|delta/i,
  },
];

let real: Promise<Buffer> | null = null;
function realPack(): Promise<Buffer> {
  real ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpgit-ip-real-'));
    try {
      await makeRepo(join(dir, 'r.git'), { commits: 4 });
      return await packOf(join(dir, 'r.git'), ['--delta-base-offset']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return real;
}

test('git agrees that every corrupt pack below is corrupt', async (t) => {
  const dir = await tempDir(t);
  for (const c of CORRUPT) {
    const path = join(dir, `${c.name.replace(/\W+/g, '-')}.pack`);
    writeFileSync(path, await c.pack());
    const r = await run('git', ['index-pack', path]);
    t.not(r.code, 0, `git index-pack accepted "${c.name}"`);
  }
});

test(`${impl}: corrupt and truncated packs are PackErrors that leave no index and no partial pack`, async (t) => {
  const dir = await tempDir(t);
  for (const c of CORRUPT) {
    const bytes = await c.pack();
    const file = join(dir, 'file.pack');
    writeFileSync(file, bytes);
    const e1 = await t.throwsAsync(indexPackFile(file, { revPath: join(dir, 'file.rev') }), undefined, c.name);
    t.is((e1 as { code?: string }).code, 'MPGIT_BAD_PACK', `${c.name}: ${e1?.message}`);
    t.regex(e1!.message, c.message, c.name);
    t.true(readFileSync(file).equals(bytes), `${c.name}: the pack file is left as it was`);
    const e2 = await t.throwsAsync(indexStream(chunked(bytes), join(dir, 'streamed.pack'), { revPath: join(dir, 'streamed.rev') }), undefined, c.name);
    t.is((e2 as { code?: string }).code, 'MPGIT_BAD_PACK', `${c.name} (streamed): ${e2?.message}`);
    t.regex(e2!.message, c.message, c.name);
    t.deepEqual(readdirSync(dir), ['file.pack'], `${c.name}: nothing else left behind`);
  }
});

// The command line, end to end (bin/mpgit runs dist/: build with `npx tsc -p .` first).
for (const kind of CORES) {
  const env = { MPGIT_CORE: kind };
  test(`${kind}: mpgit index-pack matches git index-pack on the command line`, async (t) => {
    const dir = await tempDir(t);
    const src = join(dir, 'src.git');
    await makeRepo(src, { commits: 6, filesPerCommit: 5 });
    const pack = await packOf(src, ['--delta-base-offset']);
    const want = await gitIndex(join(dir, 'git'), pack);

    // A pack file: the .idx goes next to it, the checksum is printed.
    writeFileSync(join(dir, 'p.pack'), pack);
    const r1 = await mpgit(['index-pack', '--rev-index', join(dir, 'p.pack')], { env });
    t.is(r1.code, 0, r1.stderr);
    t.is(r1.stdout, `${want.checksum}\n`);
    t.true(readFileSync(join(dir, 'p.idx')).equals(want.idx));
    t.true(readFileSync(join(dir, 'p.rev')).equals(want.rev));
    t.is(statSync(join(dir, 'p.idx')).mode & 0o777, 0o444, 'read-only like git');

    // -o names the index.
    const r2 = await mpgit(['index-pack', '-o', join(dir, 'other.idx'), join(dir, 'p.pack')], { env });
    t.is(r2.code, 0, r2.stderr);
    t.true(readFileSync(join(dir, 'other.idx')).equals(want.idx));

    // --stdin inside a repository: objects/pack/pack-<checksum>.{pack,idx}, "pack\t<checksum>".
    const repo = join(dir, 'dst.git');
    await git(['init', '-q', '--bare', repo]);
    const r3 = await mpgit(['index-pack', '--stdin', '-v'], { cwd: repo, input: pack, env });
    t.is(r3.code, 0, r3.stderr);
    t.is(r3.stdout, `pack\t${want.checksum}\n`);
    t.regex(r3.stderr, /Receiving objects: 100% .*done\./);
    t.regex(r3.stderr, /Resolving deltas: 100% .*done\./);
    const packDir = join(repo, 'objects', 'pack');
    t.deepEqual(readdirSync(packDir).sort(), [`pack-${want.checksum}.idx`, `pack-${want.checksum}.pack`]);
    t.true(readFileSync(join(packDir, `pack-${want.checksum}.idx`)).equals(want.idx));
    await git(['fsck', '--no-dangling'], { cwd: repo });

    // --stdin with a pack name.
    const r4 = await mpgit(['index-pack', '--stdin', join(dir, 'named.pack')], { input: pack, env });
    t.is(r4.code, 0, r4.stderr);
    t.is(r4.stdout, `pack\t${want.checksum}\n`);
    t.true(readFileSync(join(dir, 'named.pack')).equals(pack));
    t.true(readFileSync(join(dir, 'named.idx')).equals(want.idx));

    // A corrupt pack on stdin: fatal, exit 128, nothing left in objects/pack.
    const bad = Buffer.from(pack);
    bad[bad.length - 3]! ^= 0x55;
    const bare = join(dir, 'bad.git');
    await git(['init', '-q', '--bare', bare]);
    const r5 = await mpgit(['index-pack', '--stdin'], { cwd: bare, input: bad, env });
    t.is(r5.code, 128);
    t.regex(r5.stderr, /^fatal: .*(checksum|SHA-1 mismatch)/m);
    t.deepEqual(readdirSync(join(bare, 'objects', 'pack')), []);
  });

  test(`${kind}: mpgit index-pack --stdin --fix-thin completes a thin pack from the repository like git`, async (t) => {
    const dir = await tempDir(t);
    const src = join(dir, 'src.git');
    await makeRepo(src, { commits: 6, filesPerCommit: 5 });
    const thin = await gitBytes(['pack-objects', '-q', '--thin', '--revs', '--stdout', '--delta-base-offset'], { cwd: src, input: Buffer.from('main\n^main~3\n') });
    const old = (await git(['rev-parse', 'main~3'], { cwd: src })).stdout.trim();
    const [gitDst, ourDst] = [join(dir, 'git.git'), join(dir, 'ours.git')];
    for (const d of [gitDst, ourDst]) {
      await git(['init', '-q', '--bare', d]);
      await git(['push', '-q', d, `${old}:refs/heads/main`], { cwd: src });
    }
    const g = (await gitBytes(['index-pack', '--stdin', '--fix-thin'], { cwd: gitDst, input: thin })).toString();
    const r = await mpgit(['index-pack', '--stdin', '--fix-thin'], { cwd: ourDst, input: thin, env });
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, g, 'same "pack\\t<checksum>" line');
    const sum = g.trim().split('\t')[1]!;
    for (const ext of ['.pack', '.idx']) {
      const name = `pack-${sum}${ext}`;
      t.true(readFileSync(join(ourDst, 'objects', 'pack', name)).equals(readFileSync(join(gitDst, 'objects', 'pack', name))), `${name} equals git's`);
    }
    await git(['update-ref', 'refs/heads/main', (await git(['rev-parse', 'main'], { cwd: src })).stdout.trim()], { cwd: ourDst });
    await git(['fsck', '--no-dangling'], { cwd: ourDst });

    // Outside a repository that has the bases, the thin pack cannot be completed.
    const empty = join(dir, 'empty.git');
    await git(['init', '-q', '--bare', empty]);
    const r2 = await mpgit(['index-pack', '--stdin', '--fix-thin'], { cwd: empty, input: thin, env });
    t.is(r2.code, 128);
    t.regex(r2.stderr, /unresolved delta/);
    t.deepEqual(readdirSync(join(empty, 'objects', 'pack')), []);
  });
}

test('mpgit index-pack usage errors: --fix-thin without --stdin, no pack', async (t) => {
  const r1 = await mpgit(['index-pack', '--fix-thin', 'x.pack']);
  t.is(r1.code, 129);
  t.regex(r1.stderr, /--fix-thin cannot be used without --stdin/);
  const r2 = await mpgit(['index-pack']);
  t.is(r2.code, 129);
  t.regex(r2.stderr, /needs a pack file/);
  const r3 = await mpgit(['index-pack', '/nonexistent/x.pack']);
  t.is(r3.code, 128);
  t.regex(r3.stderr, /cannot open packfile/);
});
