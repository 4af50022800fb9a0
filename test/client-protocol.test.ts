// The client's pieces on their own: URLs, refspecs, config, the v0 and v2 ref listings (from
// real pkt-lines), side-band progress relay, progress lines, tree and delta checks, the
// object database read against git cat-file, and the index as git ls-files reads it.

import test from 'ava';
import { PassThrough } from 'node:stream';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { FLUSH, PktReader, pkt, pktLine } from '../ts/pktline.js';
import { parseGitUrl, defaultCloneDir, hostHeader } from '../ts/client/url.js';
import { parseRefspec, mapRef, refPrefix } from '../ts/client/refspec.js';
import { GitConfig, formatConfig } from '../ts/repo/config.js';
import { readHandshake } from '../ts/protocol/handshake.js';
import { lsRefs } from '../ts/protocol/v2.js';
import { RemoteProgress, sidebandData } from '../ts/protocol/sideband.js';
import { encodeV2Advertisement } from '../ts/protocol/capabilities.js';
import { humanBytes, Progress } from '../ts/progress.js';
import { parseTree } from '../ts/repo/objects.js';
import { ObjectDb } from '../ts/repo/odb.js';
import { makeRepo } from './helpers/repo.js';
import { git, runOk, tempDir } from './helpers/proc.js';
import { planClone } from '../ts/client/clone-refs.js';

test('git:// URLs: ports, IPv6 literals, user paths; other schemes name what is supported', (t) => {
  t.like(parseGitUrl('git://example.com/repo.git'), { host: 'example.com', port: 9418, path: '/repo.git' });
  t.like(parseGitUrl('git://10.0.0.1:7000/a/b'), { host: '10.0.0.1', port: 7000, path: '/a/b' });
  t.like(parseGitUrl('git://[::1]:9000/r.git'), { host: '::1', port: 9000, path: '/r.git' });
  t.like(parseGitUrl('git://[fe80::1%eth0]/r'), { host: 'fe80::1%eth0', port: 9418 });
  t.like(parseGitUrl('git://host/~alice/r.git'), { path: '~alice/r.git' });
  t.deepEqual(hostHeader(parseGitUrl('git://[::1]:9000/r')), { host: '[::1]', port: 9000 });
  t.deepEqual(hostHeader(parseGitUrl('git://h/r')), { host: 'h' });
  t.throws(() => parseGitUrl('https://github.com/x/y.git'), { code: 'MPGIT_URL', message: /unsupported URL scheme "https".*git:\/\/host\[:port\]\/path/ });
  t.throws(() => parseGitUrl('ssh://h/x'), { message: /"ssh"/ });
  t.throws(() => parseGitUrl('user@host:repo.git'), { message: /scp-style/ });
  t.throws(() => parseGitUrl('/local/path'), { message: /local path/ });
  t.throws(() => parseGitUrl('git://host:99999/x'), { message: /bad port/ });
  t.throws(() => parseGitUrl('git://host'), { message: /malformed/ });
  t.is(defaultCloneDir(parseGitUrl('git://h/a/b/proj.git'), false), 'proj');
  t.is(defaultCloneDir(parseGitUrl('git://h/a/proj/.git/'), false), 'proj');
  t.is(defaultCloneDir(parseGitUrl('git://h/proj'), true), 'proj.git');
});

test('refspecs map remote refs to local ones', (t) => {
  const s = parseRefspec('+refs/heads/*:refs/remotes/origin/*');
  t.deepEqual(s, { force: true, src: 'refs/heads/*', dst: 'refs/remotes/origin/*' });
  t.is(mapRef(s, 'refs/heads/feature/x'), 'refs/remotes/origin/feature/x');
  t.is(mapRef(s, 'refs/tags/v1'), undefined);
  t.is(refPrefix(s), 'refs/heads/');
  const one = parseRefspec('main:refs/remotes/o/main');
  t.is(mapRef(one, 'refs/heads/main'), 'refs/remotes/o/main');
  t.is(mapRef(one, 'refs/heads/mainline'), undefined);
  t.is(mapRef(parseRefspec('refs/heads/x'), 'refs/heads/x'), null);
  t.throws(() => parseRefspec('refs/heads/*:refs/remotes/x'), { message: /malformed refspec/ });
  t.throws(() => parseRefspec('^refs/heads/x'), { message: /negative refspec/ });
});

