// Running git: pack generation, object listing and ref reading are git's (`pack-objects`,
// `rev-list`, `for-each-ref`), and so are the daemon's services (`upload-pack` ...). This is the
// one module that starts git: in an environment that cannot point it at another repository,
// with bounded captured output and errors that carry git's own message.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { MpgitError } from './errors.js';

/** Environment variables that point git at a repository: never inherited by a service. */
const LOCAL_GIT_ENV = [
  'GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_PREFIX', 'GIT_CONFIG', 'GIT_CONFIG_PARAMETERS', 'GIT_CONFIG_COUNT',
  'GIT_GRAFT_FILE', 'GIT_IMPLICIT_WORK_TREE', 'GIT_NO_REPLACE_OBJECTS', 'GIT_REPLACE_REF_BASE',
  'GIT_SHALLOW_FILE', 'GIT_PROTOCOL', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES',
];

/** This process's environment minus variables that would redirect git to another repository. */
export function serviceEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of LOCAL_GIT_ENV) delete env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Largest stdout captured in memory from one git command. */
const MAX_CAPTURE = 256 * 1024 * 1024;
/** Largest stderr kept for an error message. */
const MAX_STDERR = 64 * 1024;

export class GitCommandError extends MpgitError {
  constructor(
    args: string[],
    /** git's own words (its stderr), or what went wrong running it. */
    readonly detail: string,
  ) {
    super('MPGIT_GIT', `git ${args.slice(0, 3).join(' ')} failed: ${detail}`, 'check that the repository is intact (`git fsck`) and that git is installed');
    this.name = 'GitCommandError';
  }
}

export interface GitRunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Exit codes that are answers rather than failures (e.g. 1 for "no such ref"). */
  okCodes?: number[];
  maxOutput?: number;
  /** Killed (and failed) after this long. */
  timeoutMs?: number;
}

/**
 * Where git runs: a repository it is pointed at; a path it finds the repository from, with
 * nothing inherited pointing elsewhere; a directory, in the user's own environment; or a
 * daemon's service, which finds the repository in its directory as git daemon's do (no
 * GIT_DIR), with exactly the environment the daemon built for it (serviceEnv's).
 */
type Place = { gitDir: string } | { discover: string } | { cwd: string } | { service: string };

/** Where a spawned git's stdin and stdout go instead of pipes, and whether it outlives the daemon. */
export interface SpawnGitOptions {
  /** The client's bytes (its socket or an fd): git reads them itself. */
  stdin?: Readable | number;
  /** A client's socket (or fd): git writes its answer there itself. */
  stdout?: Writable | number;
  /** A session of its own: neither the daemon's death nor a signal to its group reaches it. */
  detached?: boolean;
}

function start(place: Place, args: string[], env?: NodeJS.ProcessEnv, how: SpawnGitOptions = {}): ChildProcess {
  // Nothing inherited may point git at another repository, except where git runs on the
  // user's behalf (their identity, their -c settings).
  const where =
    'gitDir' in place
      ? { cwd: place.gitDir, env: { ...serviceEnv(), GIT_DIR: place.gitDir, ...env } }
      : 'discover' in place
        ? { cwd: place.discover, env: { ...serviceEnv(), ...env } }
        : 'service' in place
          ? { cwd: place.service, env: env ?? serviceEnv() }
          : { cwd: place.cwd, env: { ...process.env, ...env } };
  const stdio = [how.stdin ?? 'pipe', how.stdout ?? 'pipe', 'pipe'] as never;
  return spawn('git', args, { ...where, stdio, detached: how.detached ?? false });
}

/** A running git (its stdio as it was started: pipes unless handed other ends). */
export type GitProcess = ChildProcess;

/** Starts git in `gitDir` with piped stdio; stderr is collected (bounded) by the caller's choice. */
export function spawnGit(gitDir: string, args: string[], env?: NodeJS.ProcessEnv, how?: SpawnGitOptions): GitProcess {
  return start({ gitDir }, args, env, how);
}

/**
 * Starts a git that serves on ends the caller hands it (a client's socket, a file) or pipes:
 * in `cwd`, the repository it finds there as git daemon's services do (no GIT_DIR), with exactly
 * `env` (built with serviceEnv), stderr piped, and in a session of its own: neither the daemon's
 * death nor a signal to its process group (Ctrl-C, `kill -- -pgid`) reaches the transfer.
 */
export function spawnGitService(cwd: string, args: string[], env: NodeJS.ProcessEnv, how: Omit<SpawnGitOptions, 'detached'> = {}): GitProcess {
  return start({ service: cwd }, args, env, { ...how, detached: true });
}

