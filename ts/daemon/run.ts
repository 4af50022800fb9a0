// Running a daemon as a process: its log, the --detach readiness channel, inetd mode, and
// its signals (signals.ts). `mpgit daemon` and `mpgit demo`
// both end here.

import { describe } from '../errors.js';
import type { DaemonConfig } from './config.js';
import { Daemon, makeLog, serveInetd, type DaemonOptions } from './daemon.js';
import { ReadyChannel } from './detach.js';
import { installSignals } from './signals.js';

/** Runs a daemon until SIGTERM/SIGINT: stop accepting, let transfers finish, exit 0. */
export async function runDaemon(
  cfg: DaemonConfig,
  opts: DaemonOptions & { reload?: (() => Promise<DaemonConfig>) | null } = {},
  onReady?: (d: Daemon) => void,
): Promise<never> {
  // Before anything slow: a SIGUSR1 handler is what keeps node from opening its inspector.
  const early = () => {};
  process.on('SIGUSR1', early);
  // Started by --detach: the command that waits for us hears our warnings, error or readiness.
  const channel = ReadyChannel.fromEnv();
  // A daemon that does not log to stderr must not die of EPIPE when whatever read it is gone.
  if (cfg.logDestination !== 'stderr') process.stderr.on('error', () => {});
  const warn = (text: string) => {
    if (!channel?.send(text)) process.stderr.write(text);
  };
  const log = opts.log ?? makeLog(cfg, warn);
  await log.opened();
  if (cfg.inetd) {
    const code = await serveInetd(cfg, { ...opts, log });
    await log.close();
    process.exit(code === 0 ? 0 : 1);
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(cfg, { ...opts, log });
  } catch (e) {
    channel?.send(`fatal: ${describe(e)}\n`);
    // stderr gets it from the CLI; syslog would otherwise never hear why the daemon stopped.
    if (cfg.logDestination === 'syslog') log.error('fatal', `fatal: ${describe(e)}`);
    await log.close();
    throw e;
  }
  channel?.ready(daemon.readyText);
  onReady?.(daemon);
  return new Promise<never>(() => {
    installSignals({
      log,
      reload: opts.reload ?? null,
      current: () => daemon.cfg,
      apply: (plan, next) => daemon.applyReload(plan, next),
      stop: () => daemon.stop().then(() => log.close()).then(() => process.exit(0)),
      abort: () => daemon.abort().then(() => log.close()).then(() => process.exit(0)),
    });
    process.off('SIGUSR1', early);
  });
}
