// The git:// daemon: listeners (bound, or passed by systemd), a connection handler per client,
// the connection limit, and shutdown (stop accepting, let transfers finish within the grace
// period, then signal what is left). Also the --inetd mode: one connection on stdin/stdout.

import net from 'node:net';
import { writeFile, rm } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { socketFd, connInfo } from '../net/socket.js';
import { MpgitError } from '../errors.js';
import type { DaemonConfig } from './config.js';
import { DaemonLog, hostPort, type ConnLog } from './log.js';
import type { TransferRecord } from './access.js';
import { SyslogWriter } from './syslog.js';
import { LogFile } from './logfile.js';
import { bindListeners, systemdListeners, type Listener } from './listeners.js';
import { handleConnection } from './connection.js';
import type { ConnectionIO, ServiceHook } from './connection-types.js';
import { IdleWatch } from './idle.js';
import { PendingBudget, PendingDroppedError } from './pending.js';
import { Burst, FdBudget } from './fd-budget.js';
import { pkt } from '../pktline.js';
import { core } from '../core/index.js';
import { lookupUser } from './users.js';
import { logAccess } from './access.js';
import type { DaemonMetrics } from './metrics.js';
import type { PackCache } from '../cache/pack-cache.js';
import type { ReloadPlan } from './signals.js';
import type { GitProcess } from '../git.js';

export interface DaemonOptions {
  log?: DaemonLog;
  /** In-process handlers offered every accepted request before git serves it. */
  hooks?: ServiceHook[];
}

/** After the grace period: how long services get between SIGTERM and SIGKILL. */
const KILL_WAIT_MS = 3000;
/** Connections held while the daemon gets ready (beyond this, they are dropped). */
const MAX_EARLY = 1024;

interface Live {
  id: number;
  socket: net.Socket;
  child: GitProcess | null;
  /** The service process has the socket itself (not relayed through the daemon). */
  handedOver: boolean;
  /** Still waiting for the request line (counted by the pending budget, not --max-connections). */
  pending: boolean;
  address: string;
  since: number;
}

/** The log the settings ask for; `warn` takes the syslog writer's one warning (default stderr). */
export function makeLog(cfg: DaemonConfig, warn?: (text: string) => void): DaemonLog {
  if (cfg.logDestination === 'syslog') {
    const w = new SyslogWriter({ warn });
    return new DaemonLog({ format: cfg.logFormat, verbose: cfg.verbose, write: (line, level) => w.write(line, level), opened: w.opened, close: () => w.close() });
  }
  if (cfg.logDestination === 'file' && cfg.logFile) {
    const f = new LogFile(cfg.logFile, warn ?? ((t) => process.stderr.write(t)));
    return new DaemonLog({ format: cfg.logFormat, verbose: cfg.verbose, write: (line) => f.write(line), reopen: () => f.reopen(), close: async () => f.close() });
  }
  return new DaemonLog({ format: cfg.logFormat, verbose: cfg.verbose, write: cfg.logDestination === 'none' ? null : undefined });
}

/** Drops root for --user/--group, after the sockets are bound (as git daemon does). */
async function dropPrivileges(cfg: DaemonConfig): Promise<void> {
  if (!cfg.user) return;
  if (process.getuid?.() !== 0) throw new MpgitError('MPGIT_CONFIG', `--user ${cfg.user} needs the daemon to start as root`, 'start it as root, or drop --user');
  const pw = await lookupUser(cfg.user);
  if (!pw) throw new MpgitError('MPGIT_CONFIG', `--user ${cfg.user}: no such user`, 'give a user that `getent passwd` lists');
  try {
    const gid: number | string = cfg.group ? (/^\d+$/.test(cfg.group) ? Number(cfg.group) : cfg.group) : pw.gid;
    (process as unknown as { initgroups?: (user: string, extra: number | string) => void }).initgroups?.(pw.name, gid);
    process.setgid!(gid);
    process.setuid!(pw.uid);
    // git (the services, `git config`) reads $HOME/.gitconfig: the new user's, not root's.
    process.env.HOME = pw.home;
    process.env.USER = pw.name;
    delete process.env.XDG_CONFIG_HOME;
  } catch (e) {
    throw new MpgitError('MPGIT_CONFIG', `cannot switch to user ${cfg.user}${cfg.group ? ` and group ${cfg.group}` : ''}: ${(e as Error).message}`, 'check that the user and group exist');
  }
}

