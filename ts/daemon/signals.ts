// Signals as operators expect them. SIGTERM/SIGINT: stop accepting, let transfers finish
// (a second one ends them). SIGHUP: re-read --config and apply what can change without
// rebinding; the rest is logged as needing a restart; serving never stops. SIGUSR1: reopen
// the log file. Having a SIGUSR1 handler at all is what keeps node from opening its inspector
// (127.0.0.1:9229) on that signal, as it does by default.

import type { DaemonConfig } from './config.js';
import type { DaemonLog } from './log.js';

/** Settings a running daemon takes over on SIGHUP. */
const LIVE: readonly (keyof DaemonConfig)[] = [
  'basePath', 'basePathRelaxed', 'exportAll', 'directories', 'strictPaths', 'userPath', 'interpolatedPath',
  'enable', 'disable', 'allowOverride', 'forbidOverride', 'informativeErrors', 'maxConnections', 'maxPending', 'maxPendingPerAddress', 'timeout',
  'initTimeout', 'gracePeriod', 'accessHook', 'logFormat', 'verbose', 'packCache', 'cacheMaxBytes', 'cacheMaxAge',
  'cacheMinOccurrences',
];

export interface ReloadPlan {
  /** Changed settings applied now: key, old and new value. */
  apply: { key: keyof DaemonConfig; from: unknown; to: unknown }[];
  /** Changed settings that need a restart (listen addresses, user, log destination, ...). */
  restart: (keyof DaemonConfig)[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function reloadPlan(cur: DaemonConfig, next: DaemonConfig): ReloadPlan {
  const plan: ReloadPlan = { apply: [], restart: [] };
  for (const key of Object.keys(next) as (keyof DaemonConfig)[]) {
    if (same(cur[key], next[key])) continue;
    if (LIVE.includes(key)) plan.apply.push({ key, from: cur[key], to: next[key] });
    else if (key !== 'detach') plan.restart.push(key);
  }
  return plan;
}

export interface SignalTarget {
  log: DaemonLog;
  /** Re-reads the settings (file and the original flags); null: no --config to re-read. */
  reload: (() => Promise<DaemonConfig>) | null;
  /** Applies changed live settings (in place: connections read them as they come). */
  apply: (plan: ReloadPlan, next: DaemonConfig) => Promise<void>;
  current: () => DaemonConfig;
  stop: () => Promise<void>;
  abort: () => Promise<void>;
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

async function onHangup(t: SignalTarget): Promise<void> {
  const { log } = t;
  if (!t.reload) {
    log.notice('reload', 'Received SIGHUP: no --config file to re-read; nothing changed', { signal: 'SIGHUP', changed: [] });
    return;
  }
  let next: DaemonConfig;
  try {
    next = await t.reload();
  } catch (e) {
    log.error('reload-failed', `Received SIGHUP: config not reloaded, still serving with the old settings: ${(e as Error).message}`, { signal: 'SIGHUP', error: (e as Error).message });
    return;
  }
  const plan = reloadPlan(t.current(), next);
  await t.apply(plan, next);
  const changed = plan.apply.map((c) => `${c.key} ${show(c.from)} -> ${show(c.to)}`);
  log.notice('reload', `Received SIGHUP: config reloaded; ${changed.length ? `changed: ${changed.join(', ')}` : 'nothing changed'}`, {
    signal: 'SIGHUP',
    changed: plan.apply,
  });
  if (plan.restart.length) {
    log.error('reload-restart-needed', `Received SIGHUP: ${plan.restart.join(', ')} changed in the config file: these need a restart and were not applied`, { signal: 'SIGHUP', restart: plan.restart });
  }
}

/** Installs the handlers; returns a function that removes them. */
export function installSignals(t: SignalTarget): () => void {
  let stopping = 0;
  let reloading = Promise.resolve();
  const onStop = (sig: NodeJS.Signals) => {
    stopping++;
    const cfg = t.current();
    if (stopping === 1) {
      t.log.notice('signal', `Received ${sig}: no new connections; transfers in flight get ${cfg.gracePeriod} s to finish`, { signal: sig });
      void t.stop();
    } else {
      t.log.notice('signal', `Received ${sig} again: terminating transfers now`, { signal: sig });
      void t.abort();
    }
  };
  const onHup = () => {
    // One reload at a time, in the order the signals came.
    reloading = reloading.then(() => onHangup(t));
  };
  const onUsr1 = () => {
    const r = t.log.reopen();
    if (r.error) t.log.error('reopen-failed', `Received SIGUSR1: cannot reopen the log file, still writing the old one: ${r.error}`, { signal: 'SIGUSR1', error: r.error });
    else t.log.notice('reopen', r.reopened ? 'Received SIGUSR1: log file reopened' : 'Received SIGUSR1: no log file to reopen', { signal: 'SIGUSR1', reopened: r.reopened });
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  process.on('SIGUSR1', onUsr1);
  return () => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
    process.off('SIGUSR1', onUsr1);
  };
}
