// The services a git:// daemon runs, as git daemon defines them: which are on by default, which
// a repository may switch with daemon.<name> in its config, the access hook, and the process
// that serves one connection (`git upload-pack --strict --timeout=N .` and friends) with the
// client's socket as its stdin/stdout, in a session of its own so that it outlives the daemon.

// Not git (ts/git.ts runs that): the access hook, the administrator's own program.
import { execFile } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { SERVICE_NAMES, type DaemonConfig, type ServiceName } from './config.js';
import { releaseReading } from './request-reader.js';
import { configFingerprint } from '../repo/server-refs.js';
import { FileMemo } from '../repo/file-memo.js';
import { runGit, spawnGitService, type GitProcess } from '../git.js';

export interface ServiceDef {
  name: ServiceName;
  /** The daemon.<key> a repository's config may set. */
  configKey: string;
  enabledByDefault: boolean;
}

export const SERVICES: Record<ServiceName, ServiceDef> = {
  'upload-pack': { name: 'upload-pack', configKey: 'uploadpack', enabledByDefault: true },
  'upload-archive': { name: 'upload-archive', configKey: 'uploadarch', enabledByDefault: false },
  'receive-pack': { name: 'receive-pack', configKey: 'receivepack', enabledByDefault: false },
};

/** Bound on `git config daemon.<service>` and the access hook. */
const HELPER_TIMEOUT_MS = 10_000;
/** Bytes of a helper's output we look at. */
const HELPER_MAX_OUTPUT = 64 * 1024;

/** The service named in a request ("git-upload-pack" -> "upload-pack"). */
export function serviceOf(requestService: string): ServiceName | null {
  const name = requestService.replace(/^git-/, '');
  return (SERVICE_NAMES as readonly string[]).includes(name) ? (name as ServiceName) : null;
}

/** Whether the daemon's flags turn a service on, and whether a repository may override that. */
export function serviceFlags(cfg: Pick<DaemonConfig, 'enable' | 'disable' | 'allowOverride' | 'forbidOverride'>, s: ServiceName): { enabled: boolean; overridable: boolean } {
  let enabled = SERVICES[s].enabledByDefault;
  if (cfg.enable.includes(s)) enabled = true;
  if (cfg.disable.includes(s)) enabled = false;
  // git daemon: every service is overridable unless --forbid-override says otherwise.
  const overridable = !cfg.forbidOverride.includes(s) || cfg.allowOverride.includes(s);
  return { enabled, overridable };
}

/** Runs the access hook (bounded in time and output); its exit code and stdout. */
function runHelper(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...opts, timeout: HELPER_TIMEOUT_MS, maxBuffer: HELPER_MAX_OUTPUT }, (err, stdout) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout) });
    });
  });
}

/** daemon.<key> in the repository's config (and the global/system ones): true, false or unset. */
export async function repoServiceSetting(gitDir: string, s: ServiceName): Promise<boolean | null | Error> {
  // Every connection asks: remembered while the config files are unchanged (and for a minute
  // at most, for files they include), so a busy mirror runs no git per connection for it.
  const key = `${gitDir}\0${s}`;
  const fp = await configFingerprint(gitDir);
  const known = settingMemo.get(key, fp);
  if (known !== undefined) return known;
  // GIT_DIR given explicitly: no discovery, so no "dubious ownership" refusal for a repository
  // owned by another user (git daemon reads it the same way).
  let r: { stdout: Buffer; code: number };
  try {
    r = await runGit(gitDir, ['config', '--bool', '--get', `daemon.${SERVICES[s].configKey}`], { okCodes: [1], timeoutMs: HELPER_TIMEOUT_MS, maxOutput: HELPER_MAX_OUTPUT });
  } catch (e) {
    return e as Error;
  }
  const value = r.code === 1 ? null : r.stdout.toString().trim() === 'true';
  settingMemo.set(key, fp, value);
  return value;
}

const settingMemo = new FileMemo<boolean | null>(10_000);

/** Runs --access-hook: exit 0 allows; otherwise its first line of output is the refusal. */
export async function runAccessHook(hook: string, args: { service: ServiceName; gitDir: string; host?: string; hostIp?: string; port?: number }, env: NodeJS.ProcessEnv): Promise<string | null> {
  const argv = [args.service, args.gitDir, args.host ?? '', args.host ?? '', args.hostIp ?? '', args.port ? String(args.port) : ''];
  const r = await runHelper(hook, argv, { cwd: args.gitDir, env });
  if (r.code === 0) return null;
  const first = r.stdout.trim().split('\n')[0]!.trim();
  return first || 'service rejected';
}

