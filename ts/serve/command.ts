// Reading one v2 command request (gitprotocol-v2: capabilities, delim, arguments, flush), with
// bounds on its lines and bytes; a fetch's haves go to a bounded list of their own.

import { pktText, type PktReader } from '../pktline.js';
import { ProtocolError } from '../errors.js';
import { isOid } from '../oid.js';
import { HaveList } from './haves.js';

/** Bound on the argument lines of one command request other than haves (wants of a big mirror fit). */
const MAX_ARG_LINES = 256 * 1024;
/** Bound on the bytes of one command request (haves past their own bound are read and dropped). */
const MAX_REQUEST_BYTES = 256 * 1024 * 1024;

/** A request the client should not have sent: an ERR packet says why. */
export class BadRequestError extends ProtocolError {
  constructor(message: string) {
    super(message, 'the client sent a fetch request this server does not accept');
    this.name = 'BadRequestError';
  }
}

export interface CommandRequest {
  command: string;
  capabilities: string[];
  /** Argument lines (without their newline), haves apart. */
  args: string[];
  /** A fetch's `have` lines, in bounded memory (./haves.ts); release() once answered. */
  haves: HaveList;
}

/**
 * Reads one command request; null when the client ends the session (flush or hang-up).
 * Memory: a string per argument line, 20 bytes per have; the request itself is not kept.
 */
export async function readCommand(reader: PktReader): Promise<CommandRequest | null> {
  let packets = 0;
  let bytes = 0;
  const capabilities: string[] = [];
  const args: string[] = [];
  const haves = new HaveList();
  let inArgs = false;
  let fetch = false;
  try {
    for (;;) {
      const p = reader.readBuffered() ?? (await reader.read());
      if (!p) {
        if (!packets) return null;
        throw new ProtocolError('the client hung up in the middle of a command');
      }
      packets++;
      if (p.kind === 'data') {
        bytes += p.data.length + 4;
        if (bytes > MAX_REQUEST_BYTES) throw new BadRequestError(`request of more than ${MAX_REQUEST_BYTES} bytes`);
        const line = pktText(p);
        if (!inArgs) {
          capabilities.push(line);
          if (line === 'command=fetch') fetch = true;
        } else if (fetch && line.startsWith('have ')) {
          const oid = line.slice(5);
          if (!isOid(oid)) throw new BadRequestError(`upload-pack: protocol error, expected to get object ID, not '${line}'`);
          haves.add(oid);
          const wait = haves.turn();
          if (wait) await wait;
        } else {
          args.push(line);
          if (args.length > MAX_ARG_LINES) throw new BadRequestError(`request of more than ${MAX_ARG_LINES} argument lines`);
        }
        continue;
      }
      if (p.kind === 'delim') {
        if (inArgs) throw new BadRequestError('second delim in a command request');
        inArgs = true;
        continue;
      }
      if (p.kind === 'flush') {
        if (packets === 1) return null;
        break;
      }
      throw new BadRequestError(`unexpected ${p.kind} packet in a command request`);
    }
  } catch (e) {
    haves.release();
    throw e;
  }
  const commandLines = capabilities.filter((c) => c.startsWith('command='));
  if (commandLines.length !== 1 || !commandLines[0]!.slice('command='.length)) {
    haves.release();
    throw new BadRequestError(commandLines.length ? 'more than one command in a request' : 'no command in the request');
  }
  for (const c of capabilities) {
    if (c.startsWith('object-format=') && c !== 'object-format=sha1') {
      haves.release();
      throw new BadRequestError(`mismatched object format: ${c.slice(14)}; this server uses sha1`);
    }
  }
  return { command: commandLines[0]!.slice('command='.length), capabilities, args, haves };
}
