// Turns what the probe read into verdicts and advice: for the kernel (MPTCP on, path manager,
// scheduler, failover timing), for a client with several interfaces (a `subflow` endpoint per
// extra address, limits, source routing so each subflow leaves through its own interface), and
// for a server that should announce its extra addresses (`signal` endpoints). Every problem
// comes with the exact command that fixes it.

import type { Endpoint, HostAddress, HostState } from './probe.js';

export type Role = 'client' | 'server';
export type Status = 'ok' | 'warn' | 'fail' | 'info';

export interface Check {
  id: string;
  status: Status;
  /** What was found, in plain words. */
  summary: string;
  /** What to do about it, when there is something to do. */
  advice?: string;
  /** The commands that do it (as root). */
  commands?: string[];
}

export interface Assessment {
  role: Role;
  kernel: string;
  checks: Check[];
  /** Every command of every check, in order, without repeats: the whole fix. */
  commands: string[];
  ok: boolean;
}

/**
 * Retransmission timeouts before a subflow counts as stale: the kernel's default. Lower values
 * looked faster but, measured over the test bed, stalled a quarter of failovers for 5-45 s.
 */
export const STALE_LOSS_CNT = 4;
/** First routing table number used for per-interface source routing in the advice. */
const TABLE_BASE = 100;

function sysctl(s: HostState, name: string): string | undefined {
  return s.sysctls[name];
}

function pathManager(s: HostState): string | null {
  const named = sysctl(s, 'path_manager');
  if (named) return named;
  const type = sysctl(s, 'pm_type');
  if (type === undefined) return null;
  return type === '0' ? 'kernel' : type === '1' ? 'userspace' : `type ${type}`;
}

function kernelChecks(s: HostState): Check[] {
  const checks: Check[] = [];
  if (s.nativeSockets) {
    checks.push({
      id: 'native',
      status: 'fail',
      summary: `mpgit cannot use MPTCP here: ${s.nativeSockets}`,
      advice: "install mpgit with its platform package (plain `npm i -g mpgit`, not --omit=optional) on a platform that has one; until then --mptcp connects over TCP",
    });
  }
  if (s.socketError) {
    checks.push({
      id: 'sockets',
      status: 'fail',
      summary: `the kernel does not create MPTCP sockets (${s.socketError})`,
      advice: 'use a kernel built with CONFIG_MPTCP=y (Linux 5.6 or later; 5.19+ recommended), and enable it',
      commands: ['sysctl -w net.mptcp.enabled=1'],
    });
  } else {
    checks.push({ id: 'sockets', status: 'ok', summary: 'the kernel creates MPTCP sockets' });
  }
  const enabled = sysctl(s, 'enabled');
  if (enabled === undefined) {
    checks.push({ id: 'enabled', status: 'fail', summary: 'no net.mptcp sysctls: this kernel has no MPTCP support', advice: 'use a kernel built with CONFIG_MPTCP=y' });
    return checks;
  }
  checks.push(
    enabled === '1'
      ? { id: 'enabled', status: 'ok', summary: 'net.mptcp.enabled = 1' }
      : { id: 'enabled', status: 'fail', summary: `net.mptcp.enabled = ${enabled}: MPTCP sockets are refused`, advice: 'turn MPTCP on', commands: ['sysctl -w net.mptcp.enabled=1'] },
  );
  const pm = pathManager(s);
  if (pm === 'kernel') {
    checks.push({ id: 'path-manager', status: 'ok', summary: 'path manager: in-kernel (configured with `ip mptcp limits` and `ip mptcp endpoint`)' });
  } else if (pm === 'userspace') {
    checks.push({
      id: 'path-manager',
      status: s.mptcpdRunning ? 'ok' : 'fail',
      summary: s.mptcpdRunning
        ? 'path manager: userspace, and mptcpd is running (it decides the subflows; `ip mptcp endpoint` is ignored)'
        : 'path manager: userspace, but no mptcpd is running: no connection will get a second subflow',
      advice: s.mptcpdRunning ? undefined : 'start mptcpd, or switch to the in-kernel path manager',
      commands: s.mptcpdRunning ? undefined : [sysctl(s, 'path_manager') !== undefined ? 'sysctl -w net.mptcp.path_manager=kernel' : 'sysctl -w net.mptcp.pm_type=0'],
    });
  } else {
    checks.push({ id: 'path-manager', status: 'warn', summary: `path manager: ${pm ?? 'unknown'}` });
  }
  const sched = sysctl(s, 'scheduler');
  if (sched !== undefined) {
    const avail = sysctl(s, 'available_schedulers');
    checks.push({ id: 'scheduler', status: 'info', summary: `packet scheduler: ${sched}${avail ? ` (available: ${avail})` : ''}` });
  }
  const stale = sysctl(s, 'stale_loss_cnt');
  if (stale !== undefined) {
    const n = Number(stale);
    const fix = [`sysctl -w net.mptcp.stale_loss_cnt=${STALE_LOSS_CNT}`];
    if (n === STALE_LOSS_CNT) {
      checks.push({ id: 'failover', status: 'ok', summary: `net.mptcp.stale_loss_cnt = ${n}: a dead link's subflow is given up after ${n} retransmission timeouts` });
    } else if (n < STALE_LOSS_CNT) {
      checks.push({
        id: 'failover',
        status: 'warn',
        summary: `net.mptcp.stale_loss_cnt = ${n}, below the kernel's ${STALE_LOSS_CNT}: when a link dies mid-transfer, some transfers stall for 5 to 45 s instead of about one`,
        advice: `set it back to ${STALE_LOSS_CNT} (measured over two links: ${STALE_LOSS_CNT} never stalled beyond ~2 s, 2 and 1 did in a quarter of the trials)`,
        commands: fix,
      });
    } else {
      checks.push({
        id: 'failover',
        status: 'info',
        summary: `net.mptcp.stale_loss_cnt = ${n}: a dead link stalls transfers for ${n} retransmission timeouts before its subflow is given up`,
        advice: `${STALE_LOSS_CNT} (the kernel's default) fails over sooner`,
        commands: fix,
      });
    }
  }
  return checks;
}

