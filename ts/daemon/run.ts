// Running a daemon as a process: its log, the --detach readiness channel, inetd mode, and
// SIGTERM/SIGINT (stop accepting, let transfers finish, exit 0). `mpgit daemon` and `mpgit demo`
// both end here.

import { describe } from '../errors.js';
import type { DaemonConfig } from './config.js';
import { Daemon, makeLog, serveInetd, type DaemonOptions } from './daemon.js';
import { ReadyChannel } from './detach.js';

/** Runs a daemon until SIGTERM/SIGINT: stop accepting, let transfers finish, exit 0. */
export async function runDaemon(cfg: DaemonConfig, opts: DaemonOptions = {}, onReady?: (d: Daemon) => void): Promise<never> {
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
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        log.notice('signal', `Received ${sig}: no new connections; transfers in flight get ${cfg.gracePeriod} s to finish`, { signal: sig });
        void daemon.stop().then(() => log.close()).then(() => process.exit(0));
      } else {
        log.notice('signal', `Received ${sig} again: terminating transfers now`, { signal: sig });
        void daemon.abort().then(() => log.close()).then(() => process.exit(0));
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
