// What a mirror operator runs the daemon with: the metrics move as transfers do (and /healthz
// answers); SIGHUP re-reads --config during a clone without harming it, applies what it can and
// names what needs a restart; SIGUSR1 reopens the log file and never opens node's inspector;
// one access line per transfer without --verbose, with the same fields in JSON.

import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, git, MPGIT, run, start, tempDir } from './helpers/proc.js';
import { makeBulkRepo, makeRepo } from './helpers/repo.js';
import { READY_RE, startDaemon } from './helpers/daemon.js';

/** One sample of a metric (with its labels as written), or 0 when absent. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

test('metrics move as the transfers do; /healthz answers', async (t) => {
  const base = await tempDir(t);
  await makeRepo(join(base, 'r.git'), { commits: 5 });
  const mport = await freePort();
  const d = await startDaemon(t, ['--base-path', base, '--export-all', `--metrics-listen=127.0.0.1:${mport}`]);
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${mport}${path}`);
    return { status: r.status, text: await r.text() };
  };
  const health = await get('/healthz');
  t.is(health.status, 200);
  t.regex(health.text, /^ok/);
  const before = (await get('/metrics')).text;
  t.is(sample(before, 'mpgit_connections_current'), 0);
  t.is(sample(before, 'mpgit_pack_cache_misses_total'), 0);

  const work = await tempDir(t);
  await git(['clone', '-q', '--bare', d.url('r.git'), join(work, 'a')]);
  await git(['clone', '-q', '--bare', d.url('r.git'), join(work, 'b')]);
  await git(['-c', 'protocol.version=0', 'clone', '-q', '--bare', d.url('r.git'), join(work, 'c')]);
  const bad = await run('git', ['ls-remote', d.url('nope.git')]);
  t.not(bad.code, 0);
  // The last connection's record lands just after the client sees its end.
  await new Promise((r) => setTimeout(r, 300));
  const m = (await get('/metrics')).text;
  t.is(sample(m, 'mpgit_connections_total{service="upload-pack",result="ok"}'), 3);
  t.is(sample(m, 'mpgit_connections_total{service="upload-pack",result="refused"}'), 1);
  t.is(sample(m, 'mpgit_refusals_total{reason="no such repository"}'), 1, m.split('\n').filter((l) => l.includes('refusals')).join('\n'));
  t.is(sample(m, 'mpgit_upload_pack_exits_total{code="0"}'), 3);
  t.is(sample(m, 'mpgit_connections_transport_total{transport="tcp"}'), 4);
  t.is(sample(m, 'mpgit_transfer_duration_seconds_count{service="upload-pack"}'), 3);
  t.true(sample(m, 'mpgit_sent_bytes_total{service="upload-pack"}') > 3 * 1000);
  t.true(sample(m, 'mpgit_received_bytes_total{service="upload-pack"}') > 0);
  t.is(sample(m, 'mpgit_pack_cache_misses_total'), 1);
  t.is(sample(m, 'mpgit_pack_cache_hits_total'), 2);
  t.true(sample(m, 'mpgit_pack_cache_served_bytes_total') > 0);
  t.true(sample(m, 'mpgit_pack_cache_stored_bytes') > 0);
  t.is(sample(m, 'mpgit_connections_current'), 0);
  t.is(sample(m, 'mpgit_packfile_uris_total'), 0);
  t.regex(m, /^# TYPE mpgit_transfer_duration_seconds histogram$/m);
  t.is((await get('/nothing')).status, 404);
});

test('SIGHUP during a clone: the clone completes, live settings change, a listen change is named', async (t) => {
  const base = await tempDir(t);
  await makeBulkRepo(join(base, 'bulk.git'), 30);
  const dir = await tempDir(t);
  const conf = join(dir, 'daemon.json');
  await writeFile(conf, JSON.stringify({ basePath: base, exportAll: true, maxConnections: 32 }));
  const d = await startDaemon(t, [`--config=${conf}`, `--cache-dir=${join(dir, 'cache')}`]);
  const work = await tempDir(t);
  const clone = spawn('git', ['clone', '-q', '--bare', d.url('bulk.git'), join(work, 'c')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  clone.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const cloned = new Promise<number | null>((r) => clone.on('exit', (code) => r(code)));
  await d.proc.waitFor(/Serving '.*bulk\.git'/);
  await writeFile(conf, JSON.stringify({ basePath: base, exportAll: true, maxConnections: 7, mptcp: true }));
  d.proc.kill('SIGHUP');
  await d.proc.waitFor(/config reloaded/);
  t.is(await cloned, 0, err);
  await git(['fsck', '--no-dangling'], { cwd: join(work, 'c') });
  const out = d.proc.output();
  t.regex(out, /Received SIGHUP: config reloaded; changed: maxConnections 32 -> 7/);
  t.regex(out, /Received SIGHUP: mptcp changed in the config file: these need a restart and were not applied/);
  // Still serving, at the old address, with the new limit in force.
  await git(['ls-remote', d.url('bulk.git')]);
  // A broken file: the old settings stay.
  await writeFile(conf, '{"maxConnections": "many"');
  d.proc.kill('SIGHUP');
  await d.proc.waitFor(/config not reloaded, still serving with the old settings: config file .* is not valid JSON/);
  await git(['ls-remote', d.url('bulk.git')]);
  t.is(d.proc.child.exitCode, null);
});

test('SIGUSR1 reopens the log file and never opens the inspector; access lines without --verbose, text and JSON', async (t) => {
  const base = await tempDir(t);
  await makeRepo(join(base, 'r.git'));
  const dir = await tempDir(t);
  const logFile = join(dir, 'daemon.log');
  const port = await freePort();
  const p = start(t, process.execPath, [MPGIT, 'daemon', '--base-path', base, '--export-all', `--port=${port}`, '--listen=127.0.0.1', `--cache-dir=${join(dir, 'cache')}`, `--log-file=${logFile}`, '--log-format=json']);
  const inLog = async (re: RegExp) => {
    const deadline = Date.now() + 30_000;
    while (!re.test(await readFile(logFile, 'utf8').catch(() => ''))) {
      if (Date.now() > deadline) throw new Error(`${re} not in the log; output: ${p.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await inLog(READY_RE);
  const work = await tempDir(t);
  await git(['clone', '-q', `git://127.0.0.1:${port}/r.git`, join(work, 'a')]);
  // The access line follows the client's end by a few ms (the last bytes are counted first).
  await inLog(/"event":"access"/);
  await rename(logFile, `${logFile}.1`);
  process.kill(p.child.pid!, 'SIGUSR1');
  await new Promise((r) => setTimeout(r, 500));
  await git(['clone', '-q', `git://127.0.0.1:${port}/r.git`, join(work, 'b')]);
  await inLog(/"event":"access"/);
  const old = (await readFile(`${logFile}.1`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const cur = (await readFile(logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const access = (xs: { event: string }[]) => xs.filter((x) => x.event === 'access');
  t.is(access(old).length, 1, JSON.stringify(old) + JSON.stringify(cur));
  t.is(access(cur).length, 1);
  t.true(cur.some((x) => x.event === 'reopen' && x.msg === 'Received SIGUSR1: log file reopened'));
  const a = access(cur)[0] as Record<string, unknown>;
  for (const k of ['service', 'repo', 'client', 'exitCode', 'bytesSent', 'bytesReceived', 'durationMs', 'mptcp', 'subflows', 'cache']) t.true(k in a, k);
  t.is(a.cache, 'hit');
  t.is(a.service, 'upload-pack');
  t.false(cur.some((x) => x.event === 'connection'), 'no per-connection story without --verbose');
  // Node opens its inspector on SIGUSR1 unless the process handles it: nothing listens for it.
  const ss = await run('ss', ['-ltnpH']);
  t.false(ss.stdout.split('\n').some((l) => l.includes(`pid=${p.child.pid},`) && !l.includes(`:${port} `)), ss.stdout);
  t.notRegex(p.output(), /Debugger listening/);

  // The text access line carries the same fields.
  const d = await startDaemon(t, ['--base-path', base, '--export-all']);
  await git(['clone', '-q', d.url('r.git'), join(work, 'c')]);
  await d.proc.waitFor(/access: upload-pack/);
  t.regex(d.proc.output(), /\] access: upload-pack \S+r\.git client=127\.0\.0\.1:\d+ exit=0 sent=\d+ received=\d+ duration=\d+\.\d{3}s mptcp=no subflows=1 cache=miss/);
});
