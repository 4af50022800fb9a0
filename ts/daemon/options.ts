// The daemon's settings as options, one row each: the flag (its camelCase name is the key in a
// --config file), its argument, its help line. `mpgit daemon`'s options are generated from this
// table, config.ts gives each key its schema (the compiler holds both to the same keys), and
// test/daemon-options.test.ts checks the documentation against it. No zod here: --help loads this.

import { Option, type Command } from 'commander';
import { SERVICE_NAMES } from './service-names.js';

export interface OptionRow {
  /** `--base-path`: the key is its camelCase (basePath). */
  flag: string;
  /** `<dir>`: takes a value; `[path]`: may take one (git style: only after `=`). */
  arg?: string;
  help: string;
  /** Repeatable: each use adds to a list. */
  repeat?: true;
  choices?: readonly string[];
  /** Help of `--no-<flag>`, which turns off what the config file turned on. */
  negation?: string;
  /** Only `--no-<flag>` exists (the setting is on by default). */
  negationOnly?: true;
}

/** Every setting but `directories` (the command's arguments), in the order --help lists them. */
export const DAEMON_OPTIONS = {
  basePath: { flag: '--base-path', arg: '<dir>', help: 'remap every requested path under this directory' },
  basePathRelaxed: { flag: '--base-path-relaxed', help: 'with --base-path: a path not found under it is looked up as it is (allow-list, export and strict-paths checks still apply)' },
  exportAll: { flag: '--export-all', help: 'serve repositories even without a git-daemon-export-ok file' },
  strictPaths: { flag: '--strict-paths', help: 'match paths exactly (no .git suffix guessing); the allow-list must name each repository' },
  userPath: { flag: '--user-path', arg: '[path]', help: 'allow ~user/ paths: the home directory, or with =path its <path> subdirectory (as git: a value only after =)' },
  interpolatedPath: { flag: '--interpolated-path', arg: '<template>', help: 'path template (%H host, %CH canonical host, %IP host address, %P port, %D path, %%)' },
  listen: { flag: '--listen', arg: '<addr>', repeat: true, help: 'listen on this address or host name (repeatable; default: every address)' },
  port: { flag: '--port', arg: '<n>', help: 'TCP port (default 9418)' },
  mptcp: { flag: '--mptcp', help: 'listen with Multipath TCP (falls back to TCP where the kernel refuses it)', negation: 'plain TCP (overrides the config file)' },
  reuseaddr: { flag: '--reuseaddr', help: 'accepted for git compatibility: SO_REUSEADDR is always on' },
  enable: { flag: '--enable', arg: '<service>', repeat: true, choices: SERVICE_NAMES, help: 'enable a service (repeatable)' },
  disable: { flag: '--disable', arg: '<service>', repeat: true, choices: SERVICE_NAMES, help: 'disable a service (repeatable)' },
  allowOverride: { flag: '--allow-override', arg: '<service>', repeat: true, choices: SERVICE_NAMES, help: "let a repository's daemon.<service> config switch it (the default)" },
  forbidOverride: { flag: '--forbid-override', arg: '<service>', repeat: true, choices: SERVICE_NAMES, help: "ignore the repository's daemon.<service> config" },
  informativeErrors: { flag: '--informative-errors', help: 'tell clients why a request was refused (default: "access denied or repository not exported")', negation: 'generic refusals (overrides the config file)' },
  maxConnections: { flag: '--max-connections', arg: '<n>', help: 'connections served at once; more get an ERR (default 32, 0: no limit)' },
  maxPending: { flag: '--max-pending', arg: '<n>', help: 'connections waiting for their request line, apart from --max-connections; when full the longest-waiting (over 1 s) is dropped (default 64, 0: no limit)' },
  maxPendingPerAddress: { flag: '--max-pending-per-address', arg: '<n>', help: 'the same, per client address (default 16, 0: no limit)' },
  timeout: { flag: '--timeout', arg: '<n>', help: 'seconds of inactivity after which a transfer is dropped (default 600, 0: never)' },
  initTimeout: { flag: '--init-timeout', arg: '<n>', help: 'seconds a client has to send its request (default 30)' },
  bindTimeout: { flag: '--bind-timeout', arg: '<n>', help: 'seconds to keep retrying an address that fails to bind (default 10)' },
  gracePeriod: { flag: '--grace-period', arg: '<n>', help: 'seconds transfers in flight get to finish after SIGTERM (default 60)' },
  accessHook: { flag: '--access-hook', arg: '<path>', help: 'run <path> <service> <repo> <host> <canon-host> <ip> <port> per request; non-zero exit refuses' },
  user: { flag: '--user', arg: '<user>', help: 'switch to this user after binding (needs root; any user the name service knows)' },
  group: { flag: '--group', arg: '<group>', help: 'with --user: switch to this group' },
  pidFile: { flag: '--pid-file', arg: '<file>', help: 'write the daemon pid to <file>' },
  inetd: { flag: '--inetd', help: 'serve one connection on stdin/stdout (inetd, or a git proxy command)' },
  detach: { flag: '--detach', help: 'run in the background once every address is bound (implies --syslog); if binding fails, print why and exit non-zero', negation: 'stay in the foreground (overrides the config file)' },
  logFormat: { flag: '--log-format', arg: '<format>', choices: ['human', 'json'], help: 'human lines like git daemon, or one JSON object per event' },
  logDestination: { flag: '--log-destination', arg: '<dest>', choices: ['stderr', 'syslog', 'file', 'none'], help: 'where the log goes (syslog: see --syslog; file: see --log-file)' },
  logFile: { flag: '--log-file', arg: '<file>', help: 'append the log to <file> (implies --log-destination=file); SIGUSR1 reopens it after rotation' },
  syslog: { flag: '--syslog', help: 'log to syslog (short for --log-destination=syslog): lines go through `logger` tagged mpgit-daemon[pid], facility daemon, to /dev/log or to the unix socket in $MPGIT_SYSLOG_SOCKET' },
  verbose: { flag: '--verbose', help: 'log every connection, request and disconnection (with MPTCP subflows and bytes)' },
  packCache: { flag: '--pack-cache', negationOnly: true, help: 'serve packs through the pack cache (the default)', negation: 'run pack-objects for every fetch (no pack cache)' },
  cacheDir: { flag: '--cache-dir', arg: '<dir>', help: 'pack cache directory (default: $CACHE_DIRECTORY/pack-cache under systemd, /var/cache/mpgit/pack-cache for root, else ~/.cache/mpgit/pack-cache)' },
  cacheMaxBytes: { flag: '--cache-max-bytes', arg: '<size>', help: 'pack cache size bound; least recently used entries go first (default 2g)' },
  cacheMaxAge: { flag: '--cache-max-age', arg: '<secs>', help: 'pack cache entries older than this are removed (default 3600; suffix s m h d)' },
  cacheMinOccurrences: { flag: '--cache-min-occurrences', arg: '<n>', help: 'requests of the same pack before it is kept (default 1)' },
  metricsListen: { flag: '--metrics-listen', arg: '<addr:port>', help: 'serve Prometheus /metrics and /healthz over HTTP on this address (off by default)' },
} as const satisfies Record<string, OptionRow>;

export type OptionKey = keyof typeof DAEMON_OPTIONS;

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

/** Adds every option of the table to `cmd`, in its order. */
export function addDaemonOptions(cmd: Command): Command {
  for (const row of Object.values(DAEMON_OPTIONS) as OptionRow[]) {
    if (!row.negationOnly) {
      const o = new Option(row.arg ? `${row.flag} ${row.arg}` : row.flag, row.help);
      if (row.choices) o.choices(row.choices);
      if (row.repeat) o.argParser(collect);
      // --user-path alone is `true` (see gitStyleUserPath in commands/daemon.ts).
      else if (row.arg?.startsWith('[')) o.argParser((v: string) => v || true);
      cmd.addOption(o);
    }
    if (row.negation) cmd.addOption(new Option(`--no-${row.flag.slice(2)}`, row.negation));
  }
  return cmd;
}
