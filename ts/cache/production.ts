// One run of `git pack-objects` for a cache key, writing straight into a temp file (its stdout
// is the file: the daemon copies no pack byte). Everyone who asks for the key while it runs
// follows the file as it grows; the run goes on to the end whoever disconnects. On exit 0 the
// file is fsynced, checked to start as a pack, and handed to the store (renamed into place)
// once every follower has opened it; on failure it is removed and the followers are told.

import { open, rm, type FileHandle } from 'node:fs/promises';
import { serviceEnv, spawnGitService } from '../git.js';

/** How often the file's size is read while followers wait for bytes. */
const POLL_MS = 20;
/** How long a follower has to open the file once told its path. */
const OPEN_WAIT_MS = 10_000;
/** Bytes of pack-objects' stderr kept for the error message. */
const STDERR_KEEP = 4096;

export interface Follower {
  /** The file to open (`P`); the follower answers through `opened()`. */
  path(p: string): void;
  /** The pid of the pack-objects writing the file (`W`): lets a follower finish without us. */
  producer(pid: number): void;
  /** The first n bytes are final (`S`). */
  grew(n: number): void;
  /** The file is complete at n bytes (`D`). */
  done(n: number): void;
  failed(message: string): void;
}

export type Outcome = { ok: true; size: number } | { ok: false; message: string };

export class Production {
  private readonly followers = new Set<Follower>();
  private pid = 0;
  /** Told the path, not yet opened: they hear no sizes until they have. */
  private readonly unopened = new Set<Follower>();
  /** Not yet opened, within OPEN_WAIT_MS: the temp file is not renamed away under them. */
  private readonly holding = new Set<Follower>();
  private openWaiters: (() => void)[] = [];
  private size = 0;
  private outcome: Outcome | null = null;
  private fh: FileHandle | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Where followers find the bytes: the temp file, then the entry it became. */
  private current: string;
  /** Resolves once the run is over and the file renamed or removed. */
  readonly finished: Promise<Outcome>;

  constructor(
    readonly key: string,
    readonly tempPath: string,
    opts: { gitDir: string; args: string[]; request: Buffer; onStderr?: (text: string) => void; commit: (size: number) => Promise<string | null> },
  ) {
    this.current = tempPath;
    this.finished = this.run(opts);
  }

  get bytes(): number {
    return this.size;
  }

  /** Adds a follower: it gets the path now, then sizes as the file grows. */
  follow(f: Follower): void {
    this.followers.add(f);
    this.unopened.add(f);
    this.holding.add(f);
    f.path(this.current);
    if (this.pid && !this.outcome) f.producer(this.pid);
    // A follower that never answers no longer holds the rename back (it may still answer).
    setTimeout(() => this.release(f), OPEN_WAIT_MS).unref();
  }

  /** Stops the run (the daemon is stopping and nobody is left to follow it): no entry. */
  abort(): void {
    if (!this.pid || this.outcome) return;
    try {
      process.kill(-this.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }

  /** The follower opened the file: from now on it hears of every byte. */
  opened(f: Follower): void {
    if (!this.unopened.delete(f)) return;
    if (this.outcome) this.tell(f);
    else if (this.size > 0) f.grew(this.size);
    this.release(f);
  }

  /** The follower is gone (its client disconnected, or it could not open the file): the run goes on. */
  leave(f: Follower): void {
    this.followers.delete(f);
    this.unopened.delete(f);
    this.release(f);
  }

  private release(f: Follower): void {
    if (this.holding.delete(f) && this.holding.size === 0) for (const w of this.openWaiters.splice(0)) w();
  }

  private tell(f: Follower): void {
    const o = this.outcome!;
    if (o.ok) f.done(o.size);
    else f.failed(o.message);
  }

  private async poll(): Promise<void> {
    if (!this.fh || this.outcome) return;
    const st = await this.fh.stat().catch(() => null);
    if (st && st.size > this.size && !this.outcome) {
      this.size = st.size;
      for (const f of this.followers) if (!this.unopened.has(f)) f.grew(this.size);
    }
  }

  private async run(opts: { gitDir: string; args: string[]; request: Buffer; onStderr?: (text: string) => void; commit: (size: number) => Promise<string | null> }): Promise<Outcome> {
    let outcome: Outcome;
    try {
      this.fh = await open(this.tempPath, 'wx+', 0o600);
      outcome = await this.produce(opts);
      if (outcome.ok) {
        await this.fh.sync();
        const head = Buffer.alloc(4);
        await this.fh.read(head, 0, 4, 0);
        if (outcome.size < 32 || head.toString('latin1') !== 'PACK') outcome = { ok: false, message: `pack-objects wrote ${outcome.size} bytes that are not a pack` };
      }
    } catch (e) {
      outcome = { ok: false, message: `pack cache: ${(e as Error).message}` };
    }
    if (this.timer) clearInterval(this.timer);
    await this.fh?.close().catch(() => {});
    if (outcome.ok) this.size = outcome.size;
    // Followers open the temp path: it must stay until each has (or has given up).
    if (this.holding.size) await new Promise<void>((r) => this.openWaiters.push(r));
    let kept: string | null = null;
    if (outcome.ok) {
      try {
        kept = await opts.commit(outcome.size);
      } catch (e) {
        outcome = { ok: false, message: `pack cache: cannot keep the pack: ${(e as Error).message}` };
      }
    }
    // A follower told the old path after this fails to open it and packs by itself.
    if (kept) this.current = kept;
    else await rm(this.tempPath, { force: true });
    this.outcome = outcome;
    for (const f of this.followers) if (!this.unopened.has(f)) this.tell(f);
    return outcome;
  }

  private produce(opts: { gitDir: string; args: string[]; request: Buffer; onStderr?: (text: string) => void }): Promise<Outcome> {
    // No progress: nobody sees it, and a pack-objects that writes nothing to stderr lives on
    // (and finishes the file for its followers) if the daemon is killed.
    // opts.args is the hook's command line, `git ...` (checked by the cache before it gets here).
    const [, ...args] = opts.args.map((a) => (a === '--progress' ? '-q' : a));
    return new Promise((resolve) => {
      // A session of its own, as upload-pack has: a signal to the daemon's group spares it.
      const child = spawnGitService(opts.gitDir, args, serviceEnv(), { stdout: this.fh!.fd });
      if (child.pid) {
        this.pid = child.pid;
        for (const f of this.followers) f.producer(child.pid);
      }
      let stderr = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (c: string) => {
        // Progress lines end in \r; only the tail matters for an error message.
        stderr = (stderr + c).slice(-STDERR_KEEP);
      });
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.request);
      this.timer = setInterval(() => void this.poll(), POLL_MS);
      child.on('error', (e) => resolve({ ok: false, message: `cannot run git: ${e.message}` }));
      child.on('close', async (code, signal) => {
        if (code === 0) {
          const st = await this.fh!.stat();
          resolve({ ok: true, size: st.size });
          return;
        }
        const last = stderr.split(/[\r\n]+/).filter((l) => l.trim()).slice(-3).join('; ');
        opts.onStderr?.(last);
        resolve({ ok: false, message: `pack-objects ${signal ? `killed by ${signal}` : `exited ${code}`}${last ? `: ${last}` : ''}` });
      });
    });
  }
}
