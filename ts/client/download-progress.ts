// Progress of packfile-URI downloads: what each URI is doing, rates over a short window, and
// the lines printed on stderr.

import { humanBytes } from '../progress.js';

export type UriState = 'queued' | 'downloading' | 'retrying' | 'verifying' | 'done' | 'failed';

export interface UriProgress {
  hash: string;
  uri: string;
  state: UriState;
  /** Bytes on disk (including those from an earlier, interrupted run). */
  received: number;
  /** Bytes fetched over the network by this run. */
  fetched: number;
  /** Full size, once a response told it. */
  total: number | null;
  /** Bytes per second over the last few seconds. */
  rate: number;
  attempts: number;
}

export interface DownloadProgress {
  uris: UriProgress[];
  received: number;
  fetched: number;
  /** Sum of the known totals (null while any is unknown). */
  total: number | null;
  rate: number;
  done: number;
}

/** Window over which rates are measured. */
const RATE_WINDOW_MS = 3000;

/** Bytes per second over the last RATE_WINDOW_MS. */
export class Rate {
  private samples: { t: number; bytes: number }[] = [];
  add(bytes: number): void {
    const t = Date.now();
    this.samples.push({ t, bytes });
    while (this.samples.length && t - this.samples[0]!.t > RATE_WINDOW_MS) this.samples.shift();
  }
  get(): number {
    const now = Date.now();
    const live = this.samples.filter((s) => now - s.t <= RATE_WINDOW_MS);
    if (!live.length) return 0;
    const span = Math.max(250, now - live[0]!.t);
    return (live.reduce((a, s) => a + s.bytes, 0) * 1000) / span;
  }
}

/**
 * Renders download progress on stderr: one line rewritten in place on a terminal (total, rate,
 * per-URI shares), and a line per finished pack.
 */
export class DownloadProgressPrinter {
  private announced = new Set<string>();
  private lastLine = '';
  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
    /** What is downloaded: packs named by packfile URIs, or bundles. */
    private readonly what: 'pack' | 'bundle' = 'pack',
  ) {}

  update(p: DownloadProgress): void {
    for (const u of p.uris) {
      if (u.state === 'done' && !this.announced.has(u.hash)) {
        this.announced.add(u.hash);
        const how = u.fetched === 0 ? 'already downloaded' : u.fetched < u.received ? `resumed, fetched ${humanBytes(u.fetched)}` : 'downloaded';
        this.clear();
        this.write(this.what === 'pack' ? `Pack ${u.hash.slice(0, 12)}: ${humanBytes(u.received)} ${how} from ${u.uri}\n` : `Bundle: ${humanBytes(u.received)} ${how} from ${u.uri}\n`);
      }
    }
    if (!this.tty) return;
    const total = p.total !== null ? ` / ${humanBytes(p.total)}` : '';
    const parts = p.uris
      .filter((u) => u.state === 'downloading' || u.state === 'retrying')
      .map((u) => `${u.hash.slice(0, 7)} ${u.total ? Math.floor((u.received * 100) / u.total) : 0}%${u.state === 'retrying' ? ' (retrying)' : ''}`);
    const line = `Downloading ${this.what}s: ${p.done}/${p.uris.length}, ${humanBytes(p.received)}${total} | ${humanBytes(p.rate)}/s${parts.length ? ` [${parts.join(', ')}]` : ''}`;
    this.lastLine = line;
    this.write(`\r${line}\x1b[K`);
  }

  private clear(): void {
    if (this.tty && this.lastLine) this.write('\r\x1b[K');
  }

  /** Final summary line. */
  finish(packs: { size: number; fetched: number }[], ms: number): void {
    this.clear();
    const bytes = packs.reduce((a, p) => a + p.size, 0);
    const fetched = packs.reduce((a, p) => a + p.fetched, 0);
    const rate = ms > 0 ? (fetched * 1000) / ms : 0;
    const source = this.what === 'pack' ? `pack${packs.length === 1 ? '' : 's'} from packfile URIs` : `bundle${packs.length === 1 ? '' : 's'}`;
    this.write(`Downloaded ${packs.length} ${source}: ${humanBytes(bytes)} (${humanBytes(fetched)} fetched now, ${humanBytes(rate)}/s)\n`);
  }
}
