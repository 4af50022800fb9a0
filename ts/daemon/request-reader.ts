// Reads the client's first pkt-line (the git:// request) off a fresh connection, bounded in size
// and time, then stops node reading: what the client sends next belongs to the service process,
// which gets the socket itself. A client may not send anything before the server speaks, but if
// it did, those bytes are returned as `rest` (the caller relays them) rather than lost.

import type { Readable } from 'node:stream';
import { parseHeader } from '../pktline.js';
import { ClientGoneError, MpgitError, ProtocolError, TimeoutError } from '../errors.js';

/** Longest request line accepted (payload bytes): a path of PATH_MAX, a host name, parameters. */
export const MAX_REQUEST_BYTES = 8192;

export class RequestTooLargeError extends MpgitError {
  constructor(len: number, max: number) {
    super('MPGIT_REQUEST_TOO_LARGE', `request line of ${len} bytes exceeds the limit of ${max}`, 'git clients send requests of a few hundred bytes; check the client');
    this.name = 'RequestTooLargeError';
  }
}

export interface RequestLine {
  payload: Buffer;
  /** Bytes the client sent after the request line (normally none). */
  rest: Buffer;
}

interface Handle {
  reading?: boolean;
  readStop?: () => number;
}
interface Held {
  _handle?: Handle;
  _readableState?: { reading: boolean };
}

const held = new WeakSet<Readable>();

/**
 * Stops node reading from a socket/pipe stream at once, and keeps it stopped. pause() alone
 * is not enough: the handle keeps filling the stream's buffer, and after a chunk node schedules
 * a read-ahead that restarts the handle. Marking the stream as "reading" (as node's own
 * child_process does for a stream it hands to a child) makes it skip that.
 */
export function stopReading(stream: Readable): void {
  stream.pause();
  const s = stream as unknown as Held;
  const handle = s._handle;
  if (handle?.readStop && handle.reading !== false) {
    handle.reading = false;
    handle.readStop();
  }
  if (s._readableState) {
    s._readableState.reading = true;
    held.add(stream);
  }
}

/** Undoes stopReading's hold: the next resume() reads from the handle again. */
export function releaseReading(stream: Readable): void {
  if (!held.delete(stream)) return;
  const s = stream as unknown as Held;
  if (s._readableState) s._readableState.reading = false;
}

/** Reads exactly one pkt-line request, within `timeoutMs` and `maxBytes`. */
export function readRequestLine(stream: Readable, opts: { timeoutMs: number; maxBytes?: number }): Promise<RequestLine> {
  const max = opts.maxBytes ?? MAX_REQUEST_BYTES;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    let need = -1; // total bytes of the pkt-line once its header is known
    const done = (err: Error | null, value?: RequestLine) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      stopReading(stream);
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      have += c.length;
      try {
        if (need < 0 && have >= 4) {
          const head = Buffer.concat(chunks).subarray(0, 4);
          const h = parseHeader(head);
          if (h.kind !== 'data') throw new ProtocolError('request line is a special packet (flush/delim), not a request');
          if (h.len > max) throw new RequestTooLargeError(h.len, max);
          need = 4 + h.len;
        }
        if (need >= 0 && have >= need) {
          const all = Buffer.concat(chunks);
          done(null, { payload: all.subarray(4, need), rest: all.subarray(need) });
        }
      } catch (e) {
        done(e as Error);
      }
    };
    const onEnd = () => done(new ClientGoneError(have ? `client hung up in the middle of its request (${have} bytes received)` : 'client hung up before sending a request'));
    const onError = (e: Error) => done(e);
    const timer = setTimeout(() => done(new TimeoutError('waiting for the request line', opts.timeoutMs)), opts.timeoutMs);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
    stream.resume();
  });
}
