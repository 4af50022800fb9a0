// What this host's kernel says about Multipath TCP, read from the network namespace the process
// runs in: net.mptcp.* sysctls, the in-kernel path manager's limits and endpoints (`ip mptcp`),
// the interfaces and their addresses, policy rules, and where traffic from each address would
// leave. Read-only: nothing here changes the host.

import { readFile, readdir } from 'node:fs/promises';
import { exec } from '../net/iproute.js';
import { core, netMissing } from '../core/index.js';

const SYSCTL_DIR = '/proc/sys/net/mptcp';
/** Documentation addresses (RFC 5737 / RFC 3849): a route lookup towards "the Internet". */
export const PROBE_TARGET = { inet: '198.51.100.1', inet6: '2001:db8::1' } as const;

export type Family = 'inet' | 'inet6';

export interface Endpoint {
  id: number;
  address: string;
  dev: string | null;
  flags: string[]; // signal, subflow, backup, fullmesh
}

export interface HostAddress {
  ifname: string;
  family: Family;
  address: string;
}

export interface HostInterface {
  ifname: string;
  up: boolean;
  /** Why this interface is not a candidate path (loopback, bridge, enslaved, tunnel), if so. */
  excluded: string | null;
  addresses: HostAddress[];
  /** Its own default gateway in the main table, if it has one. */
  gateway: string | null;
}

export interface RouteResult {
  dev: string | null;
  error: string | null;
}

export interface HostState {
  kernel: string;
  /** null: MPTCP sockets can be made; else why not (errno name or missing addon). */
  socketError: string | null;
  /** Why mpgit itself cannot make MPTCP sockets (no native addon), or null. */
  nativeSockets: string | null;
  /** net.mptcp.* values by name; empty when the kernel has no MPTCP at all. */
  sysctls: Record<string, string>;
  limits: { subflows: number; addAddrAccepted: number } | null;
  endpoints: Endpoint[];
  interfaces: HostInterface[];
  /** "from ADDR lookup TABLE" rules: address -> table. */
  sourceRules: Record<string, string>;
  /** Where traffic from each candidate address to the target leaves: address -> route. */
  routes: Record<string, RouteResult>;
  /** The address and device the kernel picks for a new connection to the target (the first subflow). */
  primary: { address: string | null; dev: string | null; family: Family };
  target: string;
  /** A process named mptcpd is running (the userspace path manager). */
  mptcpdRunning: boolean;
  /** Why `ip` could not be used, if it could not. */
  ipError: string | null;
}

async function readSysctls(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = await readdir(SYSCTL_DIR);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      out[n] = (await readFile(`${SYSCTL_DIR}/${n}`, 'utf8')).trim();
    } catch {
      // unreadable entries are left out
    }
  }
  return out;
}

async function ip(args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const r = await exec('ip', args);
    return { ok: r.code === 0, out: r.stdout, err: r.stderr.trim() };
  } catch (e) {
    return { ok: false, out: '', err: (e as Error).message };
  }
}

/** "add_addr_accepted 0 subflows 2" (the text `ip mptcp limits show` prints). */
export function parseLimits(text: string): { subflows: number; addAddrAccepted: number } | null {
  const s = /subflows?\s+(\d+)/.exec(text);
  const a = /add_addr_accepted\s+(\d+)/.exec(text);
  if (!s || !a) return null;
  return { subflows: Number(s[1]), addAddrAccepted: Number(a[1]) };
}

const FLAG_NAMES = ['signal', 'subflow', 'backup', 'fullmesh', 'implicit', 'laminar'];

/** `ip -j mptcp endpoint show`: [{"address":"10.71.2.1","id":1,"subflow":true,"dev":"c1"}]. */
export function parseEndpoints(json: string): Endpoint[] {
  if (!json.trim()) return [];
  const list = JSON.parse(json) as Record<string, unknown>[];
  return list.map((e) => ({
    id: Number(e.id),
    address: String(e.address),
    dev: typeof e.dev === 'string' ? e.dev : null,
    flags: FLAG_NAMES.filter((f) => e[f] === true || (Array.isArray(e.flags) && (e.flags as string[]).includes(f))),
  }));
}

interface IpAddrJson {
  ifname: string;
  flags: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string };
  addr_info?: { family: string; local: string; scope: string; temporary?: boolean; deprecated?: boolean; tentative?: boolean }[];
}

const TUNNEL_KINDS = new Set(['tun', 'wireguard', 'vxlan', 'geneve', 'ipip', 'gre', 'sit', 'ip6tnl', 'vti', 'gretap', 'ip6gre']);

