import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { NetBed } from './netbed/bed.js';
import { stallAfter } from './netbed/observe.js';
import { git, MPGIT, start, tempDir, type Running } from './helpers/proc.js';
import { makeBulkRepo } from './helpers/repo.js';

// mpgit daemon and mpgit clone across the two-link bed: both links carry one clone, a clone
// survives a link dying under it, and each side falls back to TCP against stock git.
// Serial: each test shapes links and times a transfer; running them side by side on a small
// machine would only blur what each one sees.

const PORT = 9418;

async function repo(t: ExecutionContext, mb: number): Promise<{ base: string; head: string }> {
  const base = await tempDir(t, 'mpgit-multipath-');
  const head = await makeBulkRepo(join(base, 'repo.git'), mb);
  return { base, head };
}

async function mpgitDaemon(t: ExecutionContext, bed: NetBed, base: string, mptcp = true): Promise<Running> {
  const [cmd, args] = bed.argv('server', process.execPath, [
    MPGIT, 'daemon', ...(mptcp ? ['--mptcp'] : []), '--export-all', `--base-path=${base}`, '--listen=0.0.0.0', `--port=${PORT}`, '--verbose',
  ]);
  const d = start(t, cmd, args);
  await d.waitFor(/Ready to rumble/);
  return d;
}

async function stockDaemon(t: ExecutionContext, bed: NetBed, base: string): Promise<Running> {
  const [cmd, args] = bed.argv('server', 'git', ['daemon', '--export-all', `--base-path=${base}`, '--listen=0.0.0.0', `--port=${PORT}`, '--reuseaddr', '--verbose']);
  const d = start(t, cmd, args);
  await d.waitFor(/Ready to rumble/);
  return d;
}