/** git's arguments for a service. */
export function serviceArgs(s: ServiceName, cfg: Pick<DaemonConfig, 'timeout'>): string[] {
  switch (s) {
    case 'upload-pack':
      return ['upload-pack', '--strict', `--timeout=${cfg.timeout}`, '.'];
    case 'upload-archive':
      return ['upload-archive', '.'];
    case 'receive-pack':
      return ['receive-pack', '.'];
  }
}

export interface ServiceProcess {
  child: GitProcess;
  /** Resolves with the exit code (128 + signal number when killed) once the process exits. */
  exited: Promise<{ code: number; signal: NodeJS.Signals | null }>;
  /** The connection went through pipes (the socket was not handed to the process). */
  relayed: boolean;
}

/**
 * Starts the service with the client's connection as its stdin/stdout. Passing the socket
 * itself (not pipes through the daemon) is what lets a transfer survive the daemon's death.
 * When the client already sent bytes past the request line (git archive --remote sends its
 * arguments at once), the daemon relays both directions through pipes instead, so that nothing
 * is lost and the socket is never shared.
 */
export function spawnService(opts: {
  args: string[];
  gitDir: string;
  env: NodeJS.ProcessEnv;
  stdin: Readable | number;
  stdout: Writable | number;
  leftover: Buffer;
  onStderrLine: (line: string) => void;
}): ServiceProcess {
  const relay = opts.leftover.length > 0;
  // A session of its own (spawnGitService): shutdown signals it explicitly.
  const child = spawnGitService(opts.gitDir, opts.args, opts.env, relay ? {} : { stdin: opts.stdin, stdout: opts.stdout });
  let relayed: Promise<void> = Promise.resolve();
  if (relay) {
    const input = opts.stdin as Readable;
    const output = opts.stdout as Writable;
    child.stdin!.on('error', () => {}); // the service may exit before reading everything
    child.stdin!.write(opts.leftover);
    releaseReading(input);
    input.pipe(child.stdin!);
    const out = child.stdout!;
    out.pipe(output, { end: false });
    // Once the client cannot take more (reset, closed), the rest of the answer is read and
    // dropped: a service blocked on a full pipe would never exit, and its slot never free.
    const drop = () => {
      out.unpipe(output);
      out.resume();
    };
    output.once('error', drop);
    output.once('close', drop);
    relayed = new Promise((r) => {
      out.once('close', () => r());
      out.once('error', () => r());
    });
    void relayed.then(() => {
      output.off('error', drop);
      output.off('close', drop);
    });
  }
  relayLines(child.stderr!, opts.onStderrLine);
  const exited = new Promise<{ code: number; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (e) => {
      opts.onStderrLine(`cannot run git ${opts.args.find((a) => !a.startsWith('-') && !a.includes('='))}: ${e.message}`);
      resolve({ code: 127, signal: null });
    });
    child.on('exit', (code, signal) => {
      // Relayed output still in the pipe reaches the client before we report the end.
      void relayed.then(() => {
        if (relay) (opts.stdin as Readable).unpipe(child.stdin!);
        resolve({ code: code ?? 128, signal });
      });
    });
  });
  return { child, exited, relayed: relay };
}

/** Longest stderr line passed to the log, and most lines per connection. */
const MAX_STDERR_LINE = 1000;
const MAX_STDERR_LINES = 200;

function relayLines(stream: Readable, onLine: (line: string) => void): void {
  let partial = '';
  let lines = 0;
  const emit = (l: string) => {
    if (++lines <= MAX_STDERR_LINES) onLine(l.length > MAX_STDERR_LINE ? `${l.slice(0, MAX_STDERR_LINE)}...` : l);
    else if (lines === MAX_STDERR_LINES + 1) onLine('(further error output dropped)');
  };
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => {
    partial += c;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      emit(partial.slice(0, nl));
      partial = partial.slice(nl + 1);
    }
    if (partial.length > MAX_STDERR_LINE) {
      emit(partial);
      partial = '';
    }
  });
  stream.on('end', () => {
    if (partial) emit(partial);
  });
  stream.on('error', () => {});
}
