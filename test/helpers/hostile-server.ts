// A scriptable fake git:// server (protocol v2) for feeding `mpgit clone` and `mpgit fetch`
// what no honest server sends: the refs, the ls-refs lines, the pack bytes, the packfile URIs
// and how the connection ends are all the script's. And a hostile HTTP server for packfile
// URIs and bundle URIs: wrong bytes, bodies that never end, redirect loops, 416, a file that
// changes under If-Range. Both listen on loopback only and close when the test ends.

import http from 'node:http';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { DELIM, FLUSH, PktReader, pkt, pktLine, pktText } from '../../ts/pktline.js';
import { readCommand } from '../../ts/serve/serve.js';

export interface HostileScript {
  /** ls-refs answer lines, verbatim ("<oid> <name> [symref-target:<t>]"). */
  refs: string[] | (() => Iterable<string>);
  /** Bytes sent after the `packfile` section header, in side-band 1. */
  pack?: Buffer;
  /** `packfile-uris` section lines ("<hash> <uri>"); offers the feature when given. */
  packfileUris?: string[];
  /** Hang up after this many pack bytes (a cut transfer). */
  cutAfter?: number;
  /** After this many pack bytes, send nothing more and keep the connection open. */
  stallAfter?: number;
  /** Raw bytes instead of the whole fetch response (for answers no section parser expects). */
  rawFetchResponse?: Buffer;
  /** `bundle-uri` answer lines ("bundle.version=1", ...); offers the command when given. */
  bundleList?: string[];
}

export interface HostileServer {
  port: number;
  url(path?: string): string;
  /** Commands received, in order ("ls-refs", "fetch"). */
  commands: string[];
}

const CHUNK = 65515 - 1;

async function send(sock: net.Socket, data: Buffer): Promise<void> {
  if (sock.destroyed) return;
  if (!sock.write(data)) await new Promise<void>((r) => sock.once('drain', r).once('close', r));
}

async function* lines(src: HostileScript['refs']): AsyncGenerator<Buffer> {
  const it = typeof src === 'function' ? src() : src;
  let batch: Buffer[] = [];
  for (const l of it) {
    batch.push(pktLine(l));
    if (batch.length >= 1024) {
      yield Buffer.concat(batch);
      batch = [];
    }
  }
  yield Buffer.concat([...batch, FLUSH]);
}

async function serveFetch(sock: net.Socket, s: HostileScript): Promise<boolean> {
  if (s.rawFetchResponse) {
    await send(sock, s.rawFetchResponse);
    return true;
  }
  if (s.packfileUris) await send(sock, Buffer.concat([pktLine('packfile-uris'), ...s.packfileUris.map((l) => pktLine(l)), DELIM]));
  await send(sock, pktLine('packfile'));
  const pack = s.pack ?? Buffer.alloc(0);
  const limit = Math.min(pack.length, s.cutAfter ?? Infinity, s.stallAfter ?? Infinity);
  for (let at = 0; at < limit; at += CHUNK) {
    await send(sock, pkt(Buffer.concat([Buffer.from([1]), pack.subarray(at, Math.min(at + CHUNK, limit))])));
  }
  if (s.cutAfter !== undefined && s.cutAfter < pack.length) {
    sock.destroy();
    return false;
  }
  if (s.stallAfter !== undefined && s.stallAfter < pack.length) return false;
  await send(sock, FLUSH);
  return true;
}

/** Starts the fake server; it answers every connection with `script`. */
export async function startHostileServer(t: ExecutionContext, script: HostileScript): Promise<HostileServer> {
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    void (async () => {
      const reader = new PktReader(sock, { timeoutMs: 30_000, what: 'the client' });
      const first = await reader.read();
      if (!first || !pktText(first).startsWith('git-upload-pack ')) return sock.destroy();
      const fetch = `fetch=shallow${script.packfileUris ? ' packfile-uris' : ''}`;
      const caps = ['version 2', 'agent=git/2.39.2', 'ls-refs=unborn', fetch, 'server-option', 'object-format=sha1', ...(script.bundleList ? ['bundle-uri'] : [])];
      await send(sock, Buffer.concat([...caps.map((l) => pktLine(l)), FLUSH]));
      for (;;) {
        const req = await readCommand(reader);
        if (!req) break;
        commands.push(req.command);
        if (req.command === 'ls-refs') for await (const b of lines(script.refs)) await send(sock, b);
        else if (req.command === 'bundle-uri') await send(sock, Buffer.concat([...(script.bundleList ?? []).map((l) => pktLine(l)), FLUSH]));
        else if (req.command === 'fetch' && !(await serveFetch(sock, script))) return;
      }
      sock.end();
    })().catch(() => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  return { port, url: (path = 'hostile.git') => `git://127.0.0.1:${port}/${path}`, commands };
}

export type UriMode =
  | { kind: 'serve'; body: Buffer }
  | { kind: 'wrong-bytes'; body: Buffer }
  | { kind: 'never-ends'; body: Buffer; sendFirst: number }
  | { kind: 'redirect-loop' }
  | { kind: 'status'; status: number }
  | { kind: 'changes-under-if-range'; first: Buffer; then: Buffer };

/** A hostile HTTP server for one pack path; `requests` counts what it was asked. */
export async function startUriServer(t: ExecutionContext, mode: UriMode): Promise<{ url: string; requests: { range?: string; ifRange?: string }[] }> {
  const requests: { range?: string; ifRange?: string }[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    const etag = '"hostile-1"';
    switch (mode.kind) {
      case 'serve':
      case 'wrong-bytes':
        res.writeHead(200, { 'content-length': mode.body.length, etag });
        return res.end(mode.body);
      case 'never-ends':
        res.writeHead(200, { 'content-length': mode.body.length, etag });
        return res.write(mode.body.subarray(0, mode.sendFirst)); // and nothing more, ever
      case 'redirect-loop':
        res.writeHead(302, { location: req.url ?? '/' });
        return res.end();
      case 'status':
        res.writeHead(mode.status, { 'content-range': 'bytes */0' });
        return res.end();
      case 'changes-under-if-range': {
        // First answer: half of one file, then the connection dies. Later: a range of another
        // file, as if If-Range had matched.
        if (requests.length === 1) {
          res.writeHead(200, { 'content-length': mode.first.length, etag });
          res.write(mode.first.subarray(0, mode.first.length >> 1));
          return setTimeout(() => res.destroy(), 50);
        }
        const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
        const from = m ? Number(m[1]) : 0;
        res.writeHead(m ? 206 : 200, { 'content-length': mode.then.length - from, etag, ...(m ? { 'content-range': `bytes ${from}-${mode.then.length - 1}/${mode.then.length}` } : {}) });
        return res.end(mode.then.subarray(from));
      }
    }
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/pack-hostile.pack`, requests };
}
