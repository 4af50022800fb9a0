// One `git pack-objects --stdout` run for an inline pack, started by a fetch plan (which adds
// its own arguments and writes the input): the daemon streams its output to a client, and
// `mpgit offload` streams it into the answer cache ahead of the first clone.

import type { Readable, Writable } from 'node:stream';
import { GitCommandError, spawnGit, type GitProcess } from '../git.js';
import type { StartPack } from './plan.js';

/** Bytes of pack read ahead of the consumer before pack-objects is held back. */
const READ_AHEAD = 4 << 20;

export interface PackObjectsOptions {
  ofsDelta: boolean;
  includeTag: boolean;
  /** Ask for progress on stderr (relayed to the client on band 2). */
  progress: boolean;
  /** Each chunk of stderr as it comes (progress, or what went wrong). */
  onStderr?: (chunk: Buffer) => void;
}

export class PackObjects {
  readonly args: string[];
  // The pack as it was read, taken from the start: node discards what a child that has exited
  // left unread on a pipe nobody listens to (and an empty pack is out before its header is).
  // Chunks are handed on as read (a stream's read() would concatenate them: a copy per read).
  private queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private readError: Error | null = null;
  private wake: (() => void) | null = null;
  private stdout: Readable | null = null;
  private child: GitProcess | null = null;
  private errText = '';
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    private readonly gitDir: string,
    private readonly opts: PackObjectsOptions,
  ) {
    // Bitmaps are used when the repository has one (pack.useBitmaps, on by default): `mpgit
    // offload` writes one, and an operator's pack.useBitmaps=false is left in force.
    this.args = ['pack-objects', '--stdout', opts.progress ? '--progress' : '-q'];
    if (opts.ofsDelta) this.args.push('--delta-base-offset');
    if (opts.includeTag) this.args.push('--include-tag');
  }

  /** For the plan: starts pack-objects with its extra arguments, once; returns its stdin. */
  readonly start: StartPack = (extra: string[]): Writable => {
    if (this.child) throw new Error('pack-objects started twice');
    this.args.push(...extra);
    const c = spawnGit(this.gitDir, this.args);
    this.child = c;
    this.take(c.stdout!);
    c.stderr!.on('data', (chunk: Buffer) => {
      if (this.errText.length < 65536) this.errText += chunk.toString();
      this.opts.onStderr?.(chunk);
    });
    this.exited = new Promise<number | null>((resolve, reject) => {
      c.on('error', reject);
      c.on('close', (code) => resolve(code));
    });
    // Seen by finish(); until then a failed spawn must not count as unhandled.
    this.exited.catch(() => {});
    c.stdin!.on('error', () => {});
    return c.stdin!;
  };

  private take(stdout: Readable): void {
    const wake = () => {
      const w = this.wake;
      this.wake = null;
      w?.();
    };
    stdout.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queued += chunk.length;
      if (this.queued >= READ_AHEAD) stdout.pause();
      wake();
    });
    stdout.on('end', () => {
      this.ended = true;
      wake();
    });
    stdout.on('error', (e) => {
      this.readError = e;
      this.ended = true;
      wake();
    });
    this.stdout = stdout;
  }

  /** The pack's bytes, chunk by chunk, until pack-objects closes its output. */
  async *chunks(): AsyncGenerator<Buffer> {
    if (!this.child) throw new Error('pack-objects was not started');
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) {
        this.queued -= chunk.length;
        if (this.queued < READ_AHEAD && this.stdout?.isPaused()) this.stdout.resume();
        yield chunk;
        continue;
      }
      if (this.readError) throw this.readError;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  get started(): boolean {
    return this.child !== null;
  }

  /** What pack-objects said on stderr (bounded). */
  get stderr(): string {
    return this.errText.trim();
  }

  /** Resolves once pack-objects exited 0 (its output read); throws with git's message otherwise. */
  async finish(): Promise<void> {
    const code = await this.exited;
    if (code !== 0) throw new GitCommandError(this.args, this.stderr || `exit ${code}`);
  }

  /** Kills pack-objects if it still runs (the client went away, or we failed). */
  kill(): void {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}
