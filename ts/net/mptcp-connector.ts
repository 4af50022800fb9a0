// HTTP over Multipath TCP: an undici connector whose sockets come from ./socket.ts.

import net from 'node:net';
import tls from 'node:tls';
import type { buildConnector } from 'undici';
import { connect } from './socket.js';

/**
 * An undici connector whose sockets are MPTCP (made in Rust, see net/socket.ts): the bulk of a
 * clone then rides every link, as the git:// connection does. TLS goes on top for https.
 */
export function mptcpConnector(timeoutMs: number): buildConnector.connector {
  return (o, callback) => {
    const port = Number(o.port) || (o.protocol === 'https:' ? 443 : 80);
    connect(o.hostname, port, { mptcp: true, timeoutMs }).then(
      ({ socket }) => {
        socket.setNoDelay(true);
        if (o.protocol !== 'https:') return callback(null, socket);
        const servername = o.servername ?? (net.isIP(o.hostname.replace(/^\[|\]$/g, '')) ? undefined : o.hostname);
        const secure = tls.connect({ socket, servername, ALPNProtocols: ['http/1.1'] });
        const fail = (e: Error) => {
          secure.destroy();
          callback(e, null);
        };
        const timer = setTimeout(() => fail(new Error(`TLS handshake with ${o.hostname}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
        secure.once('error', (e) => {
          clearTimeout(timer);
          fail(e);
        });
        secure.once('secureConnect', () => {
          clearTimeout(timer);
          secure.removeAllListeners('error');
          callback(null, secure);
        });
      },
      (e: Error) => callback(e, null),
    );
  };
}
