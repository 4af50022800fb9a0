// The daemon's pack cache for every repository. upload-pack runs our hook program in place of
// `git pack-objects`; the hook hands the request to this server over a unix socket, and we
// answer with the file to copy: a complete entry (hit), the file of a run in progress for the
// same key (joined), or a new run's file (miss). The key is the repository, pack-objects'
// arguments and the request bytes (wants, haves, shallow lines), plus the tags when
// `--include-tag` lets the refs decide what goes in: a ref change is a new key, never a stale
// pack. Each upload-pack gets a token naming its repository; requests without a live token
// are refused (the socket is the daemon user's, mode 0600, but tokens also tie each request
// to its connection for the access log).

import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackStore, type CacheBounds, type EvictReason } from './store.js';
import { Production, type Follower } from './production.js';
import { hookConfigArgs } from './hook-path.js';

export type CacheResult = 'hit' | 'join' | 'miss' | 'bypass';

export interface CacheEvents {
  request?(result: CacheResult): void;
  /** Bytes of pack served to upload-pack from the cache's files. */
  served?(bytes: number): void;
  evicted?(reason: EvictReason, bytes: number): void;
  size?(bytes: number): void;
  warn?(text: string): void;
}

export interface Lease {
  /** `git -c` arguments for upload-pack. */
  gitArgs: string[];
  env: Record<string, string>;
  /** What the cache did for this connection (the last pack-objects request); null: none came. */
  readonly result: CacheResult | null;
  /** The keys of the pack-objects requests made under this lease, in order. */
  readonly keys: readonly string[];
  /** The first key asked under this lease (null if it was released without one). */
  readonly firstKey: Promise<string | null>;
  release(): void;
}



/** Longest header line (`mpgit-pack-hook 1 token argc len`) plus arguments. */
const MAX_HEAD = 64 * 1024;
/** Largest request body (the hook refuses more itself). */
const MAX_REQUEST = 256 << 20;
/** Keys whose occurrences are counted (for minOccurrences), most recent kept. */
const MAX_COUNTED = 10_000;
const ARG = /^--[a-z0-9-]+(=[^\n]*)?$/;

interface LeaseState {
  gitDir: string;
  result: CacheResult | null;
  keys: string[];
  keyed(key: string | null): void;
}

const RANK: Record<CacheResult, number> = { bypass: 0, hit: 1, join: 2, miss: 3 };

/** The tags (packed and loose), for keys of requests with --include-tag. */
async function tagState(gitDir: string): Promise<string> {
  const parts: string[] = [];
  parts.push(await readFile(join(gitDir, 'packed-refs'), 'utf8').catch(() => ''));
  const walk = async (dir: string, name: string): Promise<void> => {
    const items = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const it of items.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (it.isDirectory()) await walk(join(dir, it.name), `${name}/${it.name}`);
      else parts.push(`${name}/${it.name} ${(await readFile(join(dir, it.name), 'utf8').catch(() => '')).trim()}`);
    }
  };
  await walk(join(gitDir, 'refs', 'tags'), 'refs/tags');
  return parts.join('\n');
}

export class PackCache {
  private readonly productions = new Map<string, Production>();
  private readonly seen = new Map<string, number>();
  private readonly leases = new Map<string, LeaseState>();
  private server: net.Server | null = null;
  private socketPath = '';

  private constructor(readonly store: PackStore, readonly hook: string, private readonly events: CacheEvents) {}

  static async start(opts: { dir: string; bounds: CacheBounds; hook: string; events?: CacheEvents }): Promise<PackCache> {
    const events = opts.events ?? {};
    const store = await PackStore.open(opts.dir, opts.bounds, { evicted: events.evicted, size: events.size, warn: events.warn });
    const c = new PackCache(store, opts.hook, events);
    await c.listen();
    return c;
  }

