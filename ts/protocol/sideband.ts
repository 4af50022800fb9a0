// Side-band demultiplexing (gitprotocol-pack "side-band-64k"): each pkt-line of the pack
// stream starts with a band byte. 1 = pack data, 2 = progress text for the user, 3 = a fatal
// error, after which the server hangs up. The stream ends with a flush.

import type { PktReader } from '../pktline.js';
import { ProtocolError, RemoteError } from '../errors.js';

export const BAND_DATA = 1;
export const BAND_PROGRESS = 2;
export const BAND_ERROR = 3;

/**
 * The pack bytes of a side-band stream, packet by packet, up to the closing flush. Band 2
 * goes to `onProgress`; band 3 throws a RemoteError with the server's message.
 */
export async function* sidebandData(reader: PktReader, onProgress: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for (;;) {
    const p = await reader.read();
    if (!p) throw new ProtocolError('the server hung up in the middle of the pack (no closing flush)', 'the connection was cut or the server failed; run the command again');
    if (p.kind === 'flush') return;
    if (p.kind !== 'data') throw new ProtocolError(`unexpected ${p.kind} packet in the side-band stream`);
    if (p.data.length === 0) throw new ProtocolError('empty side-band packet (no band byte)');
    const band = p.data[0]!;
    const payload = p.data.subarray(1);
    if (band === BAND_DATA) {
      // Empty band-1 packets are keepalives sent while the server prepares the pack.
      if (payload.length) yield payload;
    } else if (band === BAND_PROGRESS) {
      if (payload.length) onProgress(payload);
    } else if (band === BAND_ERROR) {
      throw new RemoteError(payload.toString('utf8').trim());
    } else throw new ProtocolError(`unknown side-band ${band}`);
  }
}

/** The pack as raw bytes to the end of the connection (v0 without side-band). */
export async function* rawData(reader: PktReader): AsyncGenerator<Buffer> {
  for (;;) {
    const c = await reader.readRaw();
    if (!c) return;
    yield c;
  }
}

/** Bound on a partial progress line held while waiting for its end. */
const MAX_PROGRESS_LINE = 4096;

/**
 * Relays band-2 text the way git does: each line, ended by LF or CR, as "remote: <line>"; a
 * CR-ended line (a progress meter) is rewritten in place, so on a terminal its tail is cleared.
 */
export class RemoteProgress {
  private partial = '';
  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
  ) {}

  push(chunk: Buffer): void {
    let text = this.partial + chunk.toString('utf8');
    this.partial = '';
    for (;;) {
      const m = /[\r\n]/.exec(text);
      if (!m) break;
      const line = text.slice(0, m.index);
      this.emit(line, m[0]);
      text = text.slice(m.index + 1);
    }
    this.partial = text.length > MAX_PROGRESS_LINE ? text.slice(-MAX_PROGRESS_LINE) : text;
  }

  private emit(line: string, end: string): void {
    // A clear-to-end-of-line keeps a shorter line from showing the tail of a longer one.
    const clear = this.tty && line.length ? '\x1b[K' : '';
    this.write(`remote: ${line}${clear}${end}`);
  }

  /** Writes what is left of an unterminated line. */
  flush(): void {
    if (this.partial) this.emit(this.partial, '\n');
    this.partial = '';
  }
}
