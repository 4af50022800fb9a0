// The offload v2 server on the wire, spoken to directly: the packfile-uris section with and
// without sideband-all, an inline pack that shares no object with the named pack, the answer
// cache, and bad requests (unknown arguments, unknown objects, hidden refs, broken pkt-lines)
// getting an ERR while the daemon goes on serving.

import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DELIM, FLUSH, pktLine, PktReader, pktText, type Pkt } from '../ts/pktline.js';
import { encodeRequest } from '../ts/protocol/request.js';
import { git, mpgit, run, runOk } from './helpers/proc.js';
import { startNginx } from './helpers/nginx.js';
import { bigRepo, mpgitDaemon, offloadDirs, offloadedRepo, type MpgitDaemon } from './helpers/offload.js';
import { readState } from '../ts/offload/state.js';

interface Conn {
  sock: net.Socket;
  reader: PktReader;
  send(b: Buffer): void;
  close(): void;
}

async function connect(d: MpgitDaemon, path: string): Promise<{ conn: Conn; caps: string[] }> {
  const sock = net.connect({ host: '127.0.0.1', port: d.port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => {});
  const reader = new PktReader(sock, { timeoutMs: 30_000, what: 'mpgit daemon' });
  sock.write(encodeRequest({ service: 'git-upload-pack', path, host: '127.0.0.1', extra: ['version=2'] }));
  const caps: string[] = [];
  for (;;) {
    const p = await reader.expect();
    if (p.kind === 'flush') break;
    caps.push(pktText(p));
  }
  return { conn: { sock, reader, send: (b) => sock.write(b), close: () => sock.destroy() }, caps };
}

function command(name: string, args: string[]): Buffer {
  return Buffer.concat([pktLine(`command=${name}`), pktLine('object-format=sha1'), DELIM, ...args.map((a) => pktLine(a)), FLUSH]);
}

/** Reads a fetch response: section lines (out of band 1 with sideband-all), then the pack. */
async function readFetch(conn: Conn, sidebandAll: boolean): Promise<{ sections: Map<string, string[]>; pack: Buffer; rawFirst: Buffer | null }> {
  const sections = new Map<string, string[]>();
  let current: string | null = null;
  let rawFirst: Buffer | null = null;
  const unwrap = (p: Pkt): string | null => {
    if (p.kind !== 'data') return null;
    rawFirst ??= p.data;
    if (!sidebandAll) return pktText(p);
    if (p.data[0] === 2) return null;
    if (p.data[0] !== 1) throw new Error(`expected band 1, got ${p.data[0]}`);
    const s = p.data.subarray(1).toString('utf8');
    return s.endsWith('\n') ? s.slice(0, -1) : s;
  };
  for (;;) {
    const p = await conn.reader.expect();
    if (p.kind === 'delim') {
      current = null;
      continue;
    }
    const line = unwrap(p);
    if (line === null) continue;
    if (line.startsWith('ERR ')) throw new Error(line);
    if (current === null) {
      current = line;
      sections.set(line, []);
      if (line === 'packfile') break;
      continue;
    }
    sections.get(current)!.push(line);
  }
  const chunks: Buffer[] = [];
  for (;;) {
    const p = await conn.reader.expect();
    if (p.kind === 'flush') break;
    if (p.kind !== 'data') throw new Error(`unexpected ${p.kind} in the pack stream`);
    if (p.data[0] === 1) chunks.push(p.data.subarray(1));
    else if (p.data[0] === 3) throw new Error(`remote error: ${p.data.subarray(1)}`);
  }
  return { sections, pack: Buffer.concat(chunks), rawFirst };
}

/** Object ids in a pack (indexed by git in a scratch repository). */
async function objectsOf(t: ExecutionContext, dir: string, name: string, pack: Buffer): Promise<Set<string>> {
  const repo = join(dir, `${name}.git`);
  await git(['init', '-q', '--bare', repo]);
  const file = join(repo, 'objects', 'pack', 'in.pack');
  writeFileSync(file, pack);
  const r = await run('git', ['index-pack', '--fix-thin', '--stdin'], { cwd: repo, input: pack });
  t.is(r.code, 0, `the inline pack indexes without anything else: ${r.stderr}`);
  const out = (await runOk('sh', ['-c', 'git verify-pack -v objects/pack/pack-*.idx'], { cwd: repo })).stdout;
  return new Set(out.split('\n').map((l) => l.split(' ')[0]!).filter((x) => /^[0-9a-f]{40}$/.test(x)));
}

async function setup(t: ExecutionContext) {
  const o = await offloadedRepo(t);
  await o.offload(['--base', 'main~1']);
  return { ...o, daemon: await mpgitDaemon(t, o.base) };
}

for (const sidebandAll of [false, true]) {
  test(`fetch with packfile-uris${sidebandAll ? ' and sideband-all' : ''}: URIs section, then an inline pack sharing nothing with the named pack`, async (t) => {
    const s = await setup(t);
    const { conn, caps } = await connect(s.daemon, '/repo.git');
    t.true(caps.some((c) => /^fetch=.*\bpackfile-uris\b/.test(c) && /\bsideband-all\b/.test(c)), caps.join('\n'));
    conn.send(command('fetch', ['ofs-delta', 'no-progress', ...(sidebandAll ? ['sideband-all'] : []), 'packfile-uris https,http', `want ${s.head}`, 'done']));
    const res = await readFetch(conn, sidebandAll);
    const state = (await readState(s.repo))!;
    const basePack = state.packs.find((p) => p.kind === 'base')!;
    if (basePack.kind !== 'base') return t.fail();
    t.deepEqual(res.sections.get('packfile-uris'), [`${basePack.hash} ${s.nginx.baseUrl}/${basePack.file}`]);
    t.is(res.rawFirst![0], sidebandAll ? 1 : 'p'.charCodeAt(0), 'section lines in band 1 exactly when asked');
    const inline = await objectsOf(t, s.work, 'inline', res.pack);
    const based = (await git(['rev-list', '--objects', 'main~1'], { cwd: s.repo })).stdout.split('\n').map((l) => l.slice(0, 40)).filter(Boolean);
    t.true(inline.size > 0);
    t.false(based.some((o) => inline.has(o)), 'no object of the base in the inline pack');
    const wanted = (await git(['rev-list', '--objects', 'main', '^main~1'], { cwd: s.repo })).stdout.split('\n').map((l) => l.slice(0, 40)).filter(Boolean);
    t.deepEqual([...inline].sort(), [...new Set(wanted)].sort(), 'exactly what the base lacks');
    conn.send(FLUSH);
    conn.close();
  });
}

test('blob mode: the inline pack holds no offloaded blob and indexes on its own; each blob pack is named once', async (t) => {
  const { base, pub, work } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  const head = await bigRepo(repo, { big: 8 });
  const nginx = await startNginx(t, pub);
  const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', `${nginx.baseUrl}/`, '--min-size', '100k']);
  t.is(r.code, 0, r.stderr);
  const daemon = await mpgitDaemon(t, base);
  const { conn } = await connect(daemon, '/repo.git');
  conn.send(command('fetch', ['ofs-delta', 'no-progress', 'sideband-all', 'packfile-uris http', `want ${head}`, 'done']));
  const res = await readFetch(conn, true);
  conn.close();
  const state = (await readState(repo))!;
  const blobPacks = state.packs.filter((p) => p.kind === 'blob');
  const named = res.sections.get('packfile-uris')!;
  t.is(named.length, blobPacks.length);
  t.is(new Set(named.map((l) => l.split(' ')[0])).size, named.length, 'each pack once');
  const offloaded = new Set(blobPacks.flatMap((p) => (p.kind === 'blob' ? p.blobs : [])));
  const inline = await objectsOf(t, work, 'inline', res.pack);
  t.true(inline.size > 0);
  t.false([...inline].some((o) => offloaded.has(o)), 'no offloaded blob inline');
});

test('the answer to a repeated clone comes from the cache: same URIs, same pack', async (t) => {
  const s = await setup(t);
  const fetchOnce = async () => {
    const { conn } = await connect(s.daemon, '/repo.git');
    conn.send(command('fetch', ['ofs-delta', 'sideband-all', 'packfile-uris http', `want ${s.head}`, 'done']));
    const r = await readFetch(conn, true);
    conn.close();
    return r;
  };
  const a = await fetchOnce();
  const b = await fetchOnce();
  t.deepEqual(b.sections.get('packfile-uris'), a.sections.get('packfile-uris'));
  t.deepEqual(b.pack, a.pack);
  await s.daemon.proc.waitFor(/cached answer/);
  // A client asking differently (no packfile URIs) is a different request.
  const { conn } = await connect(s.daemon, '/repo.git');
  conn.send(command('fetch', ['ofs-delta', `want ${s.head}`, 'done']));
  const c = await readFetch(conn, false);
  conn.close();
  t.false(c.sections.has('packfile-uris'));
  t.true(c.pack.length > a.pack.length, 'the whole history inline');
});

test('bad requests get an ERR naming the problem, and the daemon goes on serving', async (t) => {
  const s = await setup(t);
  const errOf = async (args: string[], cmd = 'fetch') => {
    const { conn } = await connect(s.daemon, '/repo.git');
    conn.send(command(cmd, args));
    const p = await conn.reader.expect();
    conn.close();
    return p.kind === 'data' ? pktText(p) : p.kind;
  };
  t.regex(await errOf(['frobnicate']), /^ERR unexpected line: 'frobnicate'/);
  t.regex(await errOf([`want ${'1'.repeat(40)}`, 'done']), /^ERR upload-pack: not our ref 1{40}/);
  t.regex(await errOf(['want not-an-id']), /^ERR .*expected to get object ID/);
  t.regex(await errOf([], 'no-such-command'), /^ERR invalid command 'no-such-command'/);
  t.regex(await errOf(['deepen 1', 'frobnicate']), /^ERR unexpected line/);

  // A commit only a hidden ref points at cannot be fetched, nor is the ref listed.
  const hidden = (await runOk('git', ['commit-tree', '-m', 'secret', 'main^{tree}'], { cwd: s.repo })).stdout.trim();
  await git(['update-ref', 'refs/hidden/secret', hidden], { cwd: s.repo });
  await git(['config', 'uploadpack.hideRefs', 'refs/hidden'], { cwd: s.repo });
  t.regex(await errOf([`want ${hidden}`, 'done']), new RegExp(`^ERR upload-pack: not our ref ${hidden}`));
  const ls = (await runOk('git', ['ls-remote', s.daemon.url('repo.git')])).stdout;
  t.notRegex(ls, /refs\/hidden/);

  // A broken pkt-line: the connection ends; the daemon is still there.
  const { conn } = await connect(s.daemon, '/repo.git');
  conn.send(Buffer.from('zzzz'));
  const p = await conn.reader.read().catch(() => null);
  t.true(p === null || (p.kind === 'data' && /^ERR /.test(pktText(p))));
  conn.close();
  const again = await run('git', ['ls-remote', s.daemon.url('repo.git')]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /refs\/heads\/main/);
});

test('a command sent in the same write as the request line is answered, not lost', async (t) => {
  const s = await setup(t);
  const sock = net.connect({ host: '127.0.0.1', port: s.daemon.port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  t.teardown(() => sock.destroy());
  const reader = new PktReader(sock, { timeoutMs: 30_000, what: 'mpgit daemon' });
  // One segment: the daemon reads the request line and finds ls-refs already behind it.
  sock.write(Buffer.concat([encodeRequest({ service: 'git-upload-pack', path: '/repo.git', host: '127.0.0.1', extra: ['version=2'] }), command('ls-refs', ['symrefs'])]));
  const lines: string[] = [];
  let flushes = 0;
  while (flushes < 2) {
    const p = await reader.expect();
    if (p.kind === 'flush') flushes++;
    else if (p.kind === 'data' && flushes === 1) lines.push(pktText(p));
  }
  t.true(lines.includes(`${s.head} refs/heads/main`), lines.join('\n'));
});
