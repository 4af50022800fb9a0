// The packfile-URI downloader against a real nginx: parallel, verified, resumed with Range,
// retried on 503, cut connections and stalls; wrong bytes, 404s and non-packs are rejected and
// leave nothing behind.

import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadPacks, downloadPaths, type DownloadProgress, type RetryEvent } from '../ts/client/download.js';
import { git, runOk, tempDir } from './helpers/proc.js';
import { faultProxy, startNginx, type Fault } from './helpers/nginx.js';

interface MadePack {
  hash: string;
  file: string;
  size: number;
}

/** A pack of one commit with `blobs` incompressible blobs of `blobSize` bytes, in `dir`. */
/**
 * A pack of one `blobSize` blob served by nginx through a proxy that commits `fault`, the job
 * that downloads it, an empty download directory, and a list for the retries.
 */
async function faultyPack(t: ExecutionContext, blobSize: number, fault: Fault) {
  const root = await tempDir(t);
  const a = await makePack(t, root, 'a.pack', 1, blobSize);
  const nginx = await startNginx(t, root);
  const proxy = await faultProxy(t, nginx.port, [fault]);
  const retries: RetryEvent[] = [];
  return { a, nginx, proxy, job: { hash: a.hash, uri: `${proxy.baseUrl}/a.pack` }, dir: await tempDir(t), retries };
}

async function makePack(t: import('ava').ExecutionContext, dir: string, name: string, blobs: number, blobSize: number): Promise<MadePack> {
  const repo = await tempDir(t);
  await git(['init', '-q', '--bare', repo]);
  const stream = 'commit refs/heads/main\ncommitter T <t@example.com> 1700000000 +0000\ndata 2\nc\n';
  const parts: Buffer[] = [];
  for (let i = 0; i < blobs; i++) {
    const body = randomBytes(blobSize);
    parts.push(Buffer.from(`M 100644 inline f${i}\ndata ${body.length}\n`), body, Buffer.from('\n'));
  }
  const input = Buffer.concat([Buffer.from(stream), ...parts, Buffer.from('\n')]);
  await runOk('git', ['fast-import', '--quiet'], { cwd: repo, input });
  const file = join(dir, name);
  await runOk('sh', ['-c', `echo refs/heads/main | git pack-objects --revs --stdout > '${file}'`], { cwd: repo });
  const bytes = await readFile(file);
  const hash = bytes.subarray(bytes.length - 20).toString('hex');
  t.is(createHash('sha1').update(bytes.subarray(0, bytes.length - 20)).digest('hex'), hash);
  return { hash, file, size: bytes.length };
}

test('downloads several packs in parallel, verifies them and reports progress', async (t) => {
  const root = await tempDir(t);
  const packs = await Promise.all([0, 1, 2, 3].map((i) => makePack(t, root, `p${i}.pack`, 2, 300_000 + i * 1000)));
  const nginx = await startNginx(t, root);
  const dir = await tempDir(t);
  const seen: DownloadProgress[] = [];
  let maxActive = 0;
  const got = await downloadPacks(
    packs.map((p, i) => ({ hash: p.hash, uri: `${nginx.baseUrl}/p${i}.pack` })),
    {
      dir,
      concurrency: 2,
      onProgress: (p) => {
        seen.push(p);
        maxActive = Math.max(maxActive, p.uris.filter((u) => u.state === 'downloading').length);
      },
    },
  );
  t.is(got.length, 4);
  for (const [i, g] of got.entries()) {
    t.is(g.hash, packs[i]!.hash);
    t.is(g.size, packs[i]!.size);
    t.is(g.fetched, packs[i]!.size);
    t.deepEqual(await readFile(g.path), await readFile(packs[i]!.file));
  }
  t.true(maxActive <= 2, 'concurrency bound respected');
  t.true(maxActive >= 2, 'downloads overlapped');
  const last = seen[seen.length - 1]!;
  t.is(last.done, 4);
  t.is(last.received, packs.reduce((a, p) => a + p.size, 0));
  t.is(last.total, last.received);
  // Only the verified packs remain: no partial files, no state files.
  t.deepEqual((await readdir(dir)).sort(), packs.map((p) => `${p.hash}.pack`).sort());

  // A second run finds them finished and fetches nothing.
  const before = (await nginx.accessLog()).length;
  const again = await downloadPacks(packs.map((p, i) => ({ hash: p.hash, uri: `${nginx.baseUrl}/p${i}.pack` })), { dir });
  t.true(again.every((g) => g.fetched === 0 && g.reused === g.size));
  t.is((await nginx.accessLog()).length, before);
});

