// `mpgit daemon` for tests: started on a free loopback port, ready once it logs "Ready to
// rumble", killed when the test ends. Also a raw git:// connection for requests no git client
// would send.

import net from 'node:net';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { ExecutionContext } from 'ava';
import type { SpawnOptions } from 'node:child_process';
import { freePort, MPGIT, start, tempDir, type Running } from './proc.js';
import { parsePkts } from '../../ts/pktline.js';

export interface MpgitDaemonHandle {
  port: number;
  proc: Running;
  /** git://127.0.0.1:PORT/<path> */
  url(path: string): string;
  /** How long binding took, as the daemon's ready line says. */
  bindMs: number | null;
}

export interface StartDaemonOptions extends SpawnOptions {
  /** Port to use (default: a free one). */
  port?: number;
  /** Default: --listen=127.0.0.1 unless args carry a --listen of their own. */
  listen?: boolean;
  /** How long to wait for readiness (ms). */
  readyTimeoutMs?: number;
}

export const READY_RE = /Ready to rumble: listening on ([^\n]*)/;

/** Starts `mpgit daemon --verbose <args>` and waits until it is ready. */
export async function startDaemon(t: ExecutionContext, args: string[], opts: StartDaemonOptions = {}): Promise<MpgitDaemonHandle> {
  const port = opts.port ?? (await freePort());
  const listen = opts.listen ?? !args.some((a) => a.startsWith('--listen'));
  // Each daemon its own pack cache: tests never share entries (nor fill the user's cache).
  const cache = args.some((a) => /^--(cache-dir|no-pack-cache|config)\b/.test(a)) ? [] : [`--cache-dir=${await tempDir(t, 'mpgit-cache-')}`];
  const argv = [MPGIT, 'daemon', '--verbose', `--port=${port}`, ...(listen ? ['--listen=127.0.0.1'] : []), ...cache, ...args];
  const proc = start(t, process.execPath, argv, opts);
  await proc.waitFor(READY_RE, opts.readyTimeoutMs ?? 30_000);
  const m = /bound in (\d+) ms/.exec(proc.output());
  return { port, proc, url: (path) => `git://127.0.0.1:${port}/${path.replace(/^\//, '')}`, bindMs: m ? Number(m[1]) : null };
}

/** Lines of the daemon's log that match `re`. */
export function logLines(d: { proc: Running }, re: RegExp): string[] {
  return d.proc.output().split('\n').filter((l) => re.test(l));
}

/**
 * Sends raw bytes to a daemon and returns all it answers until it closes the connection
 * (bounded by `timeoutMs`), with `ERR` pkt-lines decoded where the answer is pkt-lines.
 */
export function rawExchange(port: number, send: Buffer, timeoutMs = 10_000, host = '127.0.0.1'): Promise<{ bytes: Buffer; text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      finish(false);
    }, timeoutMs);
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(chunks);
      let text: string;
      try {
        text = parsePkts(bytes)
          .map((p) => (p.kind === 'data' ? p.data.toString('utf8') : `<${p.kind}>`))
          .join('');
      } catch {
        text = bytes.toString('utf8');
      }
      resolve({ bytes, text, closed });
    };
    s.on('connect', () => s.write(send));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      s.end();
      finish(true);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ECONNRESET') finish(true);
      else reject(e);
    });
  });
}

/** Connects and holds a TCP connection open (closed when the test ends). */
export function holdConnection(t: ExecutionContext, port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => resolve(s));
    s.on('error', reject);
    t.teardown(() => s.destroy());
  });
}

export interface SyslogSink {
  /** The unix datagram socket (give it to the daemon as MPGIT_SYSLOG_SOCKET). */
  socket: string;
  /** The datagrams received so far, one per entry. */
  lines(): Promise<string[]>;
  /** Resolves with the first received line matching `re` (rejects after timeoutMs). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

// A syslog stand-in: a unix datagram socket (what /dev/log is) whose datagrams are appended to a
// file, one per line. Node has no unix datagram sockets, hence python3.
const SYSLOG_PY = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], 'ab', buffering=0) as f:
    print('listening', flush=True)
    time.sleep(float(sys.argv[3]))
    while True:
        f.write(s.recv(65536).rstrip(b'\\n') + b'\\n')
`;

/** Starts a syslog stand-in, stopped when the test ends; `stallMs`: it reads nothing at first. */
export async function syslogSink(t: ExecutionContext, opts: { stallMs?: number } = {}): Promise<SyslogSink> {
  const dir = await tempDir(t, 'mpgit-syslog-');
  const socket = join(dir, 'log.sock');
  const file = join(dir, 'received');
  const proc = start(t, 'python3', ['-c', SYSLOG_PY, socket, file, String((opts.stallMs ?? 0) / 1000)]);
  await proc.waitFor(/listening/, 15_000);
  const lines = async () => {
    try {
      return (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
    } catch {
      return [];
    }
  };
  return {
    socket,
    lines,
    async waitFor(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = (await lines()).find((l) => re.test(l));
        if (hit !== undefined) return hit;
        if (Date.now() > deadline) throw new Error(`${re} did not reach syslog within ${timeoutMs} ms; received:\n${(await lines()).join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
