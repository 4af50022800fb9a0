// The daemon's settings: ./options.ts names each setting's flag and help, this file its zod
// schema, what it expects and its default, by the same keys (the config-file keys). A JSON file (--config) and the command line are both
// validated against it; flags override the file. Errors name the key (or flag), the value and
// what is expected.

import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { SERVICE_NAMES, type ServiceName } from './service-names.js';
import { DAEMON_OPTIONS, type OptionKey } from './options.js';

export { SERVICE_NAMES, type ServiceName } from './service-names.js';

/** Largest config file read (a daemon config is a few hundred bytes). */
const MAX_CONFIG_BYTES = 1 << 20;

const service = z.enum(SERVICE_NAMES);
const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, s: 1, h: 3600, d: 86400 };
/** "512m", "10g" (sizes: k m g t) or "30m", "2h" (durations: s m h d); a plain number is taken as is. */
const scaled = (units: string) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]?)i?b?\s*$/i.exec(v);
    const unit = m?.[2]?.toLowerCase() ?? '';
    if (!m || !units.includes(unit)) return v;
    const mult = unit === 'm' && units.includes('h') ? 60 : UNITS[unit]!;
    return Math.round(Number(m[1]) * mult);
  }, z.number().int().min(0));
const seconds = z.number().finite().min(0);

/** Every setting's schema and what it expects, by key (its flag and help: ./options.ts). */
const FIELDS = {
  basePath: { schema: z.string().min(1), expects: 'a directory path' },
  basePathRelaxed: { schema: z.boolean(), expects: 'true or false' },
  exportAll: { schema: z.boolean(), expects: 'true or false' },
  directories: { schema: z.array(z.string().min(1)), expects: 'a list of directory paths' },
  strictPaths: { schema: z.boolean(), expects: 'true or false' },
  userPath: { schema: z.union([z.boolean(), z.string()]), expects: 'true, false or a path relative to the home directory' },
  interpolatedPath: { schema: z.string().min(1), expects: 'a path template using %H %CH %IP %P %D %%' },
  listen: { schema: z.array(z.string().min(1)), expects: 'a list of host names or IP addresses' },
  port: { schema: z.number().int().min(0).max(65535), expects: 'an integer from 0 to 65535' },
  mptcp: { schema: z.boolean(), expects: 'true or false' },
  reuseaddr: { schema: z.boolean(), expects: 'true or false' },
  enable: { schema: z.array(service), expects: `a list of services (${SERVICE_NAMES.join(', ')})` },
  disable: { schema: z.array(service), expects: `a list of services (${SERVICE_NAMES.join(', ')})` },
  allowOverride: { schema: z.array(service), expects: `a list of services (${SERVICE_NAMES.join(', ')})` },
  forbidOverride: { schema: z.array(service), expects: `a list of services (${SERVICE_NAMES.join(', ')})` },
  informativeErrors: { schema: z.boolean(), expects: 'true or false' },
  maxConnections: { schema: z.number().int().min(0), expects: 'an integer of 0 (no limit) or more' },
  maxPending: { schema: z.number().int().min(0), expects: 'an integer of 0 (no limit) or more' },
  maxPendingPerAddress: { schema: z.number().int().min(0), expects: 'an integer of 0 (no limit) or more' },
  timeout: { schema: z.number().int().min(0), expects: 'a whole number of seconds (0: no timeout)' },
  initTimeout: { schema: seconds.positive(), expects: 'a number of seconds above 0' },
  bindTimeout: { schema: seconds, expects: 'a number of seconds (0: no retry)' },
  gracePeriod: { schema: seconds, expects: 'a number of seconds' },
  accessHook: { schema: z.string().min(1), expects: 'the path of an executable' },
  user: { schema: z.string().min(1), expects: 'a user name or id' },
  group: { schema: z.string().min(1), expects: 'a group name or id' },
  pidFile: { schema: z.string().min(1), expects: 'a file path' },
  inetd: { schema: z.boolean(), expects: 'true or false' },
  detach: { schema: z.boolean(), expects: 'true or false' },
  logFormat: { schema: z.enum(['human', 'json']), expects: '"human" or "json"' },
  logDestination: { schema: z.enum(['stderr', 'syslog', 'file', 'none']), expects: '"stderr", "syslog", "file" (with --log-file) or "none"' },
  syslog: { schema: z.boolean(), expects: 'true or false' },
  verbose: { schema: z.boolean(), expects: 'true or false' },
  logFile: { schema: z.string().min(1), expects: 'a file path (reopened on SIGUSR1)' },
  packCache: { schema: z.boolean(), expects: 'true or false' },
  cacheDir: { schema: z.string().min(1), expects: 'a directory path' },
  cacheMaxBytes: { schema: scaled('kmgt'), expects: 'a size in bytes (suffix k, m, g or t allowed)' },
  cacheMaxAge: { schema: scaled('smhd'), expects: 'a number of seconds (suffix s, m, h or d allowed)' },
  cacheMinOccurrences: { schema: z.number().int().min(1), expects: 'an integer of 1 or more' },
  metricsListen: { schema: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/), expects: 'ADDR:PORT (e.g. 127.0.0.1:9419 or [::1]:9419)' },
} as const satisfies Record<OptionKey | 'directories', { schema: z.ZodType; expects: string }>;