/** Interfaces other than the one new connections use: the extra paths, one address each. */
function extraAddresses(s: HostState): { extra: HostAddress[]; skipped: string[] } {
  const family = s.primary.family;
  const extra: HostAddress[] = [];
  const skipped: string[] = [];
  for (const i of s.interfaces) {
    const addrs = i.addresses.filter((a) => a.family === family);
    if (!addrs.length) continue;
    if (i.excluded) {
      skipped.push(`${i.ifname} (${i.excluded})`);
      continue;
    }
    if (!i.up) {
      skipped.push(`${i.ifname} (down)`);
      continue;
    }
    if (i.ifname === primaryDev(s)) continue;
    // Prefer the address that already is an endpoint, else the interface's first one.
    extra.push(addrs.find((a) => s.endpoints.some((e) => e.address === a.address)) ?? addrs[0]!);
  }
  return { extra, skipped };
}

/** The interface of the first subflow: the route's, or (no route) the first usable one. */
function primaryDev(s: HostState): string | null {
  if (s.primary.dev) return s.primary.dev;
  const first = s.interfaces.find((i) => !i.excluded && i.up && i.addresses.some((a) => a.family === s.primary.family));
  return first?.ifname ?? null;
}

function endpointFor(s: HostState, address: string): Endpoint | undefined {
  return s.endpoints.find((e) => e.address === address);
}

function pathsSummary(s: HostState, role: Role, extra: HostAddress[], skipped: string[]): Check {
  const dev = primaryDev(s);
  const first = s.primary.dev
    ? `${s.primary.dev}${s.primary.address ? ` (${s.primary.address})` : ''}`
    : `${dev ?? 'no interface'} (assumed: no route to ${s.target}${role === 'client' ? '; name the server with --peer' : ''})`;
  const more = extra.length ? extra.map((a) => `${a.ifname} (${a.address})`).join(', ') : 'none';
  const lead = role === 'client' ? `towards ${s.target}, the first subflow leaves from ${first}` : `main interface ${first}`;
  return {
    id: 'interfaces',
    status: 'info',
    summary: `${lead}; extra paths: ${more}${skipped.length ? `; not used: ${skipped.join(', ')}` : ''}`,
  };
}

function tableFor(s: HostState, a: HostAddress): string {
  const existing = s.sourceRules[a.address];
  if (existing) return existing;
  const index = s.interfaces.findIndex((i) => i.ifname === a.ifname);
  return String(TABLE_BASE + (index < 0 ? 0 : index));
}

