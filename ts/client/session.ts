// One conversation with a remote, whatever protocol version the server answered in: list
// refs, fetch a pack, close. v2 runs ls-refs/fetch commands; v0 answers from the
// advertisement it already read and runs the one fetch a v0 connection allows.

import { Connection, type ConnectOptions } from './connection.js';
import type { GitUrl } from './url.js';
import type { RemoteRef } from '../protocol/wire.js';
import type { FetchRequest, PackResponse } from '../protocol/negotiation.js';
import * as v2 from '../protocol/v2.js';
import { v2Features } from '../protocol/capabilities.js';
import * as v0 from '../protocol/v0.js';

export class RemoteSession {
  private constructor(readonly conn: Connection) {}

  static async open(url: GitUrl, opts: ConnectOptions): Promise<RemoteSession> {
    return new RemoteSession(await Connection.open(url, opts));
  }

  get version(): 0 | 2 {
    return this.conn.handshake.version;
  }

  /** Refs whose names start with one of `prefixes` ("HEAD" included when asked for). */
  async listRefs(prefixes: string[]): Promise<RemoteRef[]> {
    const h = this.conn.handshake;
    if (h.version === 2) return v2.lsRefs(this.conn, h.caps, { prefixes, symrefs: true, peel: true, unborn: true });
    const all = h.advertisement.refs;
    return prefixes.length ? all.filter((r) => prefixes.some((p) => r.name.startsWith(p))) : all;
  }

  /** Whether the server advertises a bundle list (v2 `bundle-uri`). */
  get offersBundles(): boolean {
    const h = this.conn.handshake;
    return h.version === 2 && h.caps.has('bundle-uri');
  }

  /** The server's bundle list as `key=value` lines (v2 `bundle-uri`). */
  bundleUri(): Promise<string[]> {
    const h = this.conn.handshake;
    if (h.version !== 2) return Promise.resolve([]);
    return v2.bundleUri(this.conn, h.caps);
  }

  /** The server takes a fetch `filter` (partial clone). */
  offersFilter(): boolean {
    const h = this.conn.handshake;
    return h.version === 2 ? v2Features(h.caps, 'fetch').has('filter') : h.advertisement.caps.has('filter');
  }

  async fetch(req: FetchRequest): Promise<PackResponse> {
    const h = this.conn.handshake;
    if (h.version === 2) return v2.fetchPack(this.conn, h.caps, req);
    this.conn.fetched = true;
    return v0.fetchPack(this.conn, h.advertisement, req);
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  destroy(): void {
    this.conn.destroy();
  }
}
