// What a fetch asks for and what it gets back, the same for v0 and v2; and the bounds of the
// want/have negotiation that both versions run.

import type { PackfileUri } from './packfile-uris.js';

/** Local commits to offer as "have", newest first; told which ones the server has too. */
export interface HaveSource {
  /** Up to `max` more commits to offer ([] when there are none left). */
  next(max: number): Promise<string[]>;
  /** The server has `oid` (and so everything it reaches): stop offering its ancestors. */
  ack(oid: string): void;
}

export interface FetchRequest {
  wants: string[];
  haves?: HaveSource;
  /** Commits this repository has without their parents (.git/shallow). */
  shallow?: string[];
  /** Deepen to this many commits from the wants (--depth). */
  depth?: number;
  /** Ask for a thin pack (deltas against objects we have); fetch does, clone need not. */
  thinPack: boolean;
  /** Ask the server for progress on band 2. */
  progress: boolean;
  /** Protocols we accept packfile URIs for (v2 `packfile-uris`), if any. */
  packfileUris?: string[];
  /** A partial clone's object filter (`filter blob:none`...), sent when the server offers it. */
  filter?: string;
  /** Band-2 text from the server. */
  onProgress: (chunk: Buffer) => void;
}

export interface PackResponse {
  /** Commits the server made shallow for us / no longer shallow. */
  shallow: string[];
  unshallow: string[];
  /** Packs to download besides the streamed one (v2 packfile-uris). */
  packfileUris: PackfileUri[];
  /** The pack bytes, in order; ends where the pack ends. */
  pack: AsyncGenerator<Buffer>;
  /** Haves the server acknowledged as common. */
  common: string[];
  /** The filter was sent (the server offers `filter`); false when asked for but not offered. */
  filtered: boolean;
}

/** haves in the first round; each later round doubles, as git does for stateless requests. */
export const INITIAL_HAVES = 16;
export const MAX_HAVES_PER_ROUND = 1024;
/** Rounds before we give up finding more common commits and send "done". */
export const MAX_ROUNDS = 10;
/** After the first ACK, haves sent without a new ACK before we stop (git's MAX_IN_VAIN). */
export const MAX_IN_VAIN = 256;

/** Tracks the negotiation's progress and decides when to say "done". */
export class NegotiationState {
  rounds = 0;
  sent = 0;
  inVain = 0;
  gotAck = false;
  readonly common: string[] = [];
  private readonly commonSet = new Set<string>();
  private batchSize = INITIAL_HAVES;

  /** The haves of the next round, or [] when it is time to say done. */
  async nextBatch(src: HaveSource | undefined): Promise<string[]> {
    if (!src || this.rounds >= MAX_ROUNDS || (this.gotAck && this.inVain >= MAX_IN_VAIN)) return [];
    const batch = await src.next(this.batchSize);
    this.batchSize = Math.min(this.batchSize * 2, MAX_HAVES_PER_ROUND);
    this.rounds++;
    this.sent += batch.length;
    this.inVain += batch.length;
    return batch;
  }

  acked(oid: string, src: HaveSource | undefined): void {
    if (!this.commonSet.has(oid)) {
      this.commonSet.add(oid);
      this.common.push(oid);
    }
    this.gotAck = true;
    this.inVain = 0;
    src?.ack(oid);
  }
}
