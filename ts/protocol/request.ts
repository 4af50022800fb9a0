// The git:// request line (gitprotocol-pack "git-proto-request"):
//   <service> SP <path> NUL [host=<host>[:<port>] NUL] [NUL <extra-parameter> NUL ...]
// Built by the client, parsed (strictly) by the daemon. Extra parameters such as
// "version=2" become GIT_PROTOCOL for the service process.

import { ProtocolError } from '../errors.js';
import { pkt } from '../pktline.js';

export const SERVICES = ['git-upload-pack', 'git-receive-pack', 'git-upload-archive'] as const;
export type Service = (typeof SERVICES)[number];

export interface GitRequest {
  service: Service;
  path: string;
  host?: string;
  port?: number;
  extra: string[];
}

/** The request as a pkt-line, ready to send. */
export function encodeRequest(r: GitRequest): Buffer {
  let body = `${r.service} ${r.path}\0`;
  if (r.host) body += `host=${r.host}${r.port ? `:${r.port}` : ''}\0`;
  if (r.extra.length) body += `\0${r.extra.map((e) => `${e}\0`).join('')}`;
  return pkt(body);
}

const HOST_RE = /^(?:\[[0-9a-fA-F:.%\w]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/;
const EXTRA_RE = /^[\x21-\x7e][\x20-\x7e]*$/;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function utf8Path(latin1: string): string {
  try {
    return UTF8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    throw new ProtocolError('the path in the request is not UTF-8', 'mpgit serves repositories whose paths are UTF-8');
  }
}

/** Parses the payload of the first pkt-line a git:// client sends. */
export function parseRequest(payload: Buffer): GitRequest {
  const text = payload.toString('latin1');
  const nul = text.indexOf('\0');
  // Old clients end the line with LF instead of NUL; git daemon accepts both.
  const line = (nul < 0 ? text : text.slice(0, nul)).replace(/\n$/, '');
  const sp = line.indexOf(' ');
  if (sp < 0) throw new ProtocolError(`malformed request line: no space between service and path`, 'send "git-upload-pack /path"');
  const service = line.slice(0, sp);
  if (!(SERVICES as readonly string[]).includes(service)) throw new ProtocolError(`unknown service ${JSON.stringify(service)}`);
  // The path is bytes (git's are), read here through latin1: as UTF-8 they name the file
  // ("café.git" is c a f 0xc3 0xa9), which is how node's file system calls take them.
  const path = utf8Path(line.slice(sp + 1));
  if (!path) throw new ProtocolError('malformed request line: empty path');
  if (/[\0-\x1f\x7f]/.test(path)) throw new ProtocolError('malformed request line: control characters in the path');
  const req: GitRequest = { service: service as Service, path, extra: [] };
  if (nul < 0) return req;
  // After the path: host parameter, then an empty field, then extra parameters.
  const fields = text.slice(nul + 1).split('\0');
  if (fields[fields.length - 1] !== '') throw new ProtocolError('malformed request line: parameters must end in NUL');
  fields.pop();
  let i = 0;
  if (i < fields.length && fields[i]!.startsWith('host=')) {
    const hostport = fields[i]!.slice(5);
    const m = HOST_RE.exec(hostport);
    if (!m) throw new ProtocolError(`malformed host parameter ${JSON.stringify(hostport)}`);
    if (m[1] !== undefined) {
      const port = Number(m[1]);
      if (port < 1 || port > 65535) throw new ProtocolError(`bad port in host parameter: ${m[1]}`);
      req.port = port;
      req.host = hostport.slice(0, hostport.length - m[1].length - 1);
    } else req.host = hostport;
    i++;
  }
  if (i < fields.length) {
    if (fields[i] !== '') throw new ProtocolError(`malformed request line: unexpected parameter ${JSON.stringify(fields[i])}`);
    i++;
    for (; i < fields.length; i++) {
      const e = fields[i]!;
      if (e === '') continue;
      if (!EXTRA_RE.test(e)) throw new ProtocolError(`malformed extra parameter ${JSON.stringify(e)}`);
      req.extra.push(e);
    }
  }
  return req;
}

/** The protocol version the extra parameters ask for (0 when none). */
export function requestedVersion(extra: string[]): number {
  let v = 0;
  for (const e of extra) {
    const m = /^version=(\d+)$/.exec(e);
    if (m) v = Math.max(v, Number(m[1]));
  }
  return v;
}