test('config: sections, subsections, quoting, comments, continuation; written configs read back by git', async (t) => {
  const c = GitConfig.parse(
    '# comment\n[core]\n\tBare = false\n[remote "Origin"]\n\turl = "git://h/x y.git" ; trailing\n\tfetch = +refs/heads/*:refs/remotes/Origin/*\n\tfetch = +refs/tags/*:refs/tags/*\n[branch "main"]\n\tmerge = refs/heads/\\\nmain\n[Section.Sub]\n\tflag\n',
  );
  t.is(c.get('core.bare'), 'false');
  t.is(c.get('remote.Origin.url'), 'git://h/x y.git');
  t.is(c.get('remote.origin.url'), undefined, 'subsections are case-sensitive');
  t.deepEqual(c.getAll('REMOTE.Origin.FETCH'), ['+refs/heads/*:refs/remotes/Origin/*', '+refs/tags/*:refs/tags/*']);
  t.is(c.get('branch.main.merge'), 'refs/heads/main');
  t.is(c.get('section.sub.flag'), 'true');
  t.throws(() => GitConfig.parse('[core\nx=1'), { message: /bad section header/ });
  const dir = await tempDir(t);
  const text = formatConfig([['remote', 'we"ird', [['url', ' spaced # value ']]]]);
  writeFileSync(join(dir, 'cfg'), text);
  t.is((await git(['config', '-f', join(dir, 'cfg'), 'remote.we"ird.url'])).stdout, ' spaced # value \n');
  t.is(GitConfig.parse(text).get('remote.we"ird.url'), ' spaced # value ');
});

function wire(bytes: Buffer[]) {
  const s = new PassThrough();
  for (const b of bytes) s.write(b);
  const sent: Buffer[] = [];
  return { reader: new PktReader(s, { timeoutMs: 2000 }), send: async (d: Buffer) => void sent.push(d), sent };
}

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

test('v0 advertisement: refs, peeled tags, symrefs, capabilities; an empty repository; ERR', async (t) => {
  const w = wire([
    pktLine(`${A} HEAD\0multi_ack side-band-64k ofs-delta symref=HEAD:refs/heads/main agent=git/2.39.5`),
    pktLine(`${A} refs/heads/main`),
    pktLine(`${B} refs/tags/v1`),
    pktLine(`${C} refs/tags/v1^{}`),
    FLUSH,
  ]);
  const h = await readHandshake(w.reader);
  if (h.version !== 0) return t.fail('expected v0');
  t.deepEqual(h.advertisement.refs, [
    { name: 'HEAD', oid: A, symref: 'refs/heads/main' },
    { name: 'refs/heads/main', oid: A },
    { name: 'refs/tags/v1', oid: B, peeled: C },
  ]);
  t.is(h.advertisement.caps.get('agent'), 'git/2.39.5');
  const empty = await readHandshake(wire([pktLine(`${'0'.repeat(40)} capabilities^{}\0multi_ack agent=x`), FLUSH]).reader);
  t.true(empty.version === 0 && empty.advertisement.refs.length === 0);
  await t.throwsAsync(readHandshake(wire([pktLine('ERR access denied')]).reader), { code: 'MPGIT_REMOTE', message: /remote error: access denied/ });
  await t.throwsAsync(readHandshake(wire([pktLine(`${A} refs/heads/../../../etc/passwd`), FLUSH]).reader), { message: /invalid ref name/ });
  const s = new PassThrough();
  s.end();
  await t.throwsAsync(readHandshake(new PktReader(s)), { message: /closed the connection without answering/ });
});

test('v2: capability advertisement, then ls-refs with unborn, symrefs and peeled tags', async (t) => {
  const w = wire([
    encodeV2Advertisement({ lsRefs: ['unborn'], fetch: ['shallow'] }),
    pktLine(`unborn HEAD symref-target:refs/heads/trunk`),
    pktLine(`${A} refs/heads/main`),
    pktLine(`${B} refs/tags/v1 peeled:${C}`),
    FLUSH,
  ]);
  const h = await readHandshake(w.reader);
  if (h.version !== 2) return t.fail('expected v2');
  t.true(h.caps.has('fetch'));
  const refs = await lsRefs(w, h.caps, { prefixes: ['HEAD', 'refs/heads/', 'refs/tags/'] });
  t.deepEqual(refs, [
    { name: 'HEAD', oid: null, symref: 'refs/heads/trunk' },
    { name: 'refs/heads/main', oid: A },
    { name: 'refs/tags/v1', oid: B, peeled: C },
  ]);
  const req = Buffer.concat(w.sent).toString();
  t.regex(req, /command=ls-refs\n/);
  t.regex(req, /0001/);
  t.regex(req, /unborn\n/);
  t.regex(req, /ref-prefix refs\/tags\/\n/);
  t.true(req.endsWith('0000'));
  const plan = planClone(refs, undefined, { singleBranch: false, tags: true, mirror: false, remote: 'origin' });
  t.is(plan.headRef, 'refs/heads/trunk');
  t.deepEqual(plan.wants.sort(), [A, B]);
});

