// Running the host's network tools (`ip`, `tc`, `ss`, `sysctl`) with bounded waits and output:
// async for normal use, sync for exit handlers, where nothing async can run any more.

// Not git (ts/git.ts runs that): the host's network tools.
import { execFile, execFileSync } from 'node:child_process';

/** Every command that builds or observes the bed is bounded by this. */
export const COMMAND_TIMEOUT_MS = 15_000;
const MAX_OUTPUT = 16 * 1024 * 1024;

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args`; resolves with its exit status and output (never rejects on a non-zero exit). */
export function exec(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new Error(`${cmd}: ${err.message}`)); // not started (ENOENT...)
          return;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: err && (err as { killed?: boolean }).killed ? 124 : code, stdout, stderr });
      },
    );
    child.stdin?.on('error', () => {}); // a command that exits without reading its input
    child.stdin?.end(opts.input ?? '');
  });
}

/** Runs `cmd args` and throws, with its stderr, unless it exits 0. */
export async function execOk(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) throw new Error(`\`${cmd} ${args.join(' ')}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Synchronous variant for exit paths: returns stdout, or null when the command failed. */
export function execSyncQuiet(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}