/** Runs git on the repository `gitDir` to completion; resolves with stdout, the exit code (when in okCodes) and stderr (bounded). */
export function runGit(gitDir: string, args: string[], opts: GitRunOptions = {}): Promise<{ stdout: Buffer; code: number; stderr: string }> {
  return run({ gitDir }, args, opts);
}

/** Runs git in the directory `cwd` (it finds the repository itself, or needs none), with the user's environment. */
export function runGitIn(cwd: string, args: string[], opts: GitRunOptions = {}): Promise<{ stdout: Buffer; code: number; stderr: string }> {
  return run({ cwd }, args, opts);
}

function run(place: Place, args: string[], opts: GitRunOptions): Promise<{ stdout: Buffer; code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = start(place, args, opts.env);
    const out: Buffer[] = [];
    let outLen = 0;
    let err = '';
    const max = opts.maxOutput ?? MAX_CAPTURE;
    let overflow = false;
    let timedOut = false;
    const timer = opts.timeoutMs === undefined ? null : setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), opts.timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      outLen += c.length;
      if (outLen > max) {
        overflow = true;
        child.kill('SIGKILL');
        return;
      }
      out.push(c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (err.length < MAX_STDERR) err += c.toString();
    });
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new GitCommandError(args, e.message));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (overflow) return reject(new GitCommandError(args, `output over ${max} bytes`));
      if (timedOut) return reject(new GitCommandError(args, `no answer within ${opts.timeoutMs} ms`));
      if (code === 0 || (code !== null && opts.okCodes?.includes(code))) return resolve({ stdout: Buffer.concat(out), code, stderr: err });
      reject(new GitCommandError(args, err.trim() || `exit ${code ?? signal}`));
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** What a synchronous git run gave: exit status, output (bounded), and why it could not run. */
export interface GitSyncResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  /** Set when git could not run (ENOENT: not installed) or its output passed the bound (ENOBUFS). */
  error: NodeJS.ErrnoException | null;
}

/**
 * Runs git to completion synchronously in `cwd`, with `env` (the user's environment by default),
 * for the few steps that cannot wait: reading the configuration at start-up, setting up
 * submodules. `inherit` shows git's output to the user instead of capturing it.
 */
export function runGitSync(cwd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; maxOutput?: number; inherit?: boolean } = {}): GitSyncResult {
  const r = spawnSync('git', args, {
    cwd,
    env: opts.env ?? process.env,
    maxBuffer: opts.maxOutput ?? MAX_CAPTURE,
    stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
  });
  return {
    status: r.status,
    stdout: r.stdout ?? Buffer.alloc(0),
    stderr: r.stderr ? r.stderr.toString().slice(0, MAX_STDERR) : '',
    error: (r.error as NodeJS.ErrnoException | undefined) ?? null,
  };
}

/** stdout as text without the final newline. */
export async function gitText(gitDir: string, args: string[], opts: GitRunOptions = {}): Promise<string> {
  return (await runGit(gitDir, args, opts)).stdout.toString('utf8').replace(/\n$/, '');
}

/** stdout as non-empty lines. */
export async function gitLines(gitDir: string, args: string[], opts: GitRunOptions = {}): Promise<string[]> {
  const t = await gitText(gitDir, args, opts);
  return t ? t.split('\n') : [];
}

/** The absolute git dir of the repository at `path` (bare or not). */
export async function resolveGitDir(path: string): Promise<string> {
  try {
    return (await run({ discover: path }, ['rev-parse', '--absolute-git-dir'], {})).stdout.toString().trim();
  } catch (e) {
    throw new MpgitError('MPGIT_NOT_A_REPO', `${path} is not a git repository: ${(e as GitCommandError).detail}`, 'give the path of a git repository');
  }
}

/**
 * Which of `oids` exist in the repository, with their types (one `cat-file --batch-check`).
 * Missing objects are absent from the map.
 */
export async function objectTypes(gitDir: string, oids: string[]): Promise<Map<string, { type: string; size: number }>> {
  const out = new Map<string, { type: string; size: number }>();
  if (!oids.length) return out;
  const text = await gitText(gitDir, ['cat-file', '--batch-check=%(objectname) %(objecttype) %(objectsize)'], { input: oids.join('\n') + '\n' });
  for (const line of text.split('\n')) {
    const [oid, type, size] = line.split(' ');
    if (type && type !== 'missing' && oid) out.set(oid, { type, size: Number(size) });
  }
  return out;
}
