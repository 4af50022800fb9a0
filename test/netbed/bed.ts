// The two-link MPTCP test bed: two network namespaces (client, server) joined by two veth
// pairs on two subnets, each link rate-limited with tbf in both directions, MPTCP limits set
// in both namespaces and the client's second address registered as a `subflow` endpoint, with
// source routing so that subflow leaves through the second link. Everything lives inside the
// two namespaces: deleting them (destroy(), or the exit paths in cleanup.ts) removes it all.
//
//   client ns                                   server ns
//   c0 10.71.1.1/24  <---- link 0 (tbf) ---->  s0 10.71.1.2/24   (clients connect here)
//   c1 10.71.2.1/24  <---- link 1 (tbf) ---->  s1 10.71.2.2/24
//   endpoint 10.71.2.1 dev c1 subflow; rule from 10.71.2.1 -> table 102 (default dev c1)

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { exec, execOk, type CommandResult } from '../../ts/net/iproute.js';
import {
  bedNamespaceNames,
  deleteNamespace,
  newBedId,
  sweepOrphanBeds,
  trackNamespace,
  untrackNamespace,
} from './cleanup.js';
import { parseSsBoth, parseSsTcp, parseTcQdisc, type MptcpSocketInfo, type ProgressSample, type TcpSocketInfo } from './observe.js';

export type Side = 'client' | 'server';

export interface BedOptions {
  /** Rate of each link, in both directions (Mbit/s; default 100). */
  rateMbit?: number;
  /** tbf's queue bound in ms of traffic at that rate (default 20): the queueing delay cap. */
  queueMs?: number;
  /**
   * Configure the client's second path (default true): its address as a `subflow` endpoint and
   * a source route out of the second link. false leaves a host that `mpgit doctor` must fix.
   */
  clientPaths?: boolean;
  /** Per-namespace sysctls set in both namespaces, e.g. { 'net.mptcp.stale_loss_cnt': '2' }. */
  sysctls?: Record<string, string>;
}

export interface BedLink {
  index: number;
  client: { ifname: string; addr: string };
  server: { ifname: string; addr: string };
}

/** The source-routing table for the client's second address. */
const SECOND_LINK_TABLE = '102';
/** Bound on waiting for the veth pairs to report carrier. */
const LINK_UP_TIMEOUT_MS = 5_000;
/** Ends each `ss` listing in the monitor's stream. */
const SAMPLE_END = '@@mpgb-sample@@';
/** Bound on one buffered listing (thousands of sockets would be a runaway). */
const MAX_SAMPLE_BYTES = 8 * 1024 * 1024;
/** tbf needs a bucket of at least one timer tick of traffic (HZ can be as low as 100). */
const MIN_BURST_BYTES = 32 * 1024;

const LINKS: BedLink[] = [0, 1].map((i) => ({
  index: i,
  client: { ifname: `c${i}`, addr: `10.71.${i + 1}.1` },
  server: { ifname: `s${i}`, addr: `10.71.${i + 1}.2` },
}));

export interface MonitorResult {
  samples: ProgressSample[];
  /** Most subflows one connection had at a time (1 for an MPTCP connection without joins). */
  maxSubflows: number;
  /** An MPTCP connection was seen at all (false: plain TCP, or a fallback to it). */
  mptcp: boolean;
  /** An MPTCP socket was seen that had fallen back to TCP (its peer does not speak MPTCP). */
  fallback: boolean;
  /** Every subflow seen (local/peer address, bound device). */
  subflows: TcpSocketInfo[];
}

export interface Monitor {
  readonly samples: ProgressSample[];
  now(): number;
  stop(): Promise<MonitorResult>;
}

export class NetBed {
  readonly id: string;
  readonly ns: Record<Side, string>;
  readonly links: readonly BedLink[] = LINKS;
  readonly rateMbit: number;
  private readonly children = new Set<ChildProcess>();
  private clientPaths = true;
  private destroyed = false;

  private constructor(id: string, rateMbit: number) {
    this.id = id;
    this.ns = bedNamespaceNames(id);
    this.rateMbit = rateMbit;
  }

  /** The server address clients connect to (link 0); the second link joins as a subflow. */
  get serverAddr(): string {
    return LINKS[0]!.server.addr;
  }

  /** Builds a bed (sweeping orphaned ones first). Always call destroy(), e.g. in t.teardown. */
  static async create(opts: BedOptions = {}): Promise<NetBed> {
    await sweepOrphanBeds();
    const bed = new NetBed(newBedId(), opts.rateMbit ?? 100);
    try {
      await bed.build(opts);
    } catch (e) {
      await bed.destroy().catch(() => {});
      throw e;
    }
    return bed;
  }