type Fields = typeof FIELDS;
export type SettingKey = keyof Fields;
export type Settings = { [K in SettingKey]?: z.infer<Fields[K]['schema']> };

export interface DaemonConfig {
  basePath: string | null;
  /** A path not found under the base path is looked up as it is (same checks otherwise). */
  basePathRelaxed: boolean;
  exportAll: boolean;
  directories: string[];
  strictPaths: boolean;
  /** false: ~user paths refused; true: ~user is the home directory; string: ~user/<userPath>. */
  userPath: boolean | string;
  interpolatedPath: string | null;
  /** Addresses asked for; empty: every address (0.0.0.0 and ::). */
  listen: string[];
  port: number;
  mptcp: boolean;
  enable: ServiceName[];
  disable: ServiceName[];
  allowOverride: ServiceName[];
  forbidOverride: ServiceName[];
  informativeErrors: boolean;
  maxConnections: number;
  /** Connections without their request line yet, overall and per address (0: no limit). */
  maxPending: number;
  maxPendingPerAddress: number;
  /** Seconds of inactivity after which upload-pack gives up (git upload-pack --timeout). */
  timeout: number;
  /** Seconds a client has to send its request line. */
  initTimeout: number;
  /** Seconds to keep retrying an address that fails to bind. */
  bindTimeout: number;
  /** Seconds transfers in flight get to finish after SIGTERM. */
  gracePeriod: number;
  accessHook: string | null;
  user: string | null;
  group: string | null;
  pidFile: string | null;
  inetd: boolean;
  /** Run in the background once every address is bound (implies syslog). */
  detach: boolean;
  logFormat: 'human' | 'json';
  logDestination: 'stderr' | 'syslog' | 'file' | 'none';
  /** --syslog: short for logDestination "syslog" (kept equal to it after resolving). */
  syslog: boolean;
  verbose: boolean;
  /** Log to this file (logDestination "file"); SIGUSR1 reopens it. */
  logFile: string | null;
  /** Serve upload-pack's packs through the pack cache. */
  packCache: boolean;
  /** null: the default (see defaultCacheDir). */
  cacheDir: string | null;
  cacheMaxBytes: number;
  /** Seconds an entry is kept after it was written. */
  cacheMaxAge: number;
  cacheMinOccurrences: number;
  /** ADDR:PORT of the /metrics and /healthz HTTP server; null: off. */
  metricsListen: string | null;
}

export const DEFAULTS: DaemonConfig = {
  basePath: null,
  basePathRelaxed: false,
  exportAll: false,
  directories: [],
  strictPaths: false,
  userPath: false,
  interpolatedPath: null,
  listen: [],
  port: 9418,
  mptcp: false,
  enable: [],
  disable: [],
  allowOverride: [],
  forbidOverride: [],
  informativeErrors: false,
  maxConnections: 32,
  maxPending: 64,
  maxPendingPerAddress: 16,
  timeout: 600,
  initTimeout: 30,
  bindTimeout: 10,
  gracePeriod: 60,
  accessHook: null,
  user: null,
  group: null,
  pidFile: null,
  inetd: false,
  detach: false,
  logFormat: 'human',
  logDestination: 'stderr',
  syslog: false,
  verbose: false,
  logFile: null,
  packCache: true,
  cacheDir: null,
  cacheMaxBytes: 2 * 1024 ** 3,
  cacheMaxAge: 3600,
  cacheMinOccurrences: 1,
  metricsListen: null,
};