export function interfacesFrom(addrJson: string, defaults: { dev?: string; gateway?: string }[]): HostInterface[] {
  const list = JSON.parse(addrJson) as IpAddrJson[];
  return list.map((l) => {
    const kind = l.linkinfo?.info_kind;
    let excluded: string | null = null;
    if (l.flags.includes('LOOPBACK')) excluded = 'loopback';
    else if (l.master) excluded = `part of ${l.master}`;
    else if (kind === 'bridge') excluded = 'a bridge (local virtual network)';
    else if (kind && TUNNEL_KINDS.has(kind)) excluded = `a ${kind} tunnel`;
    const addresses = (l.addr_info ?? [])
      .filter((a) => (a.family === 'inet' || a.family === 'inet6') && a.scope === 'global' && !a.temporary && !a.deprecated)
      .map((a) => ({ ifname: l.ifname, family: a.family as Family, address: a.local }));
    return {
      ifname: l.ifname,
      up: l.flags.includes('UP') && l.flags.includes('LOWER_UP'),
      excluded,
      addresses,
      gateway: defaults.find((d) => d.dev === l.ifname && d.gateway)?.gateway ?? null,
    };
  });
}

async function routeGet(target: string, from?: string): Promise<{ dev: string | null; prefsrc: string | null; error: string | null }> {
  const r = await ip(['-j', 'route', 'get', target, ...(from ? ['from', from] : [])]);
  if (!r.ok) return { dev: null, prefsrc: null, error: r.err || 'no route' };
  const [first] = JSON.parse(r.out) as { dev?: string; prefsrc?: string }[];
  return { dev: first?.dev ?? null, prefsrc: first?.prefsrc ?? null, error: null };
}

async function mptcpdRunning(): Promise<boolean> {
  try {
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      if (comm.trim() === 'mptcpd') return true;
    }
  } catch {
    // no /proc: reported as not running
  }
  return false;
}

/** Reads everything the checks need. `peer`: the server to check routes towards (else "the Internet"). */
export async function probeHost(opts: { peer?: string; release: string }): Promise<HostState> {
  const sysctls = await readSysctls();
  let socketError: string | null = null;
  if (core.net) socketError = core.net.kernelMptcp();
  else if (!Object.keys(sysctls).length) socketError = `no ${SYSCTL_DIR}`;

  const state: HostState = {
    kernel: opts.release,
    socketError,
    nativeSockets: netMissing(),
    sysctls,
    limits: null,
    endpoints: [],
    interfaces: [],
    sourceRules: {},
    routes: {},
    primary: { address: null, dev: null, family: opts.peer?.includes(':') ? 'inet6' : 'inet' },
    target: opts.peer ?? PROBE_TARGET.inet,
    mptcpdRunning: await mptcpdRunning(),
    ipError: null,
  };

  const addrs = await ip(['-j', '-d', 'addr', 'show']);
  if (!addrs.ok) {
    state.ipError = addrs.err || '`ip` failed';
    return state;
  }
  const defaults = await ip(['-j', 'route', 'show', 'default']);
  const defaultRoutes = defaults.ok && defaults.out.trim() ? (JSON.parse(defaults.out) as { dev?: string; gateway?: string }[]) : [];
  state.interfaces = interfacesFrom(addrs.out, defaultRoutes);

  if (Object.keys(sysctls).length) {
    const limits = await ip(['mptcp', 'limits', 'show']);
    state.limits = limits.ok ? parseLimits(limits.out) : null;
    const eps = await ip(['-j', 'mptcp', 'endpoint', 'show']);
    state.endpoints = eps.ok ? parseEndpoints(eps.out) : [];
  }

  const rules = await ip(['-j', 'rule', 'show']);
  if (rules.ok && rules.out.trim()) {
    for (const r of JSON.parse(rules.out) as { src?: string; srclen?: number; table?: string }[]) {
      if (r.src && r.src !== 'all' && r.table) state.sourceRules[r.src] = r.table;
    }
  }

  const family = state.primary.family;
  const target = opts.peer ?? PROBE_TARGET[family];
  state.target = target;
  const primary = await routeGet(target);
  state.primary.dev = primary.dev;
  state.primary.address = primary.prefsrc;
  for (const i of state.interfaces) {
    for (const a of i.addresses) {
      if (a.family !== family) continue;
      const r = await routeGet(target, a.address);
      state.routes[a.address] = { dev: r.dev, error: r.error };
    }
  }
  return state;
}