export class Daemon {
  readonly log: DaemonLog;
  listeners: Listener[] = [];
  /** The ready line logged once every address is bound ("Ready to rumble: listening on ..."). */
  readyText = '';
  private readonly hooks: ServiceHook[];
  private readonly live = new Map<number, Live>();
  private nextId = 0;
  private accepting = false;
  /** Connections accepted before the daemon was ready (systemd hands over queued clients). */
  private early: [net.Socket, Listener][] = [];
  private stopping: Promise<void> | null = null;
  private idle: (() => void) | null = null;
  private readonly idleWatch: IdleWatch<number>;
  private readonly pendingRefusals = new Burst();
  private readonly fds = new FdBudget();
  private readonly pendingBudget = new PendingBudget<Live>(() => ({ maxPending: this.cfg.maxPending, maxPerAddress: this.cfg.maxPendingPerAddress }));
  /** The pack cache (null: off, by setting or because it could not start). */
  packCache: PackCache | null = null;
  metrics: DaemonMetrics | null = null;
  private metricsServer: { close(): void } | null = null;

  private constructor(readonly cfg: DaemonConfig, opts: DaemonOptions) {
    this.log = opts.log ?? makeLog(cfg);
    this.hooks = opts.hooks ?? [];
    this.idleWatch = new IdleWatch(() => this.cfg.timeout * 1000, () => this.live.entries(), (id) => this.timedOut(id), () =>
      this.log.notice('timeout-blind', 'No connection counters (native addon not loaded): --timeout is left to git upload-pack for connections handed to it', {}),
    );
  }

  /** Binds (or adopts systemd's sockets), drops privileges, writes the pid file, logs "Ready". */
  static async start(cfg: DaemonConfig, opts: DaemonOptions = {}): Promise<Daemon> {
    const d = new Daemon(cfg, opts);
    const t0 = Date.now();
    const onConnection = (s: net.Socket, l: Listener) => d.accept(s, l);
    const activated = await systemdListeners({ log: d.log, onConnection });
    d.listeners = activated ?? (await bindListeners({ listen: cfg.listen, port: cfg.port, mptcp: cfg.mptcp, bindTimeoutMs: cfg.bindTimeout * 1000, log: d.log, onConnection }));
    const bindMs = Date.now() - t0;
    try {
      await dropPrivileges(cfg);
      if (cfg.pidFile) await writeFile(cfg.pidFile, `${process.pid}\n`);
      await d.startExtras();
    } catch (e) {
      d.metricsServer?.close();
      for (const l of d.listeners) l.server.close();
      for (const [s] of d.early) s.destroy();
      throw e;
    }
    d.accepting = true;
    d.idleWatch.start();
    const where = d.listeners.map((l) => `${hostPort(l.address, l.port)}${l.mptcp ? ' (MPTCP)' : l.mptcp === null ? '' : ' (TCP)'}`).join(', ');
    d.readyText = `Ready to rumble: listening on ${where}${activated ? ' (sockets from systemd)' : ''}; bound in ${bindMs} ms`;
    d.log.notice('ready', d.readyText, {
      listeners: d.listeners.map((l) => ({ address: l.address, port: l.port, mptcp: l.mptcp, from: l.from })),
      bindMs,
    });
    for (const [s, l] of d.early.splice(0)) d.accept(s, l);
    return d;
  }

  /** Metrics (--metrics-listen) and the pack cache, once bound and running as the final user. */
  private async startExtras(): Promise<void> {
    if (this.cfg.metricsListen) {
      const { DaemonMetrics, serveMetrics } = await import('./metrics.js');
      this.metrics = new DaemonMetrics();
      this.metricsServer = await serveMetrics(this.cfg.metricsListen, this.metrics, () =>
        this.accepting ? { ok: true, text: `ok: serving, ${this.live.size} connections` } : { ok: false, text: this.stopping ? 'stopping' : 'starting' },
      );
      this.log.notice('metrics', `Metrics on http://${this.cfg.metricsListen}/metrics (health: /healthz)`, { metricsListen: this.cfg.metricsListen });
    }
    await this.startCache();
  }

  private async startCache(): Promise<void> {
    const { startPackCache } = await import('./cache-setup.js');
    this.packCache = await startPackCache(this.cfg, this.log, this.metrics?.cacheEvents() ?? {});
  }