  private async build(opts: BedOptions): Promise<void> {
    const { client, server } = this.ns;
    for (const ns of [client, server]) {
      trackNamespace(ns); // before creating: a signal between the two steps still cleans up
      await execOk('ip', ['netns', 'add', ns]);
    }
    const ipc = (...a: string[]) => execOk('ip', ['-n', client, ...a]);
    const ips = (...a: string[]) => execOk('ip', ['-n', server, ...a]);
    await ipc('link', 'set', 'lo', 'up');
    await ips('link', 'set', 'lo', 'up');
    for (const l of LINKS) {
      // Created directly inside the namespaces: the host never sees these interfaces.
      await ipc('link', 'add', l.client.ifname, 'type', 'veth', 'peer', 'name', l.server.ifname, 'netns', server);
      await ipc('addr', 'add', `${l.client.addr}/24`, 'dev', l.client.ifname);
      await ips('addr', 'add', `${l.server.addr}/24`, 'dev', l.server.ifname);
      await ipc('link', 'set', l.client.ifname, 'up');
      await ips('link', 'set', l.server.ifname, 'up');
    }
    for (const [key, value] of Object.entries(opts.sysctls ?? {})) await this.sysctl(key, value);
    for (const ns of [client, server]) await execOk('ip', ['-n', ns, 'mptcp', 'limits', 'set', 'subflow', '2', 'add_addr_accepted', '2']);
    this.clientPaths = opts.clientPaths ?? true;
    if (this.clientPaths) {
      await ipc('rule', 'add', 'from', LINKS[1]!.client.addr, 'table', SECOND_LINK_TABLE);
      await this.addSecondLinkRoute();
      await ipc('mptcp', 'endpoint', 'add', LINKS[1]!.client.addr, 'dev', LINKS[1]!.client.ifname, 'subflow');
    }
    const queueMs = opts.queueMs ?? 20;
    for (const l of LINKS) {
      await this.shape('client', l.client.ifname, queueMs);
      await this.shape('server', l.server.ifname, queueMs);
    }
    await this.waitCarrier();
  }

  private async shape(side: Side, dev: string, queueMs: number): Promise<void> {
    const bytesPerSec = (this.rateMbit * 1e6) / 8;
    const burst = Math.max(MIN_BURST_BYTES, Math.ceil(bytesPerSec / 100));
    await execOk('ip', ['netns', 'exec', this.ns[side], 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf',
      'rate', `${this.rateMbit}mbit`, 'burst', String(burst), 'latency', `${queueMs}ms`]);
  }

  private addSecondLinkRoute(): Promise<string> {
    const l = LINKS[1]!;
    return execOk('ip', ['-n', this.ns.client, 'route', 'replace', 'default', 'dev', l.client.ifname, 'src', l.client.addr, 'table', SECOND_LINK_TABLE]);
  }

