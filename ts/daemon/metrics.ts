// --metrics-listen ADDR:PORT: Prometheus text on /metrics (prom-client) and /healthz. Names
// carry their units (`_seconds`, `_bytes`, `_total`). Fed by the daemon: a connection's open
// and its TransferRecord at the end, and the pack cache's events.

import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TransferRecord } from './access.js';
import type { CacheEvents, CacheResult } from '../cache/pack-cache.js';
import { MpgitError } from '../errors.js';

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly current: Gauge;
  private readonly connections: Counter;
  private readonly transports: Counter;
  private readonly subflows: Histogram;
  private readonly sent: Counter;
  private readonly received: Counter;
  private readonly duration: Histogram;
  private readonly refusals: Counter;
  private readonly exits: Counter;
  private readonly uris: Counter;
  private readonly cacheRequests: Counter;
  private readonly cacheHits: Counter;
  private readonly cacheMisses: Counter;
  private readonly cacheServed: Counter;
  private readonly cacheStored: Gauge;
  private readonly cacheEvictions: Counter;
  private readonly cacheEvictedBytes: Counter;

  constructor() {
    const r = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mpgit_' });
    this.current = new Gauge({ name: 'mpgit_connections_current', help: 'Connections open now', registers: r });
    this.connections = new Counter({ name: 'mpgit_connections_total', help: 'Connections ended, by service and result (ok, error, refused, gone)', labelNames: ['service', 'result'], registers: r });
    this.transports = new Counter({ name: 'mpgit_connections_transport_total', help: 'Connections accepted, by transport (mptcp, tcp, unknown)', labelNames: ['transport'], registers: r });
    this.subflows = new Histogram({ name: 'mpgit_mptcp_subflows', help: 'Subflows that carried data, per MPTCP connection', buckets: [1, 2, 3, 4, 8], registers: r });
    this.sent = new Counter({ name: 'mpgit_sent_bytes_total', help: 'Bytes sent to clients (kernel counters), by service', labelNames: ['service'], registers: r });
    this.received = new Counter({ name: 'mpgit_received_bytes_total', help: 'Bytes received from clients (kernel counters), by service', labelNames: ['service'], registers: r });
    this.duration = new Histogram({
      name: 'mpgit_transfer_duration_seconds',
      help: 'Duration of served connections, by service',
      labelNames: ['service'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers: r,
    });
    this.refusals = new Counter({ name: 'mpgit_refusals_total', help: 'Requests refused, by reason', labelNames: ['reason'], registers: r });
    this.exits = new Counter({ name: 'mpgit_upload_pack_exits_total', help: 'upload-pack processes ended, by exit code', labelNames: ['code'], registers: r });
    this.uris = new Counter({ name: 'mpgit_packfile_uris_total', help: 'Packfile URIs named to clients', registers: r });
    this.cacheRequests = new Counter({ name: 'mpgit_pack_cache_requests_total', help: 'pack-objects requests, by what the cache did (hit, join, miss, bypass)', labelNames: ['result'], registers: r });
    this.cacheHits = new Counter({ name: 'mpgit_pack_cache_hits_total', help: 'Requests served without running pack-objects (a complete entry, or one being written)', registers: r });
    this.cacheMisses = new Counter({ name: 'mpgit_pack_cache_misses_total', help: 'Requests that ran pack-objects', registers: r });
    this.cacheServed = new Counter({ name: 'mpgit_pack_cache_served_bytes_total', help: 'Bytes of pack served from cache files', registers: r });
    this.cacheStored = new Gauge({ name: 'mpgit_pack_cache_stored_bytes', help: 'Bytes of entries on disk', registers: r });
    this.cacheEvictions = new Counter({ name: 'mpgit_pack_cache_evictions_total', help: 'Entries removed, by reason (size, age, corrupt, too-big)', labelNames: ['reason'], registers: r });
    this.cacheEvictedBytes = new Counter({ name: 'mpgit_pack_cache_evicted_bytes_total', help: 'Bytes of entries removed', registers: r });
    for (const result of ['hit', 'join', 'miss', 'bypass']) this.cacheRequests.inc({ result }, 0);
  }

  opened(mptcp: boolean | null): void {
    this.current.inc();
    this.transports.inc({ transport: mptcp === null ? 'unknown' : mptcp ? 'mptcp' : 'tcp' });
  }

  closed(): void {
    this.current.dec();
  }

  finished(t: TransferRecord): void {
    const service = t.service ?? 'none';
    const result = t.result === 'served' ? (t.exitCode === 0 ? 'ok' : 'error') : t.result;
    this.connections.inc({ service, result });
    if (t.bytesSent !== null) this.sent.inc({ service }, t.bytesSent);
    if (t.bytesReceived !== null) this.received.inc({ service }, t.bytesReceived);
    if (t.result === 'refused') this.refusals.inc({ reason: t.refusal ?? 'unknown' });
    if (t.result === 'served') {
      this.duration.observe({ service }, t.durationMs / 1000);
      if (t.service === 'upload-pack') this.exits.inc({ code: String(t.exitCode) });
    }
    if (t.mptcp && t.subflowsUsed !== null) this.subflows.observe(t.subflowsUsed);
    if (t.packfileUris) this.uris.inc(t.packfileUris);
  }

  /** The pack cache's events, counted. */
  cacheEvents(warn?: (text: string) => void): CacheEvents {
    return {
      request: (r: CacheResult) => {
        this.cacheRequests.inc({ result: r });
        if (r === 'hit' || r === 'join') this.cacheHits.inc();
        if (r === 'miss') this.cacheMisses.inc();
      },
      served: (n) => this.cacheServed.inc(n),
      size: (n) => this.cacheStored.set(n),
      evicted: (reason, bytes) => {
        this.cacheEvictions.inc({ reason });
        this.cacheEvictedBytes.inc(bytes);
      },
      warn,
    };
  }
}

/** "127.0.0.1:9419" / "[::1]:9419" -> host and port. */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s);
  if (!m || Number(m[3]) > 65535) throw new MpgitError('MPGIT_CONFIG', `--metrics-listen ${s}: expected ADDR:PORT`, 'e.g. 127.0.0.1:9419 or [::1]:9419');
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** Serves /metrics and /healthz; `healthy` says whether the daemon accepts connections. */
export async function serveMetrics(listen: string, metrics: DaemonMetrics, healthy: () => { ok: boolean; text: string }): Promise<http.Server> {
  const { host, port } = parseListen(listen);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (e) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`),
      );
    } else if (path === '/healthz') {
      const h = healthy();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${h.text}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new MpgitError('MPGIT_BIND', `--metrics-listen ${listen}: ${(e as Error).message}`, 'pick a free address and port')));
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return server;
}
