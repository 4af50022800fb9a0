import test from 'ava';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { NetBed } from './netbed/bed.js';
import { bedOwner, listNamespaces, sweepOrphanBeds } from './netbed/cleanup.js';
import { parseSsBoth, parseSsMptcp, parseSsTcp, parseTcQdisc, stallAfter } from './netbed/observe.js';
import { alive, ROOT, start, tempDir } from './helpers/proc.js';
import { makeBulkRepo } from './helpers/repo.js';

// The two-link test bed itself, with stock git as the peer on both ends (mptcpize turns its
// sockets into MPTCP ones): two subflows on two links, tbf on both, teardown on every exit path.

test.after.always('no bed of this process is left behind', async (t) => {
  const mine = (await listNamespaces()).filter((ns) => bedOwner(ns) === process.pid);
  t.deepEqual(mine, []);
});

async function stockDaemon(t: Parameters<typeof start>[0], bed: NetBed, base: string, mptcp: boolean) {
  const daemonArgs = ['daemon', '--export-all', `--base-path=${base}`, '--listen=0.0.0.0', '--port=9418', '--reuseaddr', '--verbose'];
  const [cmd, args] = bed.argv('server', mptcp ? 'mptcpize' : 'git', mptcp ? ['run', 'git', ...daemonArgs] : daemonArgs);
  const d = start(t, cmd, args);
  await d.waitFor(/Ready to rumble/);
  return d;
}

test('MPTCP between the namespaces runs one subflow on each link; TCP stays on the first', async (t) => {
  const bed = await NetBed.create({ rateMbit: 100 });
  t.teardown(() => bed.destroy());
  const dir = await tempDir(t);
  await makeBulkRepo(join(dir, 'repo.git'), 12);
  await stockDaemon(t, bed, dir, true);

  // tbf on both ends of both links, at the asked rate.
  for (const side of ['client', 'server'] as const) {
    for (const l of bed.links) {
      const dev = side === 'client' ? l.client.ifname : l.server.ifname;
      const q = JSON.parse((await bed.run(side, 'tc', ['-j', 'qdisc', 'show', 'dev', dev])).stdout) as { kind: string; options: { rate: number } }[];
      t.is(q[0]!.kind, 'tbf');
      t.is(q[0]!.options.rate, 100e6 / 8);
    }
  }

  const url = `git://${bed.serverAddr}/repo.git`;
  const l0 = await bed.txBytes('server', 0);
  const l1 = await bed.txBytes('server', 1);
  const mon = bed.monitor('client', 9418);
  const mp = await bed.run('client', 'mptcpize', ['run', 'git', 'clone', '-q', url, join(dir, 'mp')], { timeoutMs: 90_000 });
  const seen = await mon.stop();
  t.is(mp.code, 0, mp.stderr);
  t.true(seen.mptcp);
  t.is(seen.maxSubflows, 2);
  // One subflow from each client address, the second bound to the second link's device.
  t.deepEqual(seen.subflows.map((s) => [s.local.split(':')[0], s.boundDev]).sort(), [['10.71.1.1', null], ['10.71.2.1', 'c1']]);
  const mp0 = (await bed.txBytes('server', 0)) - l0;
  const mp1 = (await bed.txBytes('server', 1)) - l1;
  // How the scheduler splits a short transfer varies; both links must carry a real share.
  t.true(mp0 > 1e6 && mp1 > 1e6 && mp0 + mp1 > 12e6, `link 0 carried ${mp0} bytes, link 1 ${mp1}, of a 12 MB clone`);

  const tcp = await bed.run('client', 'git', ['clone', '-q', url, join(dir, 'tcp')], { timeoutMs: 90_000 });
  t.is(tcp.code, 0, tcp.stderr);
  const tcp0 = (await bed.txBytes('server', 0)) - l0 - mp0;
  const tcp1 = (await bed.txBytes('server', 1)) - l1 - mp1;
  t.true(tcp0 > 12e6, `link 0 carried ${tcp0} bytes`);
  t.true(tcp1 < 100_000, `link 1 carried ${tcp1} bytes of a TCP clone`);
});

test('a link taken down and up again comes back with its routes', async (t) => {
  const bed = await NetBed.create({ rateMbit: 100 });
  t.teardown(() => bed.destroy());
  await bed.setLink(1, false);
  const down = JSON.parse((await bed.run('client', 'ip', ['-j', 'link', 'show', 'c1'])).stdout) as { flags: string[] }[];
  t.false(down[0]!.flags.includes('UP'));
  t.is((await bed.run('client', 'ip', ['route', 'show', 'table', '102'])).stdout.trim(), '');
  await bed.setLink(1, true);
  t.regex((await bed.run('client', 'ip', ['route', 'show', 'table', '102'])).stdout, /default dev c1/);
  // A connection from the second address to the server's first one leaves through link 1 again.
  const port = 9555;
  const listener = bed.spawn('server', process.execPath, ['-e', `require('net').createServer((s) => s.end('hi')).listen(${port}, '0.0.0.0', () => console.log('up'))`]);
  t.teardown(() => listener.kill('SIGKILL'));
  await new Promise((r) => listener.stdout!.once('data', r));
  const before = await bed.txBytes('client', 1);
  const conn = await bed.run('client', process.execPath, ['-e', `require('net').connect({ host: '${bed.serverAddr}', port: ${port}, localAddress: '10.71.2.1' }).on('data', (d) => process.stdout.write(d))`]);
  t.is(conn.stdout, 'hi', conn.stderr);
  t.true((await bed.txBytes('client', 1)) > before, 'nothing left through link 1');
});

