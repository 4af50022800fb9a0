// --log-file: the log appended to a file, one write per line (O_APPEND, so several writers and
// logrotate's copytruncate stay line-whole). reopen() is for SIGUSR1 after logrotate renamed it.

import { closeSync, openSync, writeSync } from 'node:fs';

export class LogFile {
  private fd: number;
  private failed = false;

  constructor(readonly path: string, private readonly warn: (text: string) => void) {
    this.fd = openSync(path, 'a', 0o640);
  }

  write(line: string): void {
    try {
      writeSync(this.fd, line);
      this.failed = false;
    } catch (e) {
      // A full disk must not stop serving; say so once per run of failures.
      if (!this.failed) this.warn(`mpgit daemon: cannot write the log file ${this.path}: ${(e as Error).message}\n`);
      this.failed = true;
    }
  }

  /** Opens the path again (a rotated file is let go of); on failure keeps the old one. */
  reopen(): string | null {
    try {
      const fd = openSync(this.path, 'a', 0o640);
      closeSync(this.fd);
      this.fd = fd;
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
