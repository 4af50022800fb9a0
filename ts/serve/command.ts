// One v2 command request as the session read it (serve.ts reads it, fetch.ts answers a fetch):
// its own module, so that neither imports the other.

import type { HaveList } from './haves.js';

export interface CommandRequest {
  command: string;
  capabilities: string[];
  /** Argument lines (without their newline), haves apart. */
  args: string[];
  /** A fetch's `have` lines, in bounded memory (./haves.ts); release() once answered. */
  haves: HaveList;
}