/** The clone is git's own: fsck clean, the right commit, nothing modified. */
async function assertGoodClone(t: ExecutionContext, dir: string, head: string): Promise<void> {
  const fsck = await git(['fsck', '--full', '--strict'], { cwd: dir });
  t.is(fsck.stdout + fsck.stderr, '', 'git fsck found problems');
  t.is((await git(['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim(), head);
  t.is((await git(['status', '--porcelain'], { cwd: dir })).stdout, '');
}

function mpgitClone(bed: NetBed, url: string, dir: string, extra: string[] = []) {
  return bed.run('client', process.execPath, [MPGIT, 'clone', ...extra, '-v', url, dir], { timeoutMs: 120_000 });
}

test.serial('mpgit clone --mptcp from mpgit daemon --mptcp uses two subflows, one per link', async (t) => {
  const bed = await NetBed.create({ rateMbit: 100 });
  t.teardown(() => bed.destroy());
  const { base, head } = await repo(t, 16);
  const daemon = await mpgitDaemon(t, bed, base);
  const sent0 = await bed.txBytes('server', 0);
  const sent1 = await bed.txBytes('server', 1);

  const mon = bed.monitor('client', PORT);
  const dir = join(base, 'clone');
  const r = await mpgitClone(bed, `git://${bed.serverAddr}/repo.git`, dir, ['--mptcp']);
  const seen = await mon.stop();
  t.is(r.code, 0, r.stderr);
  await assertGoodClone(t, dir, head);

  // The client's own report (MPTCP_INFO through the Rust core)...
  t.regex(r.stderr, /Connected to 10\.71\.1\.2 port 9418 over MPTCP/);
  t.regex(r.stderr, /MPTCP: 2 subflows \(2 used\)/);
  // ...the daemon's (the same counters on its side)...
  await daemon.waitFor(/Disconnected: .*mptcp yes, 2 subflows carried it/);
  // ...and the kernel's, read from outside with ss -M while the transfer ran.
  t.true(seen.mptcp);
  t.is(seen.maxSubflows, 2);
  t.deepEqual(seen.subflows.map((s) => [s.local.split(':')[0], s.boundDev]).sort(), [['10.71.1.1', null], ['10.71.2.1', 'c1']]);
  // Both links carried a real share of the 16 MB (tbf counters on the server's egress).
  const l0 = (await bed.txBytes('server', 0)) - sent0;
  const l1 = (await bed.txBytes('server', 1)) - sent1;
  t.log(`link 0: ${(l0 / 1e6).toFixed(1)} MB, link 1: ${(l1 / 1e6).toFixed(1)} MB`);
  t.true(l0 > 2e6 && l1 > 2e6 && l0 + l1 > 16e6, `link 0 carried ${l0} bytes, link 1 ${l1}`);
});

for (const dying of [1, 0]) {
  test.serial(`a clone survives link ${dying} going down in the middle${dying === 0 ? ' (the first subflow’s link)' : ''}`, async (t) => {
    const rate = 50;
    const bed = await NetBed.create({ rateMbit: rate });
    t.teardown(() => bed.destroy());
    const { base, head } = await repo(t, 24);
    const daemon = await mpgitDaemon(t, bed, base);
    const mon = bed.monitor('client', PORT);
    const dir = join(base, 'clone');
    const clone = mpgitClone(bed, `git://${bed.serverAddr}/repo.git`, dir, ['--mptcp']);

    // Pull the cable once a quarter of the pack is in.
    const deadline = Date.now() + 60_000;
    while ((mon.samples.at(-1)?.bytes ?? 0) < 6e6) {
      if (Date.now() > deadline) throw new Error(`the clone did not get going: ${mon.samples.at(-1)?.bytes ?? 0} bytes after 60 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await bed.setLink(dying, false);
    const downAt = mon.now();
    const atCut = mon.samples.at(-1)!.bytes;
    const r = await clone;
    const seen = await mon.stop();
    t.is(r.code, 0, r.stderr);
    t.true(atCut < 18e6, `the link went down too late to matter (${atCut} bytes were in)`);
    await assertGoodClone(t, dir, head);
    t.true(seen.maxSubflows >= 2, 'the clone never had a second subflow to fail over to');
    await daemon.waitFor(/Disconnected: upload-pack exited 0/);

    // Delivery came back on the surviving link (the time is the bench's business; here it
    // must simply have resumed).
    const stall = stallAfter(seen.samples, downAt, (rate * 1e6) / 8 / 4);
    t.log(`link ${dying} down at ${(atCut / 1e6).toFixed(1)} MB; delivery resumed ${stall.resumedAfterMs} ms later`);
    t.not(stall.resumedAfterMs, null, 'delivery never resumed at a quarter of one link’s rate');
  });
}

test.serial('stock git (plain TCP) clones from mpgit daemon --mptcp, and the daemon reports TCP', async (t) => {
  const bed = await NetBed.create({ rateMbit: 200 });
  t.teardown(() => bed.destroy());
  const { base, head } = await repo(t, 4);
  const daemon = await mpgitDaemon(t, bed, base);
  const mon = bed.monitor('client', PORT);
  const srv = bed.monitor('server', PORT);
  const dir = join(base, 'clone');
  const r = await bed.run('client', 'git', ['clone', '-q', `git://${bed.serverAddr}/repo.git`, dir], { timeoutMs: 60_000 });
  const seen = await mon.stop();
  const served = await srv.stop();
  // Seen from the server's namespace: a plain TCP connection (an MPTCP listener hands out
  // plain TCP sockets for clients that do not speak MPTCP).
  t.false(served.mptcp);
  t.is(r.code, 0, r.stderr);
  await assertGoodClone(t, dir, head);
  await daemon.waitFor(/Disconnected: upload-pack exited 0/);
  t.regex(daemon.output(), /listening on 0\.0\.0\.0:9418 \(MPTCP\)/);
  t.regex(daemon.output(), /Connection from 10\.71\.1\.1:\d+ \(mptcp: no\)/);
  t.regex(daemon.output(), /Disconnected: .*mptcp no/);
  t.false(seen.mptcp, 'the client namespace saw an MPTCP connection');
});

test.serial('mpgit clone --mptcp against stock git daemon falls back to TCP and says so', async (t) => {
  const bed = await NetBed.create({ rateMbit: 200 });
  t.teardown(() => bed.destroy());
  const { base, head } = await repo(t, 4);
  await stockDaemon(t, bed, base);
  const sent1 = await bed.txBytes('server', 1);
  const dir = join(base, 'clone');
  const mon = bed.monitor('client', PORT);
  const r = await mpgitClone(bed, `git://${bed.serverAddr}/repo.git`, dir, ['--mptcp']);
  const seen = await mon.stop();
  t.is(r.code, 0, r.stderr);
  // The kernel agrees: the client's MPTCP socket fell back to TCP.
  t.true(seen.fallback);
  t.false(seen.mptcp);
  await assertGoodClone(t, dir, head);
  t.regex(r.stderr, /over TCP \(the server does not speak MPTCP\)/);
  t.regex(r.stderr, /^TCP: .* received$/m);
  t.notRegex(r.stderr, /MPTCP: \d+ subflow/);
  t.true((await bed.txBytes('server', 1)) - sent1 < 100_000, 'the second link carried a TCP clone');
});

test.serial('GIT_ENABLE_MPTCP turns MPTCP on without the flag', async (t) => {
  const bed = await NetBed.create({ rateMbit: 200 });
  t.teardown(() => bed.destroy());
  const { base, head } = await repo(t, 4);
  await mpgitDaemon(t, bed, base);
  const dir = join(base, 'clone');
  const r = await bed.run('client', 'env', ['GIT_ENABLE_MPTCP=1', process.execPath, MPGIT, 'clone', '-v', `git://${bed.serverAddr}/repo.git`, dir], { timeoutMs: 60_000 });
  t.is(r.code, 0, r.stderr);
  await assertGoodClone(t, dir, head);
  t.regex(r.stderr, /over MPTCP/);
  t.regex(r.stderr, /MPTCP: 2 subflows/);
});
