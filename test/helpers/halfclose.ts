// Clients that stop sending early: a request (and maybe more) in one write, then FIN
// (shutdown(SHUT_WR)) while still reading the answer, as `printf ... | nc -N` does.

import net from 'node:net';
import { createHash } from 'node:crypto';
import { parsePkts, pkt, FLUSH, DELIM } from '../../ts/pktline.js';

export interface HalfCloseResult {
  bytes: Buffer;
  /** The server closed the connection (rather than our timeout ending it). */
  closed: boolean;
  ms: number;
}

/** Sends `send`, half-closes, reads until the server closes (or `timeoutMs`). */
export function halfClose(port: number, send: Buffer, timeoutMs = 15_000, host = '127.0.0.1'): Promise<HalfCloseResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect({ host, port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('connect', () => s.end(send));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => finish(true));
    s.on('error', () => finish(true));
  });
}

/** The git:// request line (as git sends it) with optional extra parameters. */
export function requestLine(path: string, extra: string[] = []): Buffer {
  const extras = extra.length ? `\0${extra.join('\0')}\0` : '';
  return pkt(`git-upload-pack ${path}\0host=127.0.0.1\0${extras}`);
}

/** A v2 command request: `command=X`, capabilities, delim, arguments, flush. */
export function v2Command(command: string, args: string[], caps: string[] = ['object-format=sha1']): Buffer {
  return Buffer.concat([pkt(`command=${command}\n`), ...caps.map((c) => pkt(`${c}\n`)), DELIM, ...args.map((a) => pkt(`${a}\n`)), FLUSH]);
}

/**
 * An answer's pkt-lines as text (`<flush>` etc. for special packets). Side-band data is joined
 * across packets (how a sender cuts it into packets varies) and shown by length and hash.
 */
export function pktLines(bytes: Buffer): string[] {
  const out: string[] = [];
  let band: { n: number; parts: Buffer[] } | null = null;
  const endBand = () => {
    if (!band) return;
    const all = Buffer.concat(band.parts);
    out.push(`<band ${band.n}: ${all.length} bytes, sha1 ${createHash('sha1').update(all).digest('hex')}>`);
    band = null;
  };
  for (const p of parsePkts(bytes)) {
    const b = p.kind === 'data' ? p.data[0]! : -1;
    const binary = p.kind === 'data' && (b === 1 || b === 2) && p.data.length >= 1 && !/^[\x20-\x7e\n]+$/.test(p.data.toString('latin1', 1));
    if (binary || (band && p.kind === 'data' && b === band.n)) {
      if (band && band.n !== b) endBand();
      band ??= { n: b, parts: [] };
      band.parts.push(p.data.subarray(1));
      continue;
    }
    endBand();
    out.push(p.kind === 'data' ? p.data.toString('utf8') : `<${p.kind}>`);
  }
  endBand();
  return out;
}
