// A real nginx per test, serving a directory over HTTP on a free port (config in a temp dir,
// `daemon off`, single process, stopped when the test ends), with an access log the test reads:
// what was requested, with which Range, and how many body bytes went out. Plus a TCP proxy
// that puts network faults (a cut connection, a stall) between a client and that nginx.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { freePort } from './proc.js';

/** What the helpers need of a test: somewhere to register cleanup (benches pass their own). */
export type Teardown = Pick<ExecutionContext, 'teardown'>;

export interface AccessEntry {
  method: string;
  uri: string;
  status: number;
  /** Body bytes sent (what a resumed download fetched again). */
  bytes: number;
  /** The request's Range header, '' when none. */
  range: string;
}

export interface Nginx {
  port: number;
  /** http://127.0.0.1:<port> (no trailing slash). */
  baseUrl: string;
  root: string;
  /** The access log so far, one entry per finished request. */
  accessLog(): Promise<AccessEntry[]>;
  /** Makes every request answer 503 (a maintenance flag file nginx checks) until turned off. */
  setUnavailable(on: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** Body rate limit per connection, bytes/s (nginx limit_rate); 0 = none. */
  limitRate?: number;
}

const START_TIMEOUT_MS = 10_000;
const UNAVAILABLE_FLAG = '.mpgit-unavailable';

/**
 * A single-process nginx.conf with everything under `dir` (pid, temp paths, error log), one
 * server on `listen` serving `root`, and an access log of JSON lines (see AccessEntry).
 */
export function nginxConfig(dir: string, o: { listen: string; root: string; log: string; locations?: string }): string {
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  log_format mpgit escape=json '{"method":"$request_method","uri":"$uri","status":$status,"bytes":$body_bytes_sent,"range":"$http_range"}';
  access_log ${o.log} mpgit;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 30s;
  server {
    listen ${o.listen};
    root ${o.root};${o.locations ?? ''}
  }
}
`;
}

/** Starts nginx serving `root` (read-only) on 127.0.0.1 at a free port. */
export async function startNginx(t: Teardown, root: string, opts: NginxOptions = {}): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'mpgit-nginx-'));
  const port = await freePort();
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const log = join(dir, 'access.log');
  const flag = join(dir, UNAVAILABLE_FLAG);
  // Ready means this nginx answers on the port: a port picked as free may have been taken by
  // another test's server meanwhile, which a bare connect would not notice.
  const token = randomBytes(8).toString('hex');
  const conf = nginxConfig(dir, {
    listen: `127.0.0.1:${port}`,
    root,
    log,
    locations: `
    location = /.mpgit-nginx-ready { access_log off; return 200 "${token}"; }
    location / {
      if (-f ${flag}) { return 503; }
      # A rate limit that holds: with sendfile, one call can hand the kernel megabytes at once
      # (as much as loopback's socket buffers take), far past the rate.
      ${opts.limitRate ? `limit_rate ${opts.limitRate}; sendfile off;` : ''}
    }`,
  });
  await writeFile(join(dir, 'nginx.conf'), conf);
  await writeFile(log, '');
  const child = spawn('nginx', ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  };
  t.teardown(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const errLog = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
      throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}) before listening: ${output}\n${errLog}`);
    }
    if ((await fetchText(port, '/.mpgit-nginx-ready')) === token) break;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port} within ${START_TIMEOUT_MS} ms: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    root,
    async accessLog() {
      const text = await readFile(log, 'utf8');
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AccessEntry);
    },
    async setUnavailable(on: boolean) {
      if (on) await writeFile(flag, '');
      else await rm(flag, { force: true });
    },
    stop,
  };
}

/** The body of a small GET, or null when nothing answers. */
function fetchText(port: number, path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => body.length < 4096 && (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : null));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/** What the proxy does to one connection's response stream. */
export type Fault =
  | { kind: 'cut'; afterBytes: number }
  | { kind: 'reset'; afterBytes: number }
  | { kind: 'stall'; afterBytes: number }
  | { kind: 'pass' };

export interface FaultProxy {
  port: number;
  baseUrl: string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * A TCP proxy to 127.0.0.1:`targetPort`. Connection i (from 0) gets faults[i] (pass-through once
 * the list runs out): after that many response bytes, 'cut' closes the connection (a truncated
 * body), 'reset' resets it (RST: the peer may lose what it had not read yet), 'stall' stops
 * forwarding and holds the connection open.
 */
export async function faultProxy(t: Teardown, targetPort: number, faults: Fault[]): Promise<FaultProxy> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const fault = faults[count++] ?? { kind: 'pass' };
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    client.pipe(upstream);
    let sent = 0;
    let stalled = false;
    upstream.on('data', (c: Buffer) => {
      if (stalled) return;
      if (fault.kind !== 'pass' && sent + c.length >= fault.afterBytes) {
        const keep = c.subarray(0, fault.afterBytes - sent);
        sent += keep.length;
        if (fault.kind === 'cut' || fault.kind === 'reset') {
          client.write(keep, () => (fault.kind === 'cut' ? client.end() : client.resetAndDestroy()));
          upstream.destroy();
          stalled = true;
        } else {
          client.write(keep);
          stalled = true;
          upstream.pause();
        }
        return;
      }
      sent += c.length;
      client.write(c);
    });
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  t.teardown(close);
  return { port, baseUrl: `http://127.0.0.1:${port}`, connections: () => count, close };
}