test('a pack whose bytes do not match the named hash is rejected and nothing is kept', async (t) => {
  const root = await tempDir(t);
  const a = await makePack(t, root, 'a.pack', 1, 50_000);
  const b = await makePack(t, root, 'b.pack', 1, 50_000);
  const nginx = await startNginx(t, root);
  const dir = await tempDir(t);
  // The URI serves pack b, a valid pack, under the name of a.
  const err = await t.throwsAsync(downloadPacks([{ hash: a.hash, uri: `${nginx.baseUrl}/b.pack` }], { dir }));
  t.is((err as { code?: string }).code, 'MPGIT_URI_DOWNLOAD');
  t.regex(err!.message, new RegExp(`does not match expected hash ${a.hash}`));
  t.regex(err!.message, /b\.pack/);
  t.deepEqual(await readdir(dir), []);
  void b;

  // A flipped byte inside the pack: the trailer no longer matches the content.
  const bad = await readFile(a.file);
  bad[200] = bad[200]! ^ 0xff;
  await writeFile(join(root, 'corrupt.pack'), bad);
  const err2 = await t.throwsAsync(downloadPacks([{ hash: a.hash, uri: `${nginx.baseUrl}/corrupt.pack` }], { dir }));
  t.regex(err2!.message, /is corrupt/);
  t.deepEqual(await readdir(dir), []);
});

test('a 404 fails at once with the URI named; an HTML page is not a pack', async (t) => {
  const root = await tempDir(t);
  const a = await makePack(t, root, 'a.pack', 1, 10_000);
  await writeFile(join(root, 'page.html'), '<html><body>Welcome</body></html>\n'.repeat(10));
  const nginx = await startNginx(t, root);
  const dir = await tempDir(t);
  const err = await t.throwsAsync(downloadPacks([{ hash: a.hash, uri: `${nginx.baseUrl}/missing.pack` }], { dir, backoff: { baseMs: 10, maxMs: 10 } }));
  t.regex(err!.message, /HTTP 404/);
  t.regex(err!.message, /missing\.pack/);
  t.is((await nginx.accessLog()).length, 1, 'no retries on 404');
  const err2 = await t.throwsAsync(downloadPacks([{ hash: a.hash, uri: `${nginx.baseUrl}/page.html` }], { dir }));
  t.regex(err2!.message, /not a pack/);
  t.deepEqual(await readdir(dir), []);
  // Schemes the client did not ask for are refused before any request.
  await t.throwsAsync(downloadPacks([{ hash: a.hash, uri: 'ftp://example.com/a.pack' }], { dir }), { message: /scheme ftp/ });
});

test('503 answers are retried with backoff until the server recovers', async (t) => {
  const root = await tempDir(t);
  const a = await makePack(t, root, 'a.pack', 1, 100_000);
  const nginx = await startNginx(t, root);
  await nginx.setUnavailable(true);
  const retries: RetryEvent[] = [];
  const dir = await tempDir(t);
  const run = downloadPacks([{ hash: a.hash, uri: `${nginx.baseUrl}/a.pack` }], {
    dir,
    backoff: { baseMs: 100, maxMs: 400 },
    onRetry: (e) => retries.push(e),
  });
  // Recover once the server has refused twice.
  for (let i = 0; i < 200 && (await nginx.accessLog()).filter((e) => e.status === 503).length < 2; i++) await new Promise((r) => setTimeout(r, 25));
  await nginx.setUnavailable(false);
  const [got] = await run;
  t.is(got!.size, a.size);
  const log = await nginx.accessLog();
  t.true(log.filter((e) => e.status === 503).length >= 2);
  t.is(log[log.length - 1]!.status, 200);
  t.true(retries.length >= 2);
  t.regex(retries[0]!.reason, /HTTP 503/);
});

test('a server that keeps failing gives a clear error naming the URI after the retries', async (t) => {
  const root = await tempDir(t);
  const a = await makePack(t, root, 'a.pack', 1, 10_000);
  const nginx = await startNginx(t, root);
  await nginx.setUnavailable(true);
  const dir = await tempDir(t);
  const err = await t.throwsAsync(downloadPacks([{ hash: a.hash, uri: `${nginx.baseUrl}/a.pack` }], { dir, retries: 2, backoff: { baseMs: 20, maxMs: 40 } }));
  t.regex(err!.message, /giving up on pack .* after 3 attempts: HTTP 503/);
  t.regex(err!.message, new RegExp(`${nginx.baseUrl}/a\\.pack`));
  t.is((await nginx.accessLog()).length, 3);
});

