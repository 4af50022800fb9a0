// `mpgit daemon`: the git:// server. Flags follow `git daemon`; --config FILE gives the same
// settings as JSON (flags override it).

import { Command, Option } from 'commander';
// Only what --help needs loads with the CLI; the daemon itself (zod, the offload responder)
// loads when the command runs: every other command starts ~200 ms sooner.
import type { Settings } from '../daemon/config.js';
import { SERVICE_NAMES } from '../daemon/service-names.js';
import type { RegisterCommand } from './types.js';

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

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

export const registerDaemon: RegisterCommand = (program) => {
  gitStyleUserPath(program
    .command('daemon'))
    .summary('serve repositories over git:// (stock git clients, optionally Multipath TCP)')
    .description(
      'A git:// server that stock git clients use unchanged; flags follow `git daemon`. ' +
        'Repositories are served when they hold a git-daemon-export-ok file, or with --export-all; directory arguments form an allow-list. ' +
        'Every listen address must bind (retried up to --bind-timeout), or the daemon exits naming it. ' +
        'SIGTERM stops accepting and lets transfers finish within --grace-period. ' +
        'Sockets passed by systemd (LISTEN_FDS) are served as they are.',
    )
    .argument('[directory...]', 'allow-list: serve only repositories under these directories')
    .option('--base-path <dir>', 'remap every requested path under this directory')
    .option('--base-path-relaxed', 'with --base-path: a path not found under it is looked up as it is (allow-list, export and strict-paths checks still apply)')
    .option('--export-all', 'serve repositories even without a git-daemon-export-ok file')
    .option('--strict-paths', 'match paths exactly (no .git suffix guessing); the allow-list must name each repository')
    .addOption(new Option('--user-path [path]', 'allow ~user/ paths: the home directory, or with =path its <path> subdirectory (as git: a value only after =)').argParser((v) => v || true))
    .option('--interpolated-path <template>', 'path template (%H host, %CH canonical host, %IP host address, %P port, %D path, %%)')
    .option('--listen <addr>', 'listen on this address or host name (repeatable; default: every address)', collect)
    .option('--port <n>', 'TCP port (default 9418)')
    .option('--mptcp', 'listen with Multipath TCP (falls back to TCP where the kernel refuses it)')
    .option('--no-mptcp', 'plain TCP (overrides the config file)')
    .option('--reuseaddr', 'accepted for git compatibility: SO_REUSEADDR is always on')
    .addOption(new Option('--enable <service>', 'enable a service (repeatable)').choices(SERVICE_NAMES).argParser(collect))
    .addOption(new Option('--disable <service>', 'disable a service (repeatable)').choices(SERVICE_NAMES).argParser(collect))
    .addOption(new Option('--allow-override <service>', "let a repository's daemon.<service> config switch it (the default)").choices(SERVICE_NAMES).argParser(collect))
    .addOption(new Option('--forbid-override <service>', "ignore the repository's daemon.<service> config").choices(SERVICE_NAMES).argParser(collect))
    .option('--informative-errors', 'tell clients why a request was refused (default: "access denied or repository not exported")')
    .option('--no-informative-errors', 'generic refusals (overrides the config file)')
    .option('--max-connections <n>', 'connections served at once; more get an ERR (default 32, 0: no limit)')
    .option('--timeout <n>', 'seconds of inactivity after which a transfer is dropped (default 600, 0: never)')
    .option('--init-timeout <n>', 'seconds a client has to send its request (default 30)')
    .option('--bind-timeout <n>', 'seconds to keep retrying an address that fails to bind (default 10)')
    .option('--grace-period <n>', 'seconds transfers in flight get to finish after SIGTERM (default 60)')
    .option('--access-hook <path>', 'run <path> <service> <repo> <host> <canon-host> <ip> <port> per request; non-zero exit refuses')
    .option('--user <user>', 'switch to this user after binding (needs root)')
    .option('--group <group>', 'with --user: switch to this group')
    .option('--pid-file <file>', 'write the daemon pid to <file>')
    .option('--inetd', 'serve one connection on stdin/stdout (inetd, or a git proxy command)')
    .option('--detach', 'run in the background once every address is bound (implies --syslog); if binding fails, print why and exit non-zero')
    .option('--no-detach', 'stay in the foreground (overrides the config file)')
    .addOption(new Option('--log-format <format>', 'human lines like git daemon, or one JSON object per event').choices(['human', 'json']))
    .addOption(new Option('--log-destination <dest>', 'where the log goes (syslog: see --syslog; file: see --log-file)').choices(['stderr', 'syslog', 'file', 'none']))
    .option('--log-file <file>', 'append the log to <file> (implies --log-destination=file); SIGUSR1 reopens it after rotation')
    .option('--syslog', 'log to syslog (short for --log-destination=syslog): lines go through `logger` tagged mpgit-daemon[pid], facility daemon, to /dev/log or to the unix socket in $MPGIT_SYSLOG_SOCKET')
    .option('--verbose', 'log every connection, request and disconnection (with MPTCP subflows and bytes)')
    .option('--no-pack-cache', 'run pack-objects for every fetch (no pack cache)')
    .option('--cache-dir <dir>', 'pack cache directory (default: $CACHE_DIRECTORY/pack-cache under systemd, /var/cache/mpgit/pack-cache for root, else ~/.cache/mpgit/pack-cache)')
    .option('--cache-max-bytes <size>', 'pack cache size bound; least recently used entries go first (default 2g)')
    .option('--cache-max-age <secs>', 'pack cache entries older than this are removed (default 3600; suffix s m h d)')
    .option('--cache-min-occurrences <n>', 'requests of the same pack before it is kept (default 1)')
    .option('--metrics-listen <addr:port>', 'serve Prometheus /metrics and /healthz over HTTP on this address (off by default)')
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
      // Offloaded repositories answer protocol v2 fetch in-process (packfile URIs); git serves the rest.
      const { offloadHook } = await import('../daemon/offload-hook.js');
      const { runDaemon } = await import('../daemon/run.js');
      const path = this.opts().config as string | undefined;
      const reload = path ? async () => resolveConfig(await loadConfigFile(path), flags) : null;
      await runDaemon(cfg, { hooks: [offloadHook], reload });
    });
};
