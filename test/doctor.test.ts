import test from 'ava';
import { NetBed } from './netbed/bed.js';
import { MPGIT, mpgit, start, tempDir } from './helpers/proc.js';
import { makeBulkRepo } from './helpers/repo.js';
import type { Assessment } from '../ts/doctor/assess.js';
import { parseLimits, parseEndpoints } from '../ts/doctor/probe.js';

// `mpgit doctor` run inside the test bed's namespaces: a host that is not set up gets the exact
// commands, the commands work, and a configured host passes.

async function doctor(bed: NetBed, side: 'client' | 'server', args: string[]) {
  const r = await bed.run(side, process.execPath, [MPGIT, 'doctor', ...args], { timeoutMs: 60_000 });
  return { ...r, json: args.includes('--json') && r.stdout.trim().startsWith('{') ? (JSON.parse(r.stdout) as Assessment) : null };
}

async function applyAll(bed: NetBed, side: 'client' | 'server', commands: string[]): Promise<void> {
  for (const cmd of commands) {
    const r = await bed.run(side, 'sh', ['-c', cmd]);
    if (r.code !== 0) throw new Error(`advised command failed: ${cmd}: ${r.stderr}`);
  }
}

test('a client with two interfaces and nothing set up gets the exact commands, and they make a second path', async (t) => {
  const bed = await NetBed.create({ rateMbit: 200, clientPaths: false });
  t.teardown(() => bed.destroy());
  await bed.run('client', 'ip', ['mptcp', 'limits', 'set', 'subflow', '0', 'add_addr_accepted', '0']);

  const text = await doctor(bed, 'client', ['--peer', bed.serverAddr]);
  t.is(text.code, 1, text.stdout + text.stderr);
  t.regex(text.stdout, /c1 \(10\.71\.2\.1\) is not an MPTCP endpoint/);
  t.regex(text.stdout, /^ {2}ip mptcp endpoint add 10\.71\.2\.1 dev c1 subflow$/m);
  t.regex(text.stdout, /^ {2}ip mptcp limits set subflow 2 add_addr_accepted 2$/m);
  t.regex(text.stdout, /^ {2}ip rule add from 10\.71\.2\.1 table \d+$/m);
  t.regex(text.stdout, /^ {2}ip route replace default dev c1 table \d+$/m);
  t.notRegex(text.stdout, /stale_loss_cnt=/, 'the kernel default needs no change');
  t.regex(text.stdout, /MPTCP is not ready/);

  const before = await doctor(bed, 'client', ['--peer', bed.serverAddr, '--json']);
  t.false(before.json!.ok);
  await applyAll(bed, 'client', before.json!.commands);

  const after = await doctor(bed, 'client', ['--peer', bed.serverAddr]);
  t.is(after.code, 0, after.stdout + after.stderr);
  t.regex(after.stdout, /ok {4}c1 \(10\.71\.2\.1\) is a subflow endpoint/);
  t.regex(after.stdout, /ok {4}traffic from 10\.71\.2\.1 to 10\.71\.1\.2 leaves through c1/);
  t.regex(after.stdout, /MPTCP is ready/);
  t.notRegex(after.stdout, /FAIL/);

  // The advice is right, not just accepted: an MPTCP clone (stock git under mptcpize) now
  // sends data over the second link too.
  const dir = await tempDir(t);
  await makeBulkRepo(`${dir}/repo.git`, 6);
  const [cmd, args] = bed.argv('server', 'mptcpize', ['run', 'git', 'daemon', '--export-all', `--base-path=${dir}`, '--listen=0.0.0.0', '--port=9418', '--reuseaddr', '--verbose']);
  const daemon = start(t, cmd, args);
  await daemon.waitFor(/Ready to rumble/);
  const link1Before = await bed.txBytes('server', 1);
  const clone = await bed.run('client', 'mptcpize', ['run', 'git', 'clone', '-q', `git://${bed.serverAddr}/repo.git`, `${dir}/out`], { timeoutMs: 60_000 });
  t.is(clone.code, 0, clone.stderr);
  const link1 = (await bed.txBytes('server', 1)) - link1Before;
  t.true(link1 > 1_000_000, `the second link carried ${link1} bytes of a 6 MB clone`);
});

