// Progress meters printed the way git prints them (progress.c):
//   "Receiving objects:  45% (381/846), 1.20 MiB | 3.40 MiB/s\r" ... ", done.\n"
// Redrawn in place with CR, at most when the percentage changes or once a second.

/** Where progress goes; `tty` decides the clear-to-end-of-line. */
export interface ProgressSink {
  write(text: string): void;
  tty: boolean;
}

export function stderrSink(): ProgressSink {
  return { write: (t) => process.stderr.write(t), tty: !!process.stderr.isTTY };
}

/** git's strbuf_humanise_bytes: "512 bytes", "1.20 KiB", "3.40 MiB", "1.07 GiB". */
export function humanBytes(n: number): string {
  const units: [number, string][] = [
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [size, unit] of units) {
    if (n >= size) {
      const x = Math.floor(n) + Math.round(size / 200); // round to the nearest 1/100
      return `${Math.floor(x / size)}.${String(Math.floor(((x % size) * 100) / size)).padStart(2, '0')} ${unit}`;
    }
  }
  return `${Math.floor(n)} ${n === 1 ? 'byte' : 'bytes'}`;
}

/** Minimum time between redraws when the percentage does not change. */
const REDRAW_MS = 1000;
/** Window over which the transfer rate is measured. */
const RATE_WINDOW_MS = 2000;

export class Progress {
  private last = '';
  private lastPct = -1;
  private lastDraw = 0;
  private readonly started = Date.now();
  private samples: [number, number][] = [];
  private shown = false;

  /**
   * @param sink null: stay silent (-q, or progress off)
   * @param delayMs show nothing unless the work takes longer than this (git's delayed progress)
   */
  constructor(
    private readonly sink: ProgressSink | null,
    private readonly title: string,
    private total: number,
    private readonly opts: { throughput?: boolean; delayMs?: number } = {},
  ) {}

  setTotal(total: number): void {
    this.total = total;
  }

  update(n: number, bytes = 0, force = false): void {
    if (!this.sink) return;
    const now = Date.now();
    if (this.opts.throughput) {
      this.samples.push([now, bytes]);
      while (this.samples.length > 2 && now - this.samples[0]![0] > RATE_WINDOW_MS) this.samples.shift();
    }
    if (!this.shown && this.opts.delayMs && now - this.started < this.opts.delayMs) return;
    const pct = this.total ? Math.floor((n * 100) / this.total) : -1;
    if (!force && pct === this.lastPct && now - this.lastDraw < REDRAW_MS) return;
    this.lastPct = pct;
    this.lastDraw = now;
    this.draw(this.line(n, bytes), '\r');
  }

  private line(n: number, bytes: number): string {
    let s = this.total ? `${this.title}: ${String(Math.floor((n * 100) / this.total)).padStart(3)}% (${n}/${this.total})` : `${this.title}: ${n}`;
    if (this.opts.throughput) {
      const first = this.samples[0];
      const last = this.samples[this.samples.length - 1];
      const dt = first && last ? (last[0] - first[0]) / 1000 : 0;
      const rate = dt > 0 ? (last![1] - first![1]) / dt : 0;
      s += `, ${humanBytes(bytes)}`;
      if (rate > 0) s += ` | ${humanBytes(rate)}/s`;
    }
    return s;
  }

  private draw(text: string, end: string): void {
    const clear = this.sink!.tty && text.length < this.last.length ? ' '.repeat(this.last.length - text.length) : '';
    this.sink!.write(`${text}${clear}${end}`);
    this.last = text;
    this.shown = true;
  }

  /** Final line: the totals and ", done." */
  done(n: number, bytes = 0): void {
    if (!this.sink) return;
    if (!this.shown && this.opts.delayMs && Date.now() - this.started < this.opts.delayMs) return;
    if (this.opts.throughput) this.samples.push([Date.now(), bytes]);
    this.draw(`${this.line(n, bytes)}, done.`, '\n');
  }

  /** Ends a half-drawn line (before an error message). */
  abort(): void {
    if (this.sink && this.shown && !this.last.endsWith('done.')) this.sink.write('\n');
    this.shown = false;
  }
}