/** A separate node process that builds a bed with a process inside, then ends as `mode` says. */
function bedOwnerProcess(mode: 'exit' | 'throw' | 'wait') {
  const mod = pathToFileURL(join(ROOT, 'test', 'netbed', 'bed.ts')).href;
  const code = `
    const { NetBed } = await import(${JSON.stringify(mod)});
    const bed = await NetBed.create({ rateMbit: 10 });
    const sleeper = bed.spawn('server', 'sleep', ['600'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
    process.stdout.write(JSON.stringify({ ns: bed.ns, sleeper: sleeper.pid }) + '\\n');
    if (${JSON.stringify(mode)} === 'exit') process.exit(0);
    if (${JSON.stringify(mode)} === 'throw') throw new Error('test failure inside the owner');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<{ ns: { client: string; server: string }; sleeper: number }>((resolve, reject) => {
    child.stdout.on('data', () => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line));
    });
    void exited.then(() => setTimeout(() => reject(new Error(`bed owner exited before its bed was up: ${err}`)), 100));
  });
  return { child, ready, exited, stderr: () => err };
}

async function gone(t: Parameters<typeof start>[0], info: { ns: { client: string; server: string }; sleeper: number }) {
  const list = await listNamespaces();
  t.false(list.includes(info.ns.client), `${info.ns.client} left behind`);
  t.false(list.includes(info.ns.server), `${info.ns.server} left behind`);
  // The process inside was killed too (give the kernel a moment to reap it).
  for (let i = 0; i < 250 && alive(info.sleeper); i++) await new Promise((r) => setTimeout(r, 20));
  t.false(alive(info.sleeper), 'the process inside the bed is still running');
}

for (const mode of ['exit', 'throw'] as const) {
  test(`a bed is deleted when its owner ${mode === 'exit' ? 'exits without destroying it' : 'dies of an uncaught exception'}`, async (t) => {
    const owner = bedOwnerProcess(mode);
    const info = await owner.ready;
    const how = await owner.exited;
    if (mode === 'throw') t.regex(owner.stderr(), /test failure inside the owner/);
    else t.is(how.code, 0);
    await gone(t, info);
  });
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`a bed is deleted when its owner gets ${sig}`, async (t) => {
    const owner = bedOwnerProcess('wait');
    const info = await owner.ready;
    owner.child.kill(sig);
    const how = await owner.exited;
    t.is(how.signal, sig);
    await gone(t, info);
  });
}

test('a bed whose owner was killed outright is swept by the next bed', async (t) => {
  const owner = bedOwnerProcess('wait');
  const info = await owner.ready;
  owner.child.kill('SIGKILL');
  await owner.exited;
  // Nothing could run in the owner, so its bed stays until the next bed is made (a bed made
  // by another test at the same time may sweep it first, which is as good).
  const next = await NetBed.create({ rateMbit: 10 });
  t.teardown(() => next.destroy());
  await gone(t, info);
  t.deepEqual(await sweepOrphanBeds(), []);
});

// What the kernel prints, captured from this bed (iproute2 6.1, Linux 6.18).
const SS_M = `State Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
ESTAB 199104 0          10.71.1.1:59636    10.71.1.2:5555
\t subflows:1 subflows_max:2 add_addr_accepted_max:2 remote_key token:1ae7fd57 write_seq:df348bcfd09fe90d snd_una:df348bcfd09fe90d rcv_nxt:48b4bea48b847dc
ESTAB 125944 0          10.71.1.1:58588    10.71.1.2:9555
\t subflows_max:2 add_addr_accepted_max:2 fallback token:bbc14d10 write_seq:375d83efe584ada4 snd_una:375d83efe584ada4 rcv_nxt:1d1f8
LISTEN 0 5 0.0.0.0:9418 0.0.0.0:*
\t token:0 write_seq:0 snd_una:0 rcv_nxt:0
`;
const SS_T = `State Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
ESTAB 0      0          10.71.1.1:59636    10.71.1.2:5555
\t ts sack bbr wscale:10,10 rto:200 rtt:0.052/0.026 ato:40 mss:1448 bytes_acked:1 bytes_received:4717016 segs_out:863 tcp-ulp-mptcp flags:Mmec token:0000(id:0)/1ae7fd57(id:0) seq:48b4bea48bc47dc sfseq:46ff89 ssnoff:9d2377f9 maplen:fa50
ESTAB 0      0       10.71.2.1%c1:53249    10.71.1.2:5555
\t ts sack bbr wscale:10,10 rto:200 bytes_acked:1 bytes_received:4732712 segs_out:659 tcp-ulp-mptcp flags:Jjec token:c1a7dfeb(id:0)/1ae7fd57(id:1) seq:48b4bea48c7422c sfseq:483179 ssnoff:629aae33 maplen:5b0
ESTAB 0      0          10.71.1.1:40000    10.71.1.2:22
\t cubic bytes_sent:12 bytes_received:34
`;

test('ss output is parsed into connections and their subflows', (t) => {
  const conns = parseSsMptcp(SS_M, SS_T);
  t.is(conns.length, 3);
  const c = conns[0]!;
  t.is(c.state, 'ESTAB');
  t.false(c.fallback);
  t.true(conns[1]!.fallback);
  t.is(conns[1]!.subflows, 1);
  t.is(c.token, '1ae7fd57');
  t.is(c.subflows, 2);
  t.is(c.rcvNxt, 0x48b4bea48b847dcn);
  t.deepEqual(c.tcp.map((s) => [s.local, s.boundDev, s.bytesReceived]), [
    ['10.71.1.1:59636', null, 4717016],
    ['10.71.2.1:53249', 'c1', 4732712],
  ]);
  t.is(conns[2]!.state, 'LISTEN');
  const tcp = parseSsTcp(SS_T);
  t.is(tcp[2]!.mptcpToken, null);
  t.is(tcp[2]!.bytesSent, 12);
  t.deepEqual(parseTcQdisc('[{"kind":"tbf","root":true,"bytes":346857438,"packets":230201,"drops":36254}]'), { bytes: 346857438, packets: 230201, drops: 36254 });
});

test('ss -tM output (both kinds in one listing) is told apart by its Netid column', (t) => {
  const out = `Netid State Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
tcp   ESTAB 0      0       10.71.2.1%c1:57541    10.71.1.2:5555
\t bbr bytes_received:6159784 tcp-ulp-mptcp flags:Jjecv token:8bc0aa4b(id:0)/93790590(id:1) seq:8dd9658e7e53deac
tcp   ESTAB 0      0          10.71.1.1:33274    10.71.1.2:5555
\t bbr bytes_received:6028816 tcp-ulp-mptcp flags:Mmec token:0000(id:0)/93790590(id:0) seq:8dd9658e7e3d2b14
mptcp ESTAB 681080 0          10.71.1.1:33274    10.71.1.2:5555
\t subflows:1 subflows_max:2 add_addr_accepted_max:2 remote_key token:93790590 write_seq:9e547e37418b5028 snd_una:9e547e37418b5028 rcv_nxt:8dd9658e7e3e78d4
`;
  const { mptcp, tcp } = parseSsBoth(out);
  t.is(tcp.length, 2);
  t.is(mptcp.length, 1);
  t.is(mptcp[0]!.subflows, 2);
  t.deepEqual(mptcp[0]!.tcp.map((s) => [s.boundDev, s.bytesReceived]), [['c1', 6159784], [null, 6028816]]);
});

test('a stall after an event is timed from the event to the rate coming back', (t) => {
  // 1 MB per 100 ms, a link dies at 1000 ms, a trickle until 1600 ms, then half the rate.
  const s: { t: number; bytes: number }[] = [];
  let bytes = 0;
  for (let ms = 0; ms <= 3000; ms += 100) {
    if (ms <= 1100) bytes += 1e6;
    else if (ms <= 1600) bytes += 1000;
    else bytes += 5e5;
    s.push({ t: ms, bytes });
  }
  t.deepEqual(stallAfter(s, 1000, 2e6), { resumedAfterMs: 700, stallStartMs: 100 });
  // No dip at all: resumed at once.
  t.deepEqual(stallAfter(s.map((x, i) => ({ t: x.t, bytes: i * 1e6 })), 1000, 2e6), { resumedAfterMs: 0, stallStartMs: null });
  // Quiet after the last byte is the end of the transfer, not a stall.
  const done = [...s.slice(0, 10), ...Array.from({ length: 10 }, (_, i) => ({ t: 1000 + i * 100, bytes: s[9]!.bytes }))];
  t.deepEqual(stallAfter(done, 500, 2e6), { resumedAfterMs: 0, stallStartMs: null });
  // A short last interval is the tail of the transfer, not a stall...
  const tail = [...s.slice(0, 10), { t: 1000, bytes: s[9]!.bytes + 1000 }];
  t.deepEqual(stallAfter(tail, 500, 2e6), { resumedAfterMs: 0, stallStartMs: null });
  // ...but a transfer that crawls to its end after the event never resumed.
  const crawl = [...s.slice(0, 10), ...Array.from({ length: 10 }, (_, i) => ({ t: 1000 + i * 100, bytes: s[9]!.bytes + (i + 1) * 1000 }))];
  t.deepEqual(stallAfter(crawl, 950, 2e6), { resumedAfterMs: null, stallStartMs: 0 });
});