function clientChecks(s: HostState): Check[] {
  const { extra, skipped } = extraAddresses(s);
  const checks: Check[] = [pathsSummary(s, 'client', extra, skipped)];
  const limits = s.limits;
  if (!extra.length) {
    checks.push({
      id: 'client-paths',
      status: 'ok',
      summary: 'one usable interface: connections use a single path (MPTCP still gives failover if the server announces addresses)',
    });
    if (limits && limits.addAddrAccepted < 1) {
      checks.push({
        id: 'client-add-addr',
        status: 'info',
        summary: 'add_addr_accepted = 0: addresses a server announces are ignored',
        advice: 'accept announced addresses to use a multi-homed server\'s extra paths',
        commands: [`ip mptcp limits set subflow ${Math.max(2, limits.subflows)} add_addr_accepted 2`],
      });
    }
    return checks;
  }
  const needSubflows = extra.length;
  if (!limits) {
    checks.push({ id: 'client-limits', status: 'fail', summary: 'could not read the path manager limits (`ip mptcp limits show`)' });
  } else {
    const subflowsOk = limits.subflows >= needSubflows;
    const accepted = limits.addAddrAccepted >= 1;
    const fix = `ip mptcp limits set subflow ${Math.max(needSubflows, limits.subflows, 2)} add_addr_accepted ${Math.max(limits.addAddrAccepted, 2)}`;
    checks.push(
      subflowsOk
        ? {
            id: 'client-limits',
            status: accepted ? 'ok' : 'warn',
            summary: `limits: ${limits.subflows} extra subflows, ${limits.addAddrAccepted} accepted announcements${accepted ? '' : ' (addresses a server announces are ignored)'}`,
            commands: accepted ? undefined : [fix],
          }
        : {
            id: 'client-limits',
            status: 'fail',
            summary: `limits: ${limits.subflows} extra subflows allowed, ${needSubflows} needed for ${needSubflows + 1} interfaces`,
            advice: 'allow one extra subflow per extra interface',
            commands: [fix],
          },
    );
  }
  for (const a of extra) {
    const ep = endpointFor(s, a.address);
    const add = `ip mptcp endpoint add ${a.address} dev ${a.ifname} subflow`;
    if (!ep) {
      checks.push({
        id: `client-endpoint:${a.ifname}`,
        status: 'fail',
        summary: `${a.ifname} (${a.address}) is not an MPTCP endpoint: connections will not use it`,
        advice: `register it so every MPTCP connection opens a second subflow from it`,
        commands: [add],
      });
    } else if (!ep.flags.includes('subflow')) {
      checks.push({
        id: `client-endpoint:${a.ifname}`,
        status: 'fail',
        summary: `${a.ifname} (${a.address}) is an endpoint with flags [${ep.flags.join(' ')}], without "subflow": this host will not open subflows from it`,
        advice: 'recreate it with the subflow flag',
        commands: [`ip mptcp endpoint delete id ${ep.id}`, add],
      });
    } else if (ep.dev === null) {
      checks.push({
        id: `client-endpoint:${a.ifname}`,
        status: 'warn',
        summary: `${a.ifname} (${a.address}) is a subflow endpoint without a device: its subflow may leave through another interface`,
        advice: 'bind it to its interface',
        commands: [`ip mptcp endpoint delete id ${ep.id}`, add],
      });
    } else {
      checks.push({ id: `client-endpoint:${a.ifname}`, status: 'ok', summary: `${a.ifname} (${a.address}) is a subflow endpoint (id ${ep.id}${ep.flags.includes('backup') ? ', backup' : ''})` });
    }
    const route = s.routes[a.address];
    if (route && route.dev === a.ifname) {
      checks.push({ id: `client-route:${a.ifname}`, status: 'ok', summary: `traffic from ${a.address} to ${s.target} leaves through ${a.ifname}` });
    } else {
      const table = tableFor(s, a);
      const iface = s.interfaces.find((i) => i.ifname === a.ifname);
      const via = iface?.gateway ? `via ${iface.gateway} ` : '';
      const cmds = [];
      if (!s.sourceRules[a.address]) cmds.push(`ip rule add from ${a.address} table ${table}`);
      cmds.push(`ip route replace default ${via}dev ${a.ifname} table ${table}`);
      checks.push({
        id: `client-route:${a.ifname}`,
        status: 'fail',
        summary: route?.error
          ? `no route from ${a.address} to ${s.target} (${route.error})`
          : `traffic from ${a.address} to ${s.target} leaves through ${route?.dev ?? 'no interface'}, not ${a.ifname}`,
        advice: `route traffic from ${a.address} out of ${a.ifname} (source routing${via ? '' : '; add "via <gateway>" if the link has a router'})`,
        commands: cmds,
      });
    }
  }
  return checks;
}

