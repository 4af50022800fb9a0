// A hostile git:// server for client tests: real `git upload-pack` behind it, but every text
// pkt-line it answers goes through `rewrite` first (side-band pack data passes untouched), so
// a test can make an otherwise correct server lie in one place. Stopped when the test ends.

import net from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { pkt, FLUSH, DELIM, RESPONSE_END } from '../../ts/pktline.js';

export interface RewritingServer {
  port: number;
  url(path: string): string;
}

/** Re-frames upload-pack's pkt-line stream, rewriting each text line. */
function rewriter(rewrite: (line: string) => string) {
  let buf = Buffer.alloc(0);
  return (chunk: Buffer): Buffer => {
    buf = Buffer.concat([buf, chunk]);
    const out: Buffer[] = [];
    while (buf.length >= 4) {
      const len = parseInt(buf.subarray(0, 4).toString('latin1'), 16);
      if (len < 4) {
        out.push(len === 0 ? FLUSH : len === 1 ? DELIM : RESPONSE_END);
        buf = buf.subarray(4);
        continue;
      }
      if (buf.length < len) break;
      const data = buf.subarray(4, len);
      buf = buf.subarray(len);
      out.push(data[0]! <= 3 ? pkt(data) : pkt(Buffer.from(rewrite(data.toString('latin1')), 'latin1')));
    }
    return Buffer.concat(out);
  };
}

/**
 * Serves `base` over git:// on a free loopback port. `v0`: the client's version=2 is ignored,
 * as by a server that only speaks v0.
 */
export async function rewritingServer(t: ExecutionContext, base: string, rewrite: (line: string) => string, opts: { v0?: boolean } = {}): Promise<RewritingServer> {
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    sock.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      head = Buffer.concat([head, c]);
      if (head.length < 4) return;
      const len = parseInt(head.subarray(0, 4).toString('latin1'), 16);
      if (head.length < len) return;
      sock.off('data', onData);
      sock.pause();
      const fields = head.subarray(4, len).toString('latin1').split('\0');
      const path = fields[0]!.replace(/^git-upload-pack /, '');
      const version2 = !opts.v0 && fields.includes('version=2');
      const child = spawn('git', ['upload-pack', '--strict', join(base, path)], {
        env: { ...process.env, GIT_PROTOCOL: version2 ? 'version=2' : '' },
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      child.stdin.on('error', () => {});
      if (head.length > len) child.stdin.write(head.subarray(len));
      sock.pipe(child.stdin);
      const rw = rewriter(rewrite);
      child.stdout.on('data', (c: Buffer) => sock.write(rw(c)));
      child.on('close', () => sock.end());
    };
    sock.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  return { port, url: (path) => `git://127.0.0.1:${port}/${path.replace(/^\//, '')}` };
}
