// The commits a fetch offers as "have": a walk from the local ref tips, newest commit first
// (git's default negotiator, simplified). Once the server acknowledges a commit, its
// ancestors are known to be common and are not offered again.

import type { ObjectDb } from '../repo/odb.js';
import { parseTag } from '../repo/objects.js';
import type { HaveSource } from '../protocol/negotiation.js';

/** Bound on commits the walk visits (haves are bounded by the negotiation rounds anyway). */
const MAX_WALK = 100_000;
/** Tags pointing at tags pointing at... */
const MAX_PEEL = 10;

interface Node {
  oid: string;
  time: number;
}

/** A max-heap of commits by committer time. */
class Heap {
  private a: Node[] = [];
  get size(): number {
    return this.a.length;
  }
  push(n: Node): void {
    const a = this.a;
    a.push(n);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.time >= a[i]!.time) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Node | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.time > a[m]!.time) m = l;
        if (r < a.length && a[r]!.time > a[m]!.time) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export class HaveWalker implements HaveSource {
  private readonly heap = new Heap();
  private readonly seen = new Set<string>();
  private readonly common = new Set<string>();
  private readonly parents = new Map<string, string[]>();
  private visited = 0;

  constructor(
    private readonly db: ObjectDb,
    tips: string[],
    private readonly shallow: Set<string>,
  ) {
    for (const t of tips) {
      const c = this.peelToCommit(t);
      if (c) this.enqueue(c);
    }
  }

  private peelToCommit(oid: string): string | null {
    let cur = oid;
    for (let i = 0; i < MAX_PEEL; i++) {
      const obj = this.db.readSync(cur);
      if (!obj) return null;
      if (obj.type === 'commit') return cur;
      if (obj.type !== 'tag') return null;
      cur = parseTag(obj.data, cur).object;
    }
    return null;
  }

  private enqueue(oid: string): void {
    if (this.seen.has(oid) || this.visited >= MAX_WALK) return;
    this.seen.add(oid);
    // Read and parsed by the addon when it loads: only the commit's links cross into JavaScript.
    const c = this.db.readCommit(oid);
    if (!c) return;
    this.visited++;
    // Beyond a shallow commit we have nothing.
    this.parents.set(oid, this.shallow.has(oid) ? [] : c.parents);
    this.heap.push({ oid, time: c.time });
  }

  async next(max: number): Promise<string[]> {
    const out: string[] = [];
    while (out.length < max && this.heap.size) {
      const n = this.heap.pop()!;
      const isCommon = this.common.has(n.oid);
      for (const p of this.parents.get(n.oid) ?? []) {
        if (isCommon) this.common.add(p);
        this.enqueue(p);
      }
      if (!isCommon) out.push(n.oid);
    }
    return out;
  }

  ack(oid: string): void {
    this.common.add(oid);
    // Parents already queued are common too; mark them so they are skipped when popped.
    for (const p of this.parents.get(oid) ?? []) this.common.add(p);
  }
}