  private async listen(): Promise<void> {
    const nonce = randomBytes(4).toString('hex');
    let p = join(this.store.dir, `hook-${process.pid}-${nonce}.sock`);
    if (p.length > 100) p = join(tmpdir(), `mpgit-pack-cache-${process.pid}-${nonce}.sock`);
    const server = net.createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, () => resolve());
    });
    await chmod(p, 0o600);
    server.unref();
    this.server = server;
    this.socketPath = p;
  }

  get bounds(): CacheBounds {
    return this.store.bounds;
  }

  setBounds(b: CacheBounds): Promise<void> {
    return this.store.setBounds(b);
  }

  /** Arguments and environment that route one upload-pack's pack-objects through the cache. */
  lease(gitDir: string): Lease {
    const token = randomBytes(16).toString('hex');
    let keyed!: (k: string | null) => void;
    const firstKey = new Promise<string | null>((r) => (keyed = r));
    const state: LeaseState = { gitDir, result: null, keys: [], keyed };
    this.leases.set(token, state);
    return {
      gitArgs: hookConfigArgs(this.hook),
      env: { MPGIT_PACK_CACHE_SOCKET: this.socketPath, MPGIT_PACK_CACHE_TOKEN: token },
      get result() {
        return state.result;
      },
      get keys() {
        return state.keys;
      },
      firstKey,
      release: () => {
        this.leases.delete(token);
        keyed(null);
      },
    };
  }

  /**
   * Stops taking requests. Called once the transfers are over (finished, or terminated after
   * the grace period): a run still going has nobody left to serve and is stopped. With
   * `finishRuns` (the cache switched off by a reload) runs go on for their followers.
   */
  async close(opts: { finishRuns?: boolean } = {}): Promise<void> {
    this.server?.close();
    if (!opts.finishRuns) for (const p of this.productions.values()) p.abort();
    await Promise.allSettled([...this.productions.values()].map((p) => p.finished));
    await rm(this.socketPath, { force: true });
  }

  private serve(sock: net.Socket): void {
    sock.on('error', () => {});
    let buf: Buffer = Buffer.alloc(0);
    let need: { state: LeaseState; args: string[]; len: number; start: number } | null = null;
    const onData = (c: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      if (!need) {
        const nl = buf.indexOf(10);
        if (nl < 0 && buf.length > MAX_HEAD) return sock.destroy();
        if (nl < 0) return;
        const first = buf.toString('latin1', 0, nl);
        // The daemon's own sender following an entry by key (a v2 clone answered without upload-pack).
        const follow = /^mpgit-pack-follow 1 ([0-9a-f]*) ([0-9a-f]{64})$/.exec(first);
        if (follow) {
          const state = this.leases.get(follow[1]!);
          sock.off('data', onData);
          if (!state) return void sock.end('F request not from a connection of this daemon\n');
          state.keys.push(follow[2]!);
          state.keyed(follow[2]!);
          // The sender says nothing more until it hears a path.
          void this.serveKey(sock, state, follow[2]!, null, onReplies(sock)).catch((e) => {
            this.events.warn?.(`pack cache: ${(e as Error).message}`);
            sock.end(`F ${(e as Error).message.replace(/\n/g, ' ')}\n`);
          });
          return;
        }
        const head = /^mpgit-pack-hook 1 ([0-9a-f]*) (\d+) (\d+)$/.exec(first);
        const state = head ? this.leases.get(head[1]!) : undefined;
        if (!head || !state || Number(head[3]) > MAX_REQUEST) {
          sock.end(`F ${head ? 'request not from a connection of this daemon' : 'bad request from the hook'}\n`);
          return;
        }
        const argc = Number(head[2]);
        const args: string[] = [];
        let at = nl + 1;
        for (let i = 0; i < argc; i++) {
          const z = buf.indexOf(0, at);
          if (z < 0) {
            if (buf.length > MAX_HEAD) sock.destroy();
            return; // wait for the rest of the arguments
          }
          args.push(buf.toString('utf8', at, z));
          at = z + 1;
        }
        need = { state, args, len: Number(head[3]), start: at };
      }
      if (buf.length - need.start < need.len) return;
      sock.off('data', onData);
      const request = buf.subarray(need.start, need.start + need.len);
      void this.answer(sock, need.state, need.args, Buffer.from(request)).catch((e) => {
        this.events.warn?.(`pack cache: ${(e as Error).message}`);
        sock.end(`F ${(e as Error).message.replace(/\n/g, ' ')}\n`);
      });
    };
    sock.on('data', onData);
  }

  private note(state: LeaseState, r: CacheResult): void {
    if (state.result === null || RANK[r] > RANK[state.result]) state.result = r;
    this.events.request?.(r);
  }

  private async answer(sock: net.Socket, state: LeaseState, args: string[], request: Buffer): Promise<void> {
    // `git [--shallow-file ""] pack-objects --stdout ...`: upload-pack's shapes, nothing else.
    const rest = args[1] === '--shallow-file' && args[2] === '' ? args.slice(3) : args.slice(1);
    if (args[0] !== 'git' || rest[0] !== 'pack-objects' || !rest.includes('--stdout') || !rest.slice(1).every((a) => ARG.test(a))) {
      this.note(state, 'bypass');
      sock.end('G\n');
      return;
    }
    const h = createHash('sha256');
    for (const part of [state.gitDir, ...args]) h.update(part).update('\0');
    h.update(`${request.length}\0`).update(request);
    if (args.includes('--include-tag')) h.update(await tagState(state.gitDir));
    const key = h.digest('hex');
    state.keys.push(key);
    state.keyed(key);
    await this.serveKey(sock, state, key, { args, request }, onReplies(sock));
  }

  /**
   * Serves the entry for `key`: complete (hit), being written (join), or (with `create`) a new
   * run (miss). Without `create` and with neither, the asker is told to go its own way (`G`).
   */
  private async serveKey(sock: net.Socket, state: LeaseState, key: string, create: { args: string[]; request: Buffer } | null, replies: { next(): Promise<string | null> }): Promise<void> {
    const lines = (s: string) => {
      if (!sock.destroyed) sock.write(s);
    };
    const entry = await this.store.lookup(key);
    if (entry) {
      this.note(state, 'hit');
      entry.pins++;
      lines(`P ${entry.path}\n`);
      const r = await replies.next();
      entry.pins--;
      if (r !== 'O') {
        sock.end('G\n');
        return;
      }
      this.events.served?.(entry.size);
      sock.end(`D ${entry.size}\n`);
      return;
    }

    let prod = this.productions.get(key);
    if (prod) this.note(state, 'join');
    else if (!create) {
      sock.end('G\n');
      return;
    } else {
      const { args, request } = create;
      this.note(state, 'miss');
      const count = (this.seen.get(key) ?? 0) + 1;
      this.seen.delete(key);
      this.seen.set(key, count);
      if (this.seen.size > MAX_COUNTED) this.seen.delete(this.seen.keys().next().value!);
      const keep = count >= this.store.bounds.minOccurrences;
      const tmp = this.store.tempPath(key);
      const p = new Production(key, tmp, {
        gitDir: state.gitDir,
        args,
        request,
        commit: async (size) => (keep ? ((await this.store.add(key, tmp, size))?.path ?? null) : null),
      });
      prod = p;
      this.productions.set(key, p);
      void p.finished.then((o) => {
        this.productions.delete(key);
        if (!o.ok) this.events.warn?.(`pack cache: ${o.message}`);
      });
    }
    const production = prod;
    let told = 0;
    const f: Follower = {
      path: (p) => lines(`P ${p}\n`),
      producer: (pid) => lines(`W ${pid}\n`),
      grew: (n) => {
        told = n;
        lines(`S ${n}\n`);
      },
      done: (n) => {
        this.events.served?.(n);
        sock.end(`D ${n}\n`);
        production.leave(f);
      },
      failed: (m) => {
        // Nothing sent yet (a full disk, a failing repository): the hook runs pack-objects itself,
        // so the client gets its pack, or git's own error.
        sock.end(told === 0 ? 'G\n' : `F ${m.replace(/\n/g, ' ')}\n`);
        production.leave(f);
      },
    };
    sock.once('close', () => production.leave(f));
    production.follow(f);
    const r = await replies.next();
    if (r === 'O') production.opened(f);
    else {
      // Could not open it (renamed away at that instant): let the hook pack by itself.
      production.leave(f);
      sock.end('G\n');
    }
  }
}

/** The hook's one-line replies (`O`, `E ...`); null once the socket closes. */
function onReplies(sock: net.Socket): { next(): Promise<string | null> } {
  let buf = '';
  const queue: string[] = [];
  let waiter: ((s: string | null) => void) | null = null;
  let closed = false;
  sock.setEncoding('latin1');
  sock.on('data', (c: string) => {
    buf += c;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (waiter) {
        const w = waiter;
        waiter = null;
        w(l.startsWith('O') ? 'O' : l);
      } else queue.push(l);
    }
    if (buf.length > 4096) sock.destroy();
  });
  sock.on('close', () => {
    closed = true;
    waiter?.(null);
    waiter = null;
  });
  return {
    next: () => {
      const q = queue.shift();
      if (q !== undefined) return Promise.resolve(q.startsWith('O') ? 'O' : q);
      if (closed) return Promise.resolve(null);
      return new Promise((r) => (waiter = r));
    },
  };
}