test('a configured client passes', async (t) => {
  const bed = await NetBed.create();
  t.teardown(() => bed.destroy());
  const r = await doctor(bed, 'client', ['--peer', bed.serverAddr, '--json']);
  t.is(r.code, 0, r.stdout + r.stderr);
  const a = r.json!;
  t.true(a.ok);
  t.deepEqual(a.checks.filter((c) => c.status === 'fail'), []);
  t.is(a.checks.find((c) => c.id === 'client-endpoint:c1')?.status, 'ok');
  t.is(a.checks.find((c) => c.id === 'client-route:c1')?.status, 'ok');
  t.is(a.checks.find((c) => c.id === 'client-limits')?.status, 'ok');
  // c0 carries the first subflow: it is no extra path and needs no endpoint.
  t.falsy(a.checks.find((c) => c.id === 'client-endpoint:c0'));
});

test('a server with an extra address is told to announce it, and passes once it does', async (t) => {
  const bed = await NetBed.create();
  t.teardown(() => bed.destroy());
  const r = await doctor(bed, 'server', ['--role', 'server']);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /s1 \(10\.71\.2\.2\) is not announced/);
  t.regex(r.stdout, /^ {2}ip mptcp endpoint add 10\.71\.2\.2 dev s1 signal$/m);
  const j = await doctor(bed, 'server', ['--role', 'server', '--json']);
  await applyAll(bed, 'server', j.json!.commands);
  const after = await doctor(bed, 'server', ['--role', 'server']);
  t.is(after.code, 0, after.stdout + after.stderr);
  t.regex(after.stdout, /ok {4}s1 \(10\.71\.2\.2\) is announced to clients/);
  const eps = await bed.run('server', 'ip', ['-j', 'mptcp', 'endpoint', 'show']);
  t.deepEqual(parseEndpoints(eps.stdout).map((e) => [e.address, e.dev, e.flags]), [['10.71.2.2', 's1', ['signal']]]);
});

test('MPTCP turned off in the kernel is a failure with the sysctl that turns it on', async (t) => {
  const bed = await NetBed.create();
  t.teardown(() => bed.destroy());
  await bed.run('client', 'sysctl', ['-q', '-w', 'net.mptcp.enabled=0']);
  const r = await doctor(bed, 'client', []);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /FAIL {2}net\.mptcp\.enabled = 0/);
  t.regex(r.stdout, /^ {2}sysctl -w net\.mptcp\.enabled=1$/m);
});

test('a lowered stale_loss_cnt is a warning with the command that restores the default', async (t) => {
  const bed = await NetBed.create();
  t.teardown(() => bed.destroy());
  await bed.sysctl('net.mptcp.stale_loss_cnt', '2');
  const r = await doctor(bed, 'client', ['--peer', bed.serverAddr]);
  t.is(r.code, 0, r.stdout + r.stderr); // a warning: MPTCP works, failover is at risk
  t.regex(r.stdout, /warn {2}net\.mptcp\.stale_loss_cnt = 2, below the kernel's 4/);
  t.regex(r.stdout, /^ {2}sysctl -w net\.mptcp\.stale_loss_cnt=4$/m);
});

test('bad options are usage errors', async (t) => {
  const role = await mpgit(['doctor', '--role', 'router']);
  t.not(role.code, 0);
  t.regex(role.stderr, /expected "client" or "server"/);
  const peer = await mpgit(['doctor', '--peer', 'not-an-ip']);
  t.not(peer.code, 0);
  t.regex(peer.stderr, /expected an IPv4 or IPv6 address/);
});

test('limits and endpoints are read from what ip prints', (t) => {
  t.deepEqual(parseLimits('add_addr_accepted 0 subflows 2 \n'), { subflows: 2, addAddrAccepted: 0 });
  t.is(parseLimits('garbage'), null);
  t.deepEqual(parseEndpoints('[{"address":"10.0.0.2","id":3,"signal":true,"backup":true,"dev":"eth1"}]'), [
    { id: 3, address: '10.0.0.2', dev: 'eth1', flags: ['signal', 'backup'] },
  ]);
  t.deepEqual(parseEndpoints(''), []);
});
