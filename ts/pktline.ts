// The pkt-line codec (gitprotocol-common): a 4-hex-digit length that counts itself, then data.
// 0000 flush, 0001 delim, 0002 response-end. Every length is checked before anything is
// buffered for it, and every wait for bytes is bounded.

import type { Readable } from 'node:stream';
import { ProtocolError, TimeoutError } from './errors.js';

/** Largest pkt-line on the wire, header included (LARGE_PACKET_MAX). */
export const MAX_PKT_LEN = 65520;
/** Largest payload of one pkt-line. */
export const MAX_PKT_DATA = MAX_PKT_LEN - 4;

export type Pkt =
  | { kind: 'data'; data: Buffer }
  | { kind: 'flush' }
  | { kind: 'delim' }
  | { kind: 'end' };

export const FLUSH = Buffer.from('0000');
export const DELIM = Buffer.from('0001');
export const RESPONSE_END = Buffer.from('0002');

/** Encodes one data pkt-line. Text gets no newline added: pass it with one where git wants it. */
export function pkt(data: string | Buffer): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (body.length > MAX_PKT_DATA) throw new RangeError(`pkt-line payload of ${body.length} bytes exceeds ${MAX_PKT_DATA}`);
  const head = Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'ascii');
  return Buffer.concat([head, body]);
}

/** Encodes a text line as a pkt-line ending in LF. */
export function pktLine(text: string): Buffer {
  return pkt(text.endsWith('\n') ? text : `${text}\n`);
}

/** The text of a data packet without its trailing LF. */
export function pktText(p: Pkt): string {
  if (p.kind !== 'data') return '';
  const s = p.data.toString('utf8');
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

/** Parses the 4-byte header: data length, or a special packet. */
export function parseHeader(head: Buffer): { kind: 'data'; len: number } | { kind: 'flush' | 'delim' | 'end' } {
  return parseHeaderText(head.toString('latin1'));
}

function parseHeaderText(text: string): { kind: 'data'; len: number } | { kind: 'flush' | 'delim' | 'end' } {
  if (!/^[0-9a-fA-F]{4}$/.test(text)) throw new ProtocolError(`bad pkt-line header ${JSON.stringify(text)}: expected 4 hex digits`);
  const len = parseInt(text, 16);
  if (len === 0) return { kind: 'flush' };
  if (len === 1) return { kind: 'delim' };
  if (len === 2) return { kind: 'end' };
  if (len < 4) throw new ProtocolError(`bad pkt-line length ${len}: lengths 3 and below are reserved`);
  if (len > MAX_PKT_LEN) throw new ProtocolError(`pkt-line length ${len} exceeds the maximum of ${MAX_PKT_LEN}`);
  return { kind: 'data', len: len - 4 };
}

/** Splits a buffer that holds whole pkt-lines (tests, and requests read in full). */
export function parsePkts(buf: Buffer): Pkt[] {
  const out: Pkt[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 4) throw new ProtocolError('truncated pkt-line header');
    const h = parseHeader(buf.subarray(at, at + 4));
    at += 4;
    if (h.kind !== 'data') {
      out.push({ kind: h.kind });
      continue;
    }
    if (buf.length - at < h.len) throw new ProtocolError(`truncated pkt-line: ${h.len} bytes announced, ${buf.length - at} present`);
    out.push({ kind: 'data', data: buf.subarray(at, at + h.len) });
    at += h.len;
  }
  return out;
}

export interface PktReaderOptions {
  /** Longest wait for the next bytes, in ms (0 = no limit). */
  timeoutMs?: number;
  /** Bytes buffered before the stream is paused. */
  highWater?: number;
  /** What is being read, for error messages ("the server's ref advertisement"). */
  what?: string;
}

/**
 * Pull-style reader over a byte stream: pkt-lines, then (where a protocol switches to raw
 * bytes, as v0 without side-band does for the pack) raw chunks. Pauses the stream while
 * its buffer is full, so a fast peer cannot make us hold more than `highWater` bytes.
 */
export class PktReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private readonly timeoutMs: number;
  private readonly highWater: number;
  private readonly what: string;

  constructor(private readonly stream: Readable, opts: PktReaderOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 0;
    this.highWater = opts.highWater ?? 1 << 20;
    this.what = opts.what ?? 'the peer';
    stream.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.buffered += c.length;
      if (this.buffered >= this.highWater) stream.pause();
      this.notify();
    });
    stream.on('end', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('close', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', (e: Error) => {
      this.failure = e;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Bytes already received and not yet consumed. */
  get pending(): number {
    return this.buffered;
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.failure) throw this.failure;
      if (this.ended) return false;
      this.stream.resume();
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        this.wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
        if (this.timeoutMs > 0) {
          timer = setTimeout(() => {
            this.wake = null;
            reject(new TimeoutError(`waiting for ${this.what}`, this.timeoutMs));
          }, this.timeoutMs);
        }
      });
    }
    return true;
  }

  private take(n: number): Buffer {
    // An empty packet ("0004") may come when nothing else is buffered.
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      // A view, not a copy: a million small packets must not mean a million small allocations.
      this.skip(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    if (this.buffered < this.highWater && this.stream.isPaused()) this.stream.resume();
    return out;
  }

  /** Drops n buffered bytes. */
  private skip(n: number): void {
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        left -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
    if (this.buffered < this.highWater && this.stream.isPaused()) this.stream.resume();
  }

  /**
   * The next packet when it is already wholly buffered, else undefined (then await read()).
   * No promise per packet: requests of a million lines are read without a million of them.
   */
  readBuffered(): Pkt | undefined {
    if (this.buffered < 4) return undefined;
    const c = this.chunks[0]!;
    const h = parseHeaderText(c.length >= 4 ? c.toString('latin1', 0, 4) : Buffer.concat(this.chunks).toString('latin1', 0, 4));
    if (h.kind !== 'data') {
      this.skip(4);
      return { kind: h.kind };
    }
    if (this.buffered < 4 + h.len) return undefined;
    this.skip(4);
    return { kind: 'data', data: this.take(h.len) };
  }

  /** The next packet, or null when the stream ends cleanly between packets. */
  async read(): Promise<Pkt | null> {
    if (!(await this.fill(4))) {
      if (this.buffered === 0) return null;
      throw new ProtocolError(`${this.what} hung up in the middle of a pkt-line header`);
    }
    const h = parseHeader(this.take(4));
    if (h.kind !== 'data') return { kind: h.kind };
    if (!(await this.fill(h.len))) {
      throw new ProtocolError(`${this.what} hung up in the middle of a pkt-line (${h.len} bytes announced, ${this.buffered} received)`);
    }
    return { kind: 'data', data: this.take(h.len) };
  }

  /** The next packet; end of stream is an error here. */
  async expect(): Promise<Pkt> {
    const p = await this.read();
    if (!p) throw new ProtocolError(`${this.what} hung up unexpectedly`);
    return p;
  }

  /** Raw bytes (at most `max`), or null at end of stream. */
  async readRaw(max = 1 << 20): Promise<Buffer | null> {
    if (!(await this.fill(1))) return null;
    return this.take(Math.min(max, this.buffered));
  }
}
