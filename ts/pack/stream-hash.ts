// Checking a pack as it streams past (a download, a bundle being read): the SHA-1 of every byte
// but the last 20, the 20-byte trailer the stream carried, and the 12-byte pack header as soon
// as it is complete, so a URI serving an HTML page fails at its first bytes.

import { createHash } from 'node:crypto';

const TRAILER = 20;

/** What a streamed download is checked with: bytes seen, then the two checksums. */
export interface StreamCheck {
  bytes: number;
  update(chunk: Buffer): void;
  /** The computed checksum and the trailer the stream carried (throws when too short). */
  finish(): { computed: string; trailer: string };
}

export class PackStreamHash implements StreamCheck {
  private hash = createHash('sha1');
  private tail = Buffer.alloc(0);
  private head = Buffer.alloc(0);
  bytes = 0;

  update(chunk: Buffer): void {
    if (this.head.length < 12) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, 12 - this.head.length)]);
      if (this.head.length === 12) checkPackHeader(this.head);
    }
    this.bytes += chunk.length;
    if (chunk.length >= TRAILER) {
      this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - TRAILER));
      this.tail = Buffer.from(chunk.subarray(chunk.length - TRAILER));
    } else {
      const both = Buffer.concat([this.tail, chunk]);
      const keep = Math.max(0, both.length - TRAILER);
      this.hash.update(both.subarray(0, keep));
      this.tail = both.subarray(keep);
    }
  }

  finish(): { computed: string; trailer: string } {
    if (this.head.length < 12 || this.tail.length < TRAILER) throw new Error(`${this.bytes} bytes are too short for a pack`);
    return { computed: this.hash.digest('hex'), trailer: this.tail.toString('hex') };
  }
}

export function checkPackHeader(head: Buffer): void {
  if (head.toString('latin1', 0, 4) !== 'PACK') throw new Error(`not a pack: starts with ${JSON.stringify(head.toString('latin1', 0, 4))}`);
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new Error(`unsupported pack version ${version}`);
}
