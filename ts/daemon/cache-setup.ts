// Starting the daemon's pack cache from its settings: where it lives by default, its bounds,
// and what happens when it cannot start (the daemon serves without it and says why, once).

import { homedir } from 'node:os';
import { join } from 'node:path';
import type { DaemonConfig } from './config.js';
import type { DaemonLog } from './log.js';
import type { CacheBounds } from '../cache/store.js';
import { PackCache, type CacheEvents } from '../cache/pack-cache.js';
import { findPackHook, packHookUnsupported } from '../cache/hook-path.js';

/**
 * The default --cache-dir: systemd's CacheDirectory= ($CACHE_DIRECTORY) when set, else
 * /var/cache/mpgit/pack-cache for root, else $XDG_CACHE_HOME/mpgit/pack-cache (~/.cache/...).
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromSystemd = env.CACHE_DIRECTORY?.split(':')[0];
  if (fromSystemd) return join(fromSystemd, 'pack-cache');
  if (process.getuid?.() === 0) return '/var/cache/mpgit/pack-cache';
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'mpgit', 'pack-cache');
}

export function cacheBounds(cfg: Pick<DaemonConfig, 'cacheMaxBytes' | 'cacheMaxAge' | 'cacheMinOccurrences'>): CacheBounds {
  return { maxBytes: cfg.cacheMaxBytes, maxAgeMs: cfg.cacheMaxAge * 1000, minOccurrences: cfg.cacheMinOccurrences };
}

/** The pack cache the settings ask for, or null (off, or unable to start: logged). */
export async function startPackCache(cfg: DaemonConfig, log: DaemonLog, events: CacheEvents = {}): Promise<PackCache | null> {
  if (!cfg.packCache) return null;
  const unsupported = packHookUnsupported();
  if (unsupported) {
    log.notice('pack-cache-off', `Pack cache off: ${unsupported} (--no-pack-cache silences this line)`, { reason: unsupported });
    return null;
  }
  const hook = findPackHook();
  if (!hook) {
    log.notice('pack-cache-off', 'Pack cache off: the hook program mpgit-pack-hook is not built (run `npm run build:native`, or set MPGIT_PACK_HOOK)', { reason: 'no hook' });
    return null;
  }
  const dir = cfg.cacheDir ?? defaultCacheDir();
  try {
    const cache = await PackCache.start({
      dir,
      bounds: cacheBounds(cfg),
      hook,
      events: { ...events, warn: (text) => log.error('pack-cache', text) },
    });
    log.notice('pack-cache', `Pack cache in ${dir}: ${cache.store.count} entries, ${cache.store.bytes} bytes (max ${cfg.cacheMaxBytes} bytes, ${cfg.cacheMaxAge} s)`, {
      dir, entries: cache.store.count, bytes: cache.store.bytes, maxBytes: cfg.cacheMaxBytes, maxAge: cfg.cacheMaxAge, minOccurrences: cfg.cacheMinOccurrences,
    });
    return cache;
  } catch (e) {
    log.error('pack-cache-off', `Pack cache off: cannot use ${dir}: ${(e as Error).message}`, { dir, reason: (e as Error).message });
    return null;
  }
}