  /** SIGHUP: the live settings change in place (each connection reads them as it comes). */
  async applyReload(plan: ReloadPlan, next: DaemonConfig): Promise<void> {
    const cfg = this.cfg as unknown as Record<string, unknown>;
    for (const c of plan.apply) cfg[c.key] = next[c.key];
    this.log.reconfigure({ format: this.cfg.logFormat, verbose: this.cfg.verbose });
    if (plan.apply.some((c) => c.key === 'packCache')) {
      if (!this.cfg.packCache) {
        const old = this.packCache;
        this.packCache = null;
        // Transfers following a run keep it: it finishes in the background.
        void old?.close({ finishRuns: true });
      } else if (!this.packCache) await this.startCache();
    } else if (this.packCache && plan.apply.some((c) => c.key.startsWith('cache'))) {
      const { cacheBounds } = await import('./cache-setup.js');
      await this.packCache.setBounds(cacheBounds(this.cfg));
    }
  }

  /** Connections open right now. */
  get connections(): number {
    return this.live.size;
  }

  private accept(socket: net.Socket, listener: Listener): void {
    socket.on('error', () => {}); // a reset from the client is logged by the connection's own flow
    if (!this.accepting) {
      if (this.stopping) socket.destroy();
      else if (this.early.length < MAX_EARLY) this.early.push([socket, listener]);
      else socket.destroy();
      return;
    }
    const room = this.fds.room();
    if (!room.ok) {
      const r = this.fds.refusals.hit();
      if (r.log) this.log.error('out-of-fds', `Out of file descriptors: ${room.inUse} of ${room.limit} in use (RLIMIT_NOFILE): refusing new connections until some close${r.before ? ` (${r.before} more refused since the last such line)` : ''}`, { inUse: room.inUse, limit: room.limit });
      // Written and closed at once: the descriptor is free before libuv accepts the next one.
      const fd = socketFd(socket);
      try {
        if (fd !== null) writeSync(fd, pkt('ERR the server is out of file descriptors; try again later'));
      } catch {
        // the client is gone already
      }
      socket.destroy();
      return;
    }
    const id = ++this.nextId;
    const entry: Live = { id, socket, child: null, handedOver: false, pending: true, address: socket.remoteAddress ?? '', since: Date.now() };
    if (!this.admitPending(entry)) return;
    const info = connInfo(socket);
    this.live.set(id, entry);
    this.metrics?.opened(info ? info.mptcp : listener.mptcp === false ? false : null);
    const io: ConnectionIO = {
      id,
      input: socket,
      output: socket,
      stdio: [socket, socket],
      socket,
      infoFd: socketFd(socket),
      remote: socket.remoteAddress ? { address: socket.remoteAddress, port: socket.remotePort ?? 0 } : null,
      mptcp: info ? info.mptcp : listener.mptcp === false ? false : null,
      overLimit: () => {
        this.pendingBudget.done(entry);
        entry.pending = false;
        return this.cfg.maxConnections > 0 && this.active() > this.cfg.maxConnections;
      },
    };
    const metrics = this.metrics;
    const onFinished = (r: TransferRecord, log: ConnLog) => {
      logAccess(log, r);
      metrics?.finished(r);
    };
    handleConnection(io, { cfg: this.cfg, log: this.log, hooks: this.hooks, onChild: (c, handedOver) => Object.assign(entry, { child: c, handedOver }), packCache: this.packCache, onFinished })
      .catch((e) => this.log.error('internal-error', `connection ${id}: ${(e as Error).stack ?? e}`))
      .finally(() => {
        this.pendingBudget.done(entry);
        socket.destroy();
        metrics?.closed();
        this.live.delete(id);
        this.idleWatch.forget(id);
        if (this.live.size === 0) this.idle?.();
      });
  }

  /** Connections past their request line (what --max-connections counts). */
  private active(): number {
    let n = 0;
    for (const c of this.live.values()) if (!c.pending) n++;
    return n;
  }

  /**
   * The pending budget: stale connections pushed out make room (each logged and closed);
   * a newcomer with no room is refused with an ERR. False when refused.
   */
  private admitPending(entry: Live): boolean {
    const { evict, refuse } = this.pendingBudget.admit(entry);
    for (const e of evict) {
      const why = `Dropped: no request line after ${((Date.now() - e.since) / 1000).toFixed(1)} s, to make room for a new connection (--max-pending, --max-pending-per-address)`;
      this.log.connection(e.id).error('pending-dropped', why, { address: e.address });
      e.socket.destroy(new PendingDroppedError(why));
    }
    if (!refuse) return true;
    // Logged once a second at most: a flood must not become a flood of log lines.
    const r = this.pendingRefusals.hit();
    if (r.log) this.log.error('too-many-pending', `Refused a connection from ${entry.address}: ${this.cfg.maxPending} connections opened within the last second wait for their request line (--max-pending)${r.before ? ` (${r.before} more refused since the last such line)` : ''}`, { address: entry.address, unlogged: r.before });
    entry.socket.end(pkt(`ERR too many connections waiting to send a request (--max-pending ${this.cfg.maxPending}); try again later`));
    setTimeout(() => entry.socket.destroy(), 1000).unref();
    return false;
  }

