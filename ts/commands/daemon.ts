// `mpgit daemon`: the git:// server. Flags follow `git daemon`; --config FILE gives the same
// settings as JSON (flags override it).

import type { Command } from 'commander';
// Only what --help needs loads with the CLI; the daemon itself (zod, the offload responder)
// loads when the command runs: every other command starts ~200 ms sooner.
import type { Settings } from '../daemon/config.js';
import { addDaemonOptions } from '../daemon/options.js';

/** Settings given on the command line (only those actually typed, so the file can fill the rest). */
function givenSettings(cmd: Command, directories: string[], flagSettings: (given: Record<string, unknown>) => Settings): Settings {
  const opts = cmd.opts() as Record<string, unknown>;
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'config' || v === undefined) continue;
    if (cmd.getOptionValueSource(k) === 'cli') given[k] = v;
  }
  if (directories.length) given.directories = directories;
  return flagSettings(given);
}

/**
 * git daemon's --user-path takes a value only as --user-path=DIR; alone it turns user paths on.
 * commander would take the next word as the value, so a lone --user-path becomes --user-path=.
 */
function gitStyleUserPath(cmd: Command): Command {
  const parse = cmd.parseOptions.bind(cmd);
  cmd.parseOptions = (argv: string[]) => {
    const end = argv.indexOf('--');
    return parse(argv.map((a, i) => (a === '--user-path' && (end < 0 || i < end) ? '--user-path=' : a)));
  };
  return cmd;
}

export function registerDaemon(program: Command): void {
  addDaemonOptions(gitStyleUserPath(program.command('daemon')))
    .summary('serve repositories over git:// (stock git clients, optionally Multipath TCP)')
    .description(
      'A git:// server that stock git clients use unchanged; flags follow `git daemon`. ' +
        'Repositories are served when they hold a git-daemon-export-ok file, or with --export-all; directory arguments form an allow-list. ' +
        'Every listen address must bind (retried up to --bind-timeout), or the daemon exits naming it. ' +
        'SIGTERM stops accepting and lets transfers finish within --grace-period. ' +
        'Sockets passed by systemd (LISTEN_FDS) are served as they are.',
    )
    .argument('[directory...]', 'allow-list: serve only repositories under these directories')
    .option('--config <file>', 'JSON file of settings (keys are the flag names in camelCase); flags override it; SIGHUP re-reads it')
    .action(async function (this: Command, directories: string[]) {
      const { flagSettings, loadConfigFile, resolveConfig } = await import('../daemon/config.js');
      const flags = givenSettings(this, directories, flagSettings);
      const file = this.opts().config ? await loadConfigFile(this.opts().config as string) : {};
      const cfg = resolveConfig(file, flags);
      if (cfg.detach) {
        const { detach } = await import('../daemon/detach.js');
        const given = [file, flags].some((l) => l.logDestination !== undefined || l.syslog);
        process.exit(await detach(cfg, given));
      }
      // Offloaded repositories answer protocol v2 fetch in-process (packfile URIs); with the pack
      // cache on, other v2 sessions are ours too (cached clones sent without upload-pack); git
      // serves the rest.
      const { offloadHook } = await import('../daemon/offload-hook.js');
      const { cacheHook } = await import('../daemon/cache-hook.js');
      const { runDaemon } = await import('../daemon/run.js');
      const path = this.opts().config as string | undefined;
      const reload = path ? async () => resolveConfig(await loadConfigFile(path), flags) : null;
      await runDaemon(cfg, { hooks: [offloadHook, cacheHook], reload });
    });
}