const fileSchema = z.strictObject(
  Object.fromEntries(Object.entries(FIELDS).map(([k, f]) => [k, f.schema.optional()])) as {
    [K in SettingKey]: z.ZodOptional<Fields[K]['schema']>;
  },
);

/** How the command line names a setting. */
function flagOf(key: SettingKey): string {
  return key === 'directories' ? '[directory...]' : DAEMON_OPTIONS[key].flag;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function pathText(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** Validates settings from `source` ("config file X" or "the command line"). */
function validate(data: unknown, source: 'file' | 'flags', where: string): Settings {
  const r = fileSchema.safeParse(data, { reportInput: true });
  if (r.success) return r.data as Settings;
  const lines: string[] = [];
  for (const issue of r.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) {
        lines.push(`key ${show(k)} is not a setting; known keys: ${Object.keys(FIELDS).join(', ')}`);
      }
      continue;
    }
    const key = issue.path[0] as SettingKey | undefined;
    const field = key !== undefined ? FIELDS[key] : undefined;
    const name = source === 'flags' && key !== undefined && field ? `option ${flagOf(key)}` : `key ${show(pathText(issue.path))}`;
    const expects = field?.expects ?? 'an object of settings';
    lines.push(`${name}: value ${show(issue.input)} is not valid: expected ${expects}`);
  }
  throw new ConfigError(
    `${where}: ${lines.join('; ')}`,
    source === 'file' ? 'fix the value in the file, or override it on the command line' : 'see `mpgit daemon --help`',
  );
}

/** Reads and validates a JSON config file. */
export async function loadConfigFile(file: string): Promise<Settings> {
  let text: string;
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_CONFIG_BYTES) throw new ConfigError(`config file ${file} is ${buf.length} bytes; the limit is ${MAX_CONFIG_BYTES}`);
    text = buf.toString('utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`, 'check the --config path');
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(e as Error).message}`, 'the file must hold one JSON object');
  }
  return validate(data, 'file', `config file ${file}`);
}

/** Validates settings given as flags (numbers still as the strings typed). */
export function flagSettings(given: Record<string, unknown>): Settings {
  const typed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(given)) {
    const numeric = k in FIELDS && FIELDS[k as SettingKey].schema instanceof z.ZodNumber;
    typed[k] = numeric && typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
  }
  return validate(typed, 'flags', 'invalid command line');
}

/** Defaults, then the file, then the flags; then the checks that span several settings. */
export function resolveConfig(file: Settings, flags: Settings): DaemonConfig {
  const merged = { ...DEFAULTS } as Record<string, unknown>;
  for (const layer of [file, flags]) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) merged[k] = v;
    // --syslog is --log-destination=syslog; within one layer they must agree, a later layer wins.
    if (layer.syslog && layer.logDestination && layer.logDestination !== 'syslog') {
      throw new ConfigError(`--syslog contradicts --log-destination=${layer.logDestination}`, 'give one of them');
    }
    if (layer.syslog) merged.logDestination = 'syslog';
  }
  if (merged.logFile && merged.logDestination === 'stderr') merged.logDestination = 'file';
  merged.syslog = merged.logDestination === 'syslog';
  const cfg = merged as unknown as DaemonConfig;
  if (cfg.detach && cfg.inetd) throw new ConfigError('--detach is incompatible with --inetd', 'inetd starts the daemon per connection: drop --detach');
  if (cfg.basePathRelaxed && !cfg.basePath) throw new ConfigError('--base-path-relaxed needs --base-path', 'give the base path that requested paths are looked up under first');
  if (cfg.inetd && (flags.listen || flags.port !== undefined || flags.pidFile)) {
    throw new ConfigError('--listen, --port and --pid-file are incompatible with --inetd', 'inetd hands the daemon one connection on stdin/stdout');
  }
  if (cfg.logDestination === 'file' && !cfg.logFile) throw new ConfigError('--log-destination=file needs --log-file', 'give the file the log is appended to');
  if (cfg.group && !cfg.user) throw new ConfigError('--group needs --user', 'give the user the service processes run as');
  for (const s of cfg.enable) {
    if (cfg.disable.includes(s)) throw new ConfigError(`service ${s} is both enabled and disabled`, 'keep it in one of --enable / --disable');
  }
  return cfg;
}