function serverChecks(s: HostState): Check[] {
  const { extra, skipped } = extraAddresses(s);
  const checks: Check[] = [pathsSummary(s, 'server', extra, skipped)];
  const limits = s.limits;
  if (!limits) {
    checks.push({ id: 'server-limits', status: 'fail', summary: 'could not read the path manager limits (`ip mptcp limits show`)' });
  } else {
    const need = Math.max(1, extra.length);
    checks.push(
      limits.subflows >= need
        ? { id: 'server-limits', status: 'ok', summary: `limits: a client may add ${limits.subflows} subflows to a connection` }
        : {
            id: 'server-limits',
            status: 'fail',
            summary: `limits: a client may add only ${limits.subflows} subflows to a connection`,
            advice: 'accept at least one extra subflow per client interface',
            commands: [`ip mptcp limits set subflow ${Math.max(2, need)} add_addr_accepted ${limits.addAddrAccepted}`],
          },
    );
  }
  const join = sysctl(s, 'allow_join_initial_addr_port');
  if (join !== undefined && join !== '1') {
    checks.push({
      id: 'server-join-initial',
      status: 'fail',
      summary: 'net.mptcp.allow_join_initial_addr_port = 0: clients cannot add subflows to the address they connected to',
      advice: 'allow it (multi-homed clients join the same server address from their other interfaces)',
      commands: ['sysctl -w net.mptcp.allow_join_initial_addr_port=1'],
    });
  }
  if (!extra.length) {
    checks.push({ id: 'server-announce', status: 'ok', summary: 'one usable interface: nothing to announce; multi-homed clients add subflows to this address' });
    return checks;
  }
  for (const a of extra) {
    const ep = endpointFor(s, a.address);
    const add = `ip mptcp endpoint add ${a.address} dev ${a.ifname} signal`;
    if (ep && ep.flags.includes('signal')) {
      checks.push({ id: `server-announce:${a.ifname}`, status: 'ok', summary: `${a.ifname} (${a.address}) is announced to clients (signal endpoint, id ${ep.id})` });
    } else {
      checks.push({
        id: `server-announce:${a.ifname}`,
        status: 'fail',
        summary: ep
          ? `${a.ifname} (${a.address}) is an endpoint with flags [${ep.flags.join(' ')}], without "signal": clients never learn of it`
          : `${a.ifname} (${a.address}) is not announced: clients never learn of this path`,
        advice: 'announce it, so clients open a subflow to it (they need add_addr_accepted >= 1)',
        commands: ep ? [`ip mptcp endpoint delete id ${ep.id}`, add] : [add],
      });
    }
  }
  return checks;
}

export function assess(s: HostState, role: Role): Assessment {
  const checks = kernelChecks(s);
  if (s.ipError) {
    checks.push({ id: 'ip', status: 'fail', summary: `cannot inspect the network configuration: ${s.ipError}`, advice: 'install iproute2 (the `ip` command)' });
  } else if (checks.every((c) => c.status !== 'fail')) {
    checks.push(...(role === 'client' ? clientChecks(s) : serverChecks(s)));
  }
  const commands: string[] = [];
  for (const c of checks) for (const cmd of c.commands ?? []) if (!commands.includes(cmd)) commands.push(cmd);
  return { role, kernel: s.kernel, checks, commands, ok: checks.every((c) => c.status !== 'fail') };
}

const MARK: Record<Status, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', info: 'info' };

/** The report for a terminal. */
export function formatAssessment(a: Assessment): string {
  const lines = [`Multipath TCP on this host (Linux ${a.kernel}), checked for use as a ${a.role === 'client' ? 'client (mpgit clone/fetch --mptcp)' : 'server (mpgit daemon --mptcp)'}:`];
  for (const c of a.checks) {
    lines.push(`  ${MARK[c.status]}  ${c.summary}`);
    if (c.advice && c.status !== 'ok') lines.push(`        -> ${c.advice}`);
  }
  if (a.commands.length) {
    lines.push('', a.ok ? 'Suggested (as root):' : 'To fix (as root):');
    for (const cmd of a.commands) lines.push(`  ${cmd}`);
    lines.push(
      '',
      'These settings last until reboot: put the `ip` commands in your network setup (e.g. a',
      'NetworkManager dispatcher script or systemd-networkd unit) and the sysctls in /etc/sysctl.d/.',
    );
  }
  lines.push('', a.ok ? 'MPTCP is ready.' : 'MPTCP is not ready: see FAIL above.');
  return lines.join('\n') + '\n';
}
