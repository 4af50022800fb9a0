// One v2 command request as the session read it (serve.ts reads it, fetch.ts answers a fetch):
// its own module, so that neither imports the other.

import type { HaveList } from './haves.js';
import { DELIM, FLUSH, pkt } from '../pktline.js';

export interface CommandRequest {
  command: string;
  capabilities: string[];
  /** Argument lines (without their newline), haves apart. */
  args: string[];
  /** A fetch's `have` lines, in bounded memory (./haves.ts); release() once answered. */
  haves: HaveList;
}

const lines = (ls: string[]) => Buffer.concat(ls.map((l) => pkt(`${l}\n`)));

/** The request as the client sent it, but its haves: capabilities, delim, arguments. */
export function encodeCommandHead(req: CommandRequest): Buffer {
  return Buffer.concat([lines(req.capabilities), DELIM, lines(req.args)]);
}

/** A whole request without haves (ls-refs, object-info), flush included. */
export function encodeCommand(req: CommandRequest): Buffer {
  return Buffer.concat([encodeCommandHead(req), FLUSH]);
}

/** `have` lines as pkt-lines. */
export function encodeHaves(oids: string[]): Buffer {
  return lines(oids.map((h) => `have ${h}`));
}
