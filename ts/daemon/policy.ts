// The daemon's request policy, as git daemon applies it: is the service on, which repository
// does the path name and may it be served, does the repository's own daemon.<service> config
// switch the service, does the access hook allow it. authorize() answers with where and how to
// serve the request, or with the refusal (what the client is told, what the log says).

import { lookup } from 'node:dns/promises';
import type { GitRequest } from '../protocol/request.js';
import { serviceEnv } from '../git.js';
import type { DaemonConfig, ServiceName } from './config.js';
import { resolveRepo, type Refusal as PathRefusal } from './paths.js';
import { repoServiceSetting, runAccessHook, serviceFlags } from './services.js';

/** Bound on resolving the client-supplied host name (for %IP and the access hook). */
const HOST_LOOKUP_TIMEOUT_MS = 3000;

export interface Authorized {
  /** The repository's real path. */
  gitDir: string;
  /** The service's environment: nothing inherited points git elsewhere; GIT_PROTOCOL, REMOTE_*. */
  env: NodeJS.ProcessEnv;
  /** Found as it is, not under the base path (--base-path-relaxed). */
  relaxed: boolean;
}

export interface Refusal {
  /** The ERR line's text, as git daemon words it (the reason only with --informative-errors). */
  client: string;
  /** The short reason (access log, metrics). */
  why: string;
  /** The daemon log's line. */
  log: { event: string; text: string; fields: Record<string, unknown> };
}

export interface Peer {
  remote: { address: string; port: number } | null;
}

async function hostIp(host: string | undefined): Promise<string | undefined> {
  if (!host) return undefined;
  const bare = host.replace(/^\[|\]$/g, '');
  const t = new Promise<undefined>((r) => setTimeout(() => r(undefined), HOST_LOOKUP_TIMEOUT_MS).unref());
  const l = lookup(bare).then((a) => a.address, () => undefined);
  return Promise.race([l, t]);
}

export async function authorize(request: GitRequest, service: ServiceName, cfg: DaemonConfig, peer: Peer): Promise<Authorized | Refusal> {
  const generic = (r: PathRefusal) => `${cfg.informativeErrors ? r : 'access denied or repository not exported'}: ${request.path}`;
  const notEnabled = (text: string, fields: Record<string, unknown>, why = 'service not enabled'): Refusal => ({
    client: generic('service not enabled'),
    why,
    log: { event: 'refused', text, fields },
  });

  // Is the service on?
  const flags = serviceFlags(cfg, service);
  if (!flags.enabled && !flags.overridable) return notEnabled(`'${service}': service not enabled.`, { reason: 'service not enabled', service });

  // Which repository, and may it be served?
  const ip = cfg.interpolatedPath || cfg.accessHook ? await hostIp(request.host) : undefined;
  const where = await resolveRepo(request.path, cfg, { host: request.host, port: request.port, hostIp: ip });
  if (!where.ok) return { client: generic(where.refusal), why: where.refusal, log: { event: 'refused', text: where.log, fields: { reason: where.refusal, path: request.path } } };
  const gitDir = where.gitDir;

  // The repository's own daemon.<service> setting, where overriding is allowed.
  let enabled = flags.enabled;
  if (flags.overridable) {
    const setting = await repoServiceSetting(gitDir, service);
    if (setting instanceof Error) return notEnabled(`'${gitDir}': ${setting.message}`, { reason: 'bad config' }, 'bad repository config');
    if (setting !== null) enabled = setting;
  }
  if (!enabled) return notEnabled(`'${service}': service not enabled for '${gitDir}'`, { reason: 'service not enabled', service, gitDir });

  // The access hook.
  const r = peer.remote;
  const env = serviceEnv({
    GIT_PROTOCOL: request.extra.length ? request.extra.join(':') : undefined,
    REMOTE_ADDR: r ? (r.address.includes(':') ? `[${r.address}]` : r.address) : undefined,
    REMOTE_PORT: r ? String(r.port) : undefined,
  });
  if (cfg.accessHook) {
    const denied = await runAccessHook(cfg.accessHook, { service, gitDir, host: request.host, hostIp: ip, port: request.port }, env);
    if (denied !== null) return { client: `${denied}: ${request.path}`, why: 'access hook', log: { event: 'refused', text: `'${gitDir}': access hook refused: ${denied}`, fields: { reason: 'access hook', message: denied } } };
  }
  return { gitDir, env, relaxed: !!where.relaxed };
}
