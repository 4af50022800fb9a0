// Writing a v2 response: section lines (wrapped in band 1 when the client asked for
// sideband-all), delim/flush, and the pack stream in side-band-64k framing with progress on
// band 2 and a fatal error on band 3. Every write waits for the socket to drain, so a slow
// client holds back pack-objects instead of filling our memory.

import type { Writable } from 'node:stream';
import { DELIM, FLUSH, MAX_PKT_DATA, pkt } from '../pktline.js';
import { BAND_DATA, BAND_ERROR, BAND_PROGRESS } from '../protocol/sideband.js';
import { ClientGoneError } from '../errors.js';

/** Largest payload of one side-band packet (the band byte takes one of the pkt-line's bytes). */
export const SIDEBAND_DATA_MAX = MAX_PKT_DATA - 1;

export class ResponseWriter {
  /** Wrap section lines in band 1 (the client sent "sideband-all"). */
  sidebandAll = false;
  bytesOut = 0;
  private closed = false;

  constructor(private readonly out: Writable) {
    const gone = () => (this.closed = true);
    out.once('close', gone);
    out.once('error', gone);
  }

  get gone(): boolean {
    return this.closed || this.out.destroyed || this.out.writableEnded;
  }

  /** Writes bytes (several buffers go out in one gathered write, without copying them). */
  async write(buf: Buffer | Buffer[]): Promise<void> {
    if (this.gone) throw new ClientGoneError();
    let ok: boolean;
    if (Array.isArray(buf)) {
      ok = true;
      this.out.cork();
      for (const b of buf) {
        this.bytesOut += b.length;
        ok = this.out.write(b) && ok;
      }
      this.out.uncork();
    } else {
      this.bytesOut += buf.length;
      ok = this.out.write(buf);
    }
    if (ok) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onGone = () => {
        cleanup();
        reject(new ClientGoneError());
      };
      const cleanup = () => {
        this.out.off('drain', onDrain);
        this.out.off('close', onGone);
        this.out.off('error', onGone);
      };
      this.out.on('drain', onDrain);
      this.out.on('close', onGone);
      this.out.on('error', onGone);
    });
  }

  /** A section line ("acknowledgments", "ACK <oid>", "packfile"...): LF added. */
  line(text: string): Promise<void> {
    const body = Buffer.from(`${text}\n`, 'utf8');
    return this.write(this.sidebandAll ? pkt(Buffer.concat([Buffer.from([BAND_DATA]), body])) : pkt(body));
  }

  /** Several section lines in one write. */
  async lines(texts: string[]): Promise<void> {
    const parts = texts.map((t) => {
      const body = Buffer.from(`${t}\n`, 'utf8');
      return this.sidebandAll ? pkt(Buffer.concat([Buffer.from([BAND_DATA]), body])) : pkt(body);
    });
    for (let i = 0; i < parts.length; i += 4096) await this.write(Buffer.concat(parts.slice(i, i + 4096)));
  }

  delim(): Promise<void> {
    return this.write(DELIM);
  }

  flush(): Promise<void> {
    return this.write(FLUSH);
  }

  /** An ERR packet (before the pack stream: git clients die with the message). */
  err(message: string): Promise<void> {
    return this.write(pkt(`ERR ${message}\n`));
  }

  /** Pack bytes on band 1, cut to side-band-64k packets (headers apart: the data is not copied). */
  async packData(chunk: Buffer): Promise<void> {
    const parts: Buffer[] = [];
    for (let at = 0; at < chunk.length; at += SIDEBAND_DATA_MAX) {
      const slice = chunk.subarray(at, at + SIDEBAND_DATA_MAX);
      parts.push(bandHeader(BAND_DATA, slice.length), slice);
    }
    await this.write(parts);
  }

  /** An empty band-1 packet: tells the client we are still working (only inside the pack stream). */
  keepalive(): Promise<void> {
    return this.write(Buffer.from('0005\x01', 'latin1'));
  }

  progress(text: Buffer | string): Promise<void> {
    const b = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    const parts: Buffer[] = [];
    for (let at = 0; at < b.length; at += SIDEBAND_DATA_MAX) parts.push(band(BAND_PROGRESS, b.subarray(at, at + SIDEBAND_DATA_MAX)));
    return this.write(Buffer.concat(parts));
  }

  /** A fatal error inside the pack stream (band 3); the connection ends after it. */
  fatal(message: string): Promise<void> {
    return this.write(band(BAND_ERROR, Buffer.from(`${message}\n`, 'utf8')));
  }
}

function band(n: number, data: Buffer): Buffer {
  return pkt(Buffer.concat([Buffer.from([n]), data]));
}

/** The pkt-line header and band byte of a side-band packet carrying `len` bytes. */
function bandHeader(n: number, len: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h.write((len + 5).toString(16).padStart(4, '0'), 0, 'latin1');
  h[4] = n;
  return h;
}
