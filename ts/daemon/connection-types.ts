// What a daemon connection is made of: its two ends (ConnectionIO), what the daemon lends it
// (ConnectionContext), the in-process service hooks offered each accepted request, and what
// handling it returns.

import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { GitProcess } from '../git.js';
import type { GitRequest } from '../protocol/request.js';
import type { CacheResult, PackCache } from '../cache/pack-cache.js';
import type { TransferRecord } from './access.js';
import type { DaemonConfig, ServiceName } from './config.js';
import type { ConnLog, DaemonLog } from './log.js';

/** A request the daemon has accepted, offered to the service hooks before git runs it. */
export interface ServiceCall {
  service: ServiceName;
  request: GitRequest;
  /** Protocol version the client asked for (0 when none). */
  protocolVersion: number;
  /** The repository's real path. */
  gitDir: string;
  /** The client's bytes, paused. Reading starts where `leftover` ends. */
  input: Readable;
  /**
   * Bytes the client sent after the request line, already read off the socket (normally none:
   * git clients wait for the server to speak). A hook that takes the request must consume them
   * first (e.g. `input.unshift(leftover)`).
   */
  leftover: Buffer;
  output: Writable;
  /** The TCP/MPTCP socket when there is one (not with --inetd over pipes). */
  socket: net.Socket | null;
  /** What a child process writing to the client gets as its stdout (the socket itself). */
  stdout: Writable | number;
  /** The environment git gets for this request (the access hook's and the daemon's variables). */
  env: NodeJS.ProcessEnv;
  /** The daemon's pack cache, when it is on. */
  packCache: PackCache | null;
  /** git's arguments for the service as the daemon runs it (`upload-pack --strict --timeout=N .`). */
  gitArgs: string[];
  /** A child now writing to the client (null: none): shutdown and --timeout signal it as git's. */
  onChild(child: GitProcess | null): void;
  log: ConnLog;
  /** What a hook that served the request reports back (for the metrics and the close and access lines). */
  served: { packfileUris: number; cache: CacheResult | null; why?: string };
}

/**
 * Takes over a request in-process (e.g. packfile-URI offload answering v2 `fetch` itself):
 * resolves to the exit status once it has served it, or null to let git serve it. A hook runs
 * inside the daemon, so its transfers do not survive the daemon's death as git's do.
 */
export type ServiceHook = (call: ServiceCall) => Promise<number | null> | number | null;

/** The two ends of a connection and what is known about it. */
export interface ConnectionIO {
  id: number;
  input: Readable;
  output: Writable;
  /** What the service process gets as stdin/stdout: the socket itself, or fds 0/1 (inetd). */
  stdio: [Readable | number, Writable | number];
  socket: net.Socket | null;
  /** Descriptor for the kernel's MPTCP/TCP counters. */
  infoFd: number | null;
  remote: { address: string; port: number } | null;
  mptcp: boolean | null;
  /** Called once the request is read (it stops counting as pending): over --max-connections? */
  overLimit: () => boolean;
}

export interface ConnectionContext {
  cfg: DaemonConfig;
  log: DaemonLog;
  hooks: ServiceHook[];
  /**
   * Called with the service process once it runs (shutdown signals it after the grace period);
   * `handedOver`: it has the socket itself, rather than pipes relayed by the daemon.
   */
  onChild: (child: GitProcess | null, handedOver: boolean) => void;
  /** The pack cache upload-pack's pack-objects goes through (none: git packs every time). */
  packCache?: PackCache | null;
  /** Called once per connection when it ends (access log, metrics). */
  onFinished?: (r: TransferRecord, log: ConnLog) => void;
}

export interface ConnectionResult {
  exitCode: number;
  service: ServiceName | null;
}