  /** Nothing moved on a connection for --timeout: its service is ended and its socket closed. */
  private timedOut(id: number): void {
    const c = this.live.get(id);
    if (!c) return;
    this.log.connection(id).error('idle-timeout', `Timeout: no traffic for ${this.cfg.timeout} s: ending the connection`, { timeoutS: this.cfg.timeout });
    const child = c.child;
    if (child) {
      signalService(child, 'SIGTERM');
      setTimeout(() => signalService(child, 'SIGKILL'), KILL_WAIT_MS).unref();
    }
    c.socket.destroy();
  }

  /**
   * Stops accepting (the listening sockets close at once, so a new daemon can bind), waits up
   * to the grace period for connections in flight, then terminates the service processes left.
   */
  stop(graceMs = this.cfg.gracePeriod * 1000): Promise<void> {
    this.stopping ??= this.doStop(graceMs);
    return this.stopping;
  }

  private async doStop(graceMs: number): Promise<void> {
    this.accepting = false;
    // close() stops accepting at once (its callback would wait for every connection to end).
    for (const l of this.listeners) l.server.close();
    if (this.cfg.pidFile) await rm(this.cfg.pidFile, { force: true });
    if (this.live.size) {
      this.log.notice('shutdown', `Shutting down: waiting up to ${graceMs / 1000} s for ${this.live.size} connection${this.live.size === 1 ? '' : 's'} in flight`, { connections: this.live.size, graceMs });
      const drained = await this.waitIdle(graceMs);
      if (!drained) {
        this.log.error('shutdown-timeout', `Grace period over: terminating ${this.live.size} connection${this.live.size === 1 ? '' : 's'}`, { connections: this.live.size });
        this.signalAll('SIGTERM');
        if (!(await this.waitIdle(KILL_WAIT_MS))) this.signalAll('SIGKILL');
        await this.waitIdle(KILL_WAIT_MS);
      }
    }
    this.idleWatch.stop();
    this.metricsServer?.close();
    await this.packCache?.close();
    this.log.notice('stopped', 'Stopped', {});
  }

  /** Ends everything now (a second SIGTERM): services killed, sockets closed. */
  async abort(): Promise<void> {
    this.accepting = false;
    this.stopping ??= Promise.resolve();
    for (const l of this.listeners) l.server.close();
    this.signalAll('SIGKILL');
    await this.waitIdle(KILL_WAIT_MS);
    this.idleWatch.stop();
    if (this.cfg.pidFile) await rm(this.cfg.pidFile, { force: true });
  }

  private signalAll(sig: NodeJS.Signals): void {
    for (const c of this.live.values()) {
      if (c.child) signalService(c.child, sig);
      else c.socket.destroy();
    }
  }

  private waitIdle(ms: number): Promise<boolean> {
    if (this.live.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idle = null;
        resolve(false);
      }, ms);
      this.idle = () => {
        clearTimeout(timer);
        this.idle = null;
        resolve(true);
      };
    });
  }
}

/** Signals a service process that still runs, with its whole group (pack-objects too). */
function signalService(child: GitProcess, sig: NodeJS.Signals): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    child.kill(sig);
  }
}

/** --inetd: serves the one connection on stdin/stdout; resolves with the exit status. */
export async function serveInetd(cfg: DaemonConfig, opts: DaemonOptions = {}): Promise<number> {
  const log = opts.log ?? makeLog(cfg);
  const stdin = process.stdin;
  const sock = stdin instanceof net.Socket && typeof stdin.remoteAddress === 'string' ? stdin : null;
  let mptcp: boolean | null = null;
  if (sock && core.net) {
    try {
      mptcp = core.net.connInfo(0).mptcp;
    } catch {
      mptcp = null;
    }
  }
  const io: ConnectionIO = {
    id: 1,
    input: stdin,
    output: process.stdout,
    stdio: [0, 1],
    socket: null,
    infoFd: sock ? 0 : null,
    remote: sock ? { address: sock.remoteAddress!, port: sock.remotePort ?? 0 } : null,
    mptcp,
    overLimit: () => false,
  };
  await dropPrivileges(cfg);
  const r = await handleConnection(io, { cfg, log, hooks: opts.hooks ?? [], onChild: () => {}, onFinished: (t, l) => logAccess(l, t) });
  return r.exitCode;
}