test('a cut connection resumes with a Range request for the remainder only', async (t) => {
  const { a, nginx, job, dir, retries } = await faultyPack(t, 2_000_000, { kind: 'cut', afterBytes: 700_000 });
  const [got] = await downloadPacks([job], { dir, backoff: { baseMs: 50, maxMs: 50 }, onRetry: (e) => retries.push(e) });
  t.deepEqual(await readFile(got!.path), await readFile(a.file));
  t.is(retries.length, 1);
  const log = await nginx.accessLog();
  t.is(log.length, 2);
  // nginx logs a request when it ends: the cut one may come second.
  const resumed = log.find((e) => e.range !== '');
  const m = /^bytes=(\d+)-$/.exec(resumed?.range ?? '');
  t.truthy(m, `a request with a Range header: ${JSON.stringify(log)}`);
  const from = Number(m![1]);
  t.true(from > 0 && from <= 700_000);
  t.is(resumed!.status, 206);
  t.is(resumed!.bytes, a.size - from, 'only the remainder was sent again');
});

test('a stalled body times out and is resumed', async (t) => {
  const { a, proxy, job, dir, retries } = await faultyPack(t, 1_000_000, { kind: 'stall', afterBytes: 300_000 });
  const started = Date.now();
  const [got] = await downloadPacks([job], {
    dir,
    stallTimeoutMs: 800,
    backoff: { baseMs: 50, maxMs: 50 },
    onRetry: (e) => retries.push(e),
  });
  t.is(got!.size, a.size);
  t.deepEqual(await readFile(got!.path), await readFile(a.file));
  t.is(retries.length, 1);
  t.regex(retries[0]!.reason, /stalled/);
  t.true(Date.now() - started >= 800);
  t.is(proxy.connections(), 2);
});

test('an interrupted download continues in a later run from the bytes on disk', async (t) => {
  const root = await tempDir(t);
  // nginx sends a second's worth at once, then keeps to the rate: 1 MB, then 5 MB over 5 s,
  // time enough to interrupt in the middle even on a loaded machine.
  const a = await makePack(t, root, 'a.pack', 1, 6_000_000);
  const nginx = await startNginx(t, root, { limitRate: 1_000_000 });
  const dir = await tempDir(t);
  const uri = `${nginx.baseUrl}/a.pack`;
  const stop = new AbortController();
  const first = downloadPacks([{ hash: a.hash, uri }], {
    dir,
    signal: stop.signal,
    onProgress: (p) => {
      if (p.received > 1_500_000) stop.abort(new Error('interrupted by the test'));
    },
  });
  await t.throwsAsync(first, { message: /interrupted by the test/ });
  const partial = (await stat(downloadPaths(dir, a.hash).part)).size;
  t.true(partial > 1_000_000 && partial < a.size);
  const [got] = await downloadPacks([{ hash: a.hash, uri }], { dir });
  t.is(got!.reused, partial);
  t.is(got!.fetched, a.size - partial);
  t.deepEqual(await readFile(got!.path), await readFile(a.file));
  const log = await nginx.accessLog();
  const last = log[log.length - 1]!;
  t.is(last.range, `bytes=${partial}-`);
  t.is(last.bytes, a.size - partial);

  // The partial bytes no longer belonging to the file behind the URI (it changed): If-Range makes
  // the server send it whole, and the result is the new file, verified.
  const b = await makePack(t, root, 'b.pack', 1, 200_000);
  const dir2 = await tempDir(t);
  await copyFile(a.file, join(root, 'moving.pack'));
  const stop2 = new AbortController();
  await t.throwsAsync(
    downloadPacks([{ hash: b.hash, uri: `${nginx.baseUrl}/moving.pack` }], {
      dir: dir2,
      signal: stop2.signal,
      onProgress: (p) => p.received > 100_000 && stop2.abort(new Error('stop')),
    }),
  );
  await copyFile(b.file, join(root, 'moving.pack'));
  const [got2] = await downloadPacks([{ hash: b.hash, uri: `${nginx.baseUrl}/moving.pack` }], { dir: dir2 });
  t.deepEqual(await readFile(got2!.path), await readFile(b.file));
});