  private async waitCarrier(): Promise<void> {
    const deadline = Date.now() + LINK_UP_TIMEOUT_MS;
    for (;;) {
      const out = await execOk('ip', ['-n', this.ns.client, '-j', 'link', 'show']);
      const links = JSON.parse(out) as { ifname: string; flags: string[] }[];
      const up = LINKS.every((l) => links.find((x) => x.ifname === l.client.ifname)?.flags.includes('LOWER_UP'));
      if (up) return;
      if (Date.now() > deadline) throw new Error(`bed ${this.id}: links did not come up within ${LINK_UP_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The argv that runs `cmd args` inside a namespace (for spawn helpers). */
  argv(side: Side, cmd: string, args: string[] = []): [string, string[]] {
    return ['ip', ['netns', 'exec', this.ns[side], cmd, ...args]];
  }

  /** Runs a command inside a namespace to completion (bounded by timeoutMs). */
  run(side: Side, cmd: string, args: string[] = [], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
    const [c, a] = this.argv(side, cmd, args);
    return exec(c, a, opts);
  }

  /** Starts a process inside a namespace; it is killed when the bed is destroyed. */
  spawn(side: Side, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error(`bed ${this.id} is destroyed`);
    const [c, a] = this.argv(side, cmd, args);
    const child = spawn(c, a, opts);
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Sets a per-namespace sysctl (net.mptcp.*, net.ipv4.*) in both namespaces. */
  async sysctl(key: string, value: string): Promise<void> {
    for (const ns of [this.ns.client, this.ns.server]) await execOk('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
  }

  /** Takes link `i` down or up (both ends, as a cable pulled; up restores its routes). */
  async setLink(i: number, up: boolean): Promise<void> {
    const l = LINKS[i];
    if (!l) throw new Error(`bed has no link ${i}`);
    const state = up ? 'up' : 'down';
    await execOk('ip', ['-n', this.ns.client, 'link', 'set', l.client.ifname, state]);
    await execOk('ip', ['-n', this.ns.server, 'link', 'set', l.server.ifname, state]);
    // Routes through a device go with it; the source route must come back with the link.
    if (up) {
      await this.waitCarrier();
      if (i === 1 && this.clientPaths) await this.addSecondLinkRoute();
    }
  }

  /** Bytes sent by one side's end of link `i` (its tbf qdisc's counter). */
  async txBytes(side: Side, i: number): Promise<number> {
    const l = LINKS[i];
    if (!l) throw new Error(`bed has no link ${i}`);
    const dev = side === 'client' ? l.client.ifname : l.server.ifname;
    const out = await execOk('ip', ['netns', 'exec', this.ns[side], 'tc', '-s', '-j', 'qdisc', 'show', 'dev', dev]);
    return parseTcQdisc(out).bytes;
  }

  /** MPTCP connections in a namespace (`ss -M`), each with its subflows (`ss -t`). */
  async mptcpConnections(side: Side): Promise<MptcpSocketInfo[]> {
    const out = await execOk('ip', ['netns', 'exec', this.ns[side], 'ss', '-tMni']);
    return parseSsBoth(out).mptcp.filter((c) => c.state === 'ESTAB');
  }

  /** Established TCP sockets in a namespace: plain connections and MPTCP subflows. */
  async tcpSockets(side: Side): Promise<TcpSocketInfo[]> {
    return parseSsTcp(await execOk('ip', ['netns', 'exec', this.ns[side], 'ss', '-tni'])).filter((s) => s.state === 'ESTAB');
  }

  /**
   * Watches one side's connections with `port` at the other end (or at this end, for the
   * server side) every `intervalMs` until stop(): the bytes received in order (an MPTCP
   * connection's rcv_nxt advance, a plain TCP connection's bytes_received; kept after it
   * closes), the most subflows any MPTCP connection had, and every subflow seen. `now()` is
   * the samples' clock, to mark events (a link going down) on it.
   *
   * One shell inside the namespace runs `ss` in a loop: starting `ip netns exec` per sample
   * would cost more than the interval on a busy machine (and the CPU the clone needs).
   */
  monitor(side: Side, port: number, intervalMs = 100): Monitor {
    const samples: ProgressSample[] = [];
    const subflows = new Map<string, TcpSocketInfo>();
    const t0 = Date.now();
    const first = new Map<string, bigint>();
    const latest = new Map<string, bigint>(); // per MPTCP token, or per plain TCP socket
    let maxSubflows = 0;
    let mptcpSeen = false;
    let fallbackSeen = false;
    const ours = (s: { local: string; peer: string }) => s.peer.endsWith(`:${port}`) || s.local.endsWith(`:${port}`);
    const tcpBytes = (s: TcpSocketInfo) => {
      const key = `tcp ${s.local} ${s.peer}`;
      if (!first.has(key)) first.set(key, 0n);
      latest.set(key, BigInt(s.bytesReceived));
    };
    const take = (listing: string, at: number) => {
      const { mptcp, tcp } = parseSsBoth(listing);
      let queued = 0;
      for (const c of mptcp) {
        if (c.state !== 'ESTAB' || !ours(c)) continue;
        queued += c.recvQ;
        if (c.fallback) {
          // Plain TCP underneath: count its one subflow's bytes like a TCP connection's.
          for (const sf of c.tcp) tcpBytes(sf);
          fallbackSeen = true;
          continue;
        }
        mptcpSeen = true;
        maxSubflows = Math.max(maxSubflows, c.subflows, c.tcp.length);
        for (const sf of c.tcp) subflows.set(`${sf.local} ${sf.peer}`, sf);
        if (c.rcvNxt === null || !c.token) continue;
        if (!first.has(c.token)) first.set(c.token, c.rcvNxt);
        latest.set(c.token, c.rcvNxt);
      }
      for (const s of tcp) {
        if (s.mptcpToken !== null || s.state !== 'ESTAB' || !ours(s)) continue;
        tcpBytes(s);
        queued += s.recvQ;
      }
      let total = 0n;
      for (const [key, v] of latest) total += BigInt.asUintN(64, v - first.get(key)!);
      samples.push({ t: at - t0, bytes: Number(total), queued });
    };
    const sleep = (intervalMs / 1000).toFixed(3);
    const sampler = this.spawn(side, 'sh', ['-c', `while :; do ss -tMni; echo ${SAMPLE_END}; sleep ${sleep}; done`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    sampler.stdout!.setEncoding('utf8');
    sampler.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      for (let end = buf.indexOf(SAMPLE_END); end >= 0; end = buf.indexOf(SAMPLE_END)) {
        take(buf.slice(0, end), Date.now());
        buf = buf.slice(end + SAMPLE_END.length);
      }
      if (buf.length > MAX_SAMPLE_BYTES) buf = ''; // a runaway listing: drop it, keep sampling
    });
    const exited = new Promise<void>((resolve) => sampler.once('close', () => resolve()));
    return {
      samples,
      now: () => Date.now() - t0,
      async stop() {
        sampler.kill('SIGKILL');
        await exited;
        return { samples, maxSubflows, mptcp: mptcpSeen, fallback: fallbackSeen, subflows: [...subflows.values()] };
      },
    };
  }

  /** Kills everything running in the namespaces and deletes them. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const child of this.children) child.kill('SIGKILL');
    for (const ns of [this.ns.client, this.ns.server]) {
      await deleteNamespace(ns);
      untrackNamespace(ns);
    }
  }
}