test('side-band: data passes through, progress is relayed, band 3 is a remote error', async (t) => {
  const band = (n: number, text: string | Buffer) => pkt(Buffer.concat([Buffer.from([n]), Buffer.from(text)]));
  const w = wire([band(1, 'PACK'), band(2, 'Counting: 50%\rCounting: 100%\nTot'), band(1, Buffer.alloc(0)), band(1, 'DATA'), band(2, 'al 3\n'), FLUSH]);
  const out: string[] = [];
  const relay = new RemoteProgress((s) => out.push(s), false);
  const data: Buffer[] = [];
  for await (const c of sidebandData(w.reader, (c) => relay.push(c))) data.push(c);
  t.is(Buffer.concat(data).toString(), 'PACKDATA');
  t.deepEqual(out, ['remote: Counting: 50%\r', 'remote: Counting: 100%\n', 'remote: Total 3\n']);
  const tty: string[] = [];
  new RemoteProgress((s) => tty.push(s), true).push(Buffer.from('x\r'));
  t.deepEqual(tty, ['remote: x\x1b[K\r']);
  const bad = wire([band(1, 'PA'), band(3, 'pack-objects died')]);
  await t.throwsAsync(async () => {
    for await (const _ of sidebandData(bad.reader, () => {})) void _;
  }, { code: 'MPGIT_REMOTE', message: /pack-objects died/ });
});

test('progress lines look like git\'s', (t) => {
  t.is(humanBytes(512), '512 bytes');
  t.is(humanBytes(1.2 * 1024 * 1024), '1.20 MiB');
  t.is(humanBytes(3 * 1024 ** 3), '3.00 GiB');
  const out: string[] = [];
  const p = new Progress({ write: (s) => out.push(s), tty: false }, 'Receiving objects', 846, { throughput: true });
  p.update(381, 1.2 * 1024 * 1024);
  p.done(846, 2 * 1024 * 1024);
  t.regex(out[0]!, /^Receiving objects:  45% \(381\/846\), 1\.20 MiB\r$/);
  t.regex(out[out.length - 1]!, /^Receiving objects: 100% \(846\/846\), 2\.00 MiB( \| [\d.]+ \w+\/s)?, done\.\n$/);
});

test('trees with unsafe names are refused', (t) => {
  const entry = (mode: string, name: string) => Buffer.concat([Buffer.from(`${mode} ${name}\0`), Buffer.alloc(20, 1)]);
  t.is(parseTree(entry('100644', 'ok.txt'))[0]!.name, 'ok.txt');
  for (const name of ['..', '.', '.git', '.GIT', 'a/b']) t.throws(() => parseTree(entry('100644', name)), { code: 'MPGIT_BAD_PACK' }, name);
  t.throws(() => parseTree(Buffer.from('100644 trunc')), { message: /malformed/ });
});

test('the object database reads what git cat-file reads: packed, deltified and loose objects', async (t) => {
  const dir = await tempDir(t);
  const repo = join(dir, 'r.git');
  await makeRepo(repo, { commits: 6 });
  await runOk('git', ['repack', '-adq', '--depth=10'], { cwd: repo });
  const packs = (await git(['count-objects', '-v'], { cwd: repo })).stdout;
  t.regex(packs, /packs: 1/);
  const verify = (await runOk('sh', ['-c', 'git verify-pack -v objects/pack/*.idx'], { cwd: repo })).stdout;
  t.regex(verify, /chain length = 1: \d+ objects/, 'the pack has deltas to resolve');
  const loose = (await runOk('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: 'a loose blob\n' })).stdout.trim();
  // Every object, as git cat-file --batch prints it: "<oid> <type> <size>\n<data>\n".
  const batch = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch-all-objects', '--batch'], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`cat-file exited ${code}`))));
  });
  const all: string[] = [];
  const db = await ObjectDb.open(repo);
  try {
    for (let at = 0; at < batch.length; ) {
      const nl = batch.indexOf(10, at);
      const [oid, type, size] = batch.toString('latin1', at, nl).split(' ') as [string, string, string];
      const data = batch.subarray(nl + 1, nl + 1 + Number(size));
      at = nl + 1 + Number(size) + 1;
      all.push(oid);
      const obj = await db.read(oid);
      t.truthy(obj, oid);
      t.is(obj!.type as string, type);
      t.true(obj!.data.equals(data), `${type} ${oid}`);
    }
    t.true(all.length > 50);
    t.true(all.includes(loose));
    t.true(await db.has(loose));
    t.false(await db.has('0'.repeat(40)));
    t.is(await db.read('f'.repeat(40)), null);
  } finally {
    db.close();
  }
});
