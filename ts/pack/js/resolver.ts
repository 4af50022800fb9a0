// Second pass: resolve every delta whose chain starts at a whole object, walking from each
// base to its children depth-first (as git index-pack does). Bases on the walk are kept up to
// a byte budget; past it the oldest are dropped and rebuilt from the pack when needed again.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { hashObject } from '../object.js';
import { applyDelta } from './delta.js';
import { compareIds, type ObjectTable } from './table.js';

/** Deltas resolved between two yields to the event loop (so progress can be shown). */
const YIELD_EVERY = 256;

interface Frame {
  obj: number;
  data: Buffer | null;
  kids: number[];
  next: number;
}

export class DeltaResolver {
  resolved = 0;
  private cached = 0;
  private sinceYield = 0;
  /** Positions in t.ofs sorted by base offset, and those offsets. */
  private readonly ofsOrder: Uint32Array;
  private readonly ofsKeys: Float64Array;
  /** Positions in t.ref sorted by base id. */
  private readonly refOrder: Uint32Array;

  constructor(
    private readonly t: ObjectTable,
    /** The inflated data of entry i (object content, or the delta itself). */
    private readonly readEntry: (i: number) => Buffer,
    private readonly cacheLimit: number,
  ) {
    const ofsN = t.ofs.length;
    this.ofsOrder = new Uint32Array(ofsN);
    for (let k = 0; k < ofsN; k++) this.ofsOrder[k] = k;
    const base = t.ofsBase;
    this.ofsOrder.sort((a, b) => base[a]! - base[b]!);
    this.ofsKeys = new Float64Array(ofsN);
    for (let k = 0; k < ofsN; k++) this.ofsKeys[k] = base[this.ofsOrder[k]!]!;
    const refN = t.ref.length;
    this.refOrder = new Uint32Array(refN);
    for (let k = 0; k < refN; k++) this.refOrder[k] = k;
    const ids = t.refBase.data;
    this.refOrder.sort((a, b) => compareIds(ids, a * 20, ids, b * 20));
  }

  /** Resolves everything reachable from the whole objects of the pack. */
  async resolveAll(): Promise<void> {
    const n = this.t.count;
    for (let i = 0; i < n; i++) {
      if (this.t.type[i]! <= 4) await this.resolveFrom(i, null);
    }
  }

  /** Resolves the deltas that hang off object `root` (whose content is `data`, or re-read). */
  async resolveFrom(root: number, data: Buffer | null): Promise<void> {
    const t = this.t;
    const rootKids = this.children(root);
    if (!rootKids.length) return;
    const rootData = data ?? this.readEntry(root);
    const stack: Frame[] = [{ obj: root, data: rootData, kids: rootKids, next: 0 }];
    this.cached += rootData.length;
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.next === top.kids.length) {
        this.release(top);
        stack.pop();
        continue;
      }
      const child = top.kids[top.next++]!;
      const base = this.dataOf(stack, stack.length - 1);
      const content = applyDelta(base, this.readEntry(child), t.offset[child]!);
      const type = t.realType[top.obj]!;
      t.realType[child] = type;
      t.oid.set(hashObject(type, content), child * 20);
      this.resolved++;
      const kids = this.children(child);
      if (kids.length) {
        stack.push({ obj: child, data: content, kids, next: 0 });
        this.cached += content.length;
        this.prune(stack, stack.length - 1);
      }
      if (++this.sinceYield >= YIELD_EVERY) {
        this.sinceYield = 0;
        await yieldToLoop();
      }
    }
  }

  /** REF_DELTA entries still unresolved, in pack order. */
  unresolvedRefDeltas(): number[] {
    const t = this.t;
    const out: number[] = [];
    const refs = t.ref.view();
    for (let k = 0; k < refs.length; k++) if (t.realType[refs[k]!] === 0) out.push(k);
    return out;
  }

  /** Deltas of entry i: OFS_DELTA children by its offset, REF_DELTA children by its id. */
  private children(i: number): number[] {
    const t = this.t;
    const out: number[] = [];
    const off = t.offset[i]!;
    const keys = this.ofsKeys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < off) lo = mid + 1;
      else hi = mid;
    }
    const ofs = t.ofs.data;
    for (let k = lo; k < keys.length && keys[k] === off; k++) out.push(ofs[this.ofsOrder[k]!]!);
    const ids = t.refBase.data;
    const order = this.refOrder;
    lo = 0;
    hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareIds(ids, order[mid]! * 20, t.oid, i * 20) < 0) lo = mid + 1;
      else hi = mid;
    }
    const refs = t.ref.data;
    for (let k = lo; k < order.length && compareIds(ids, order[k]! * 20, t.oid, i * 20) === 0; k++) out.push(refs[order[k]!]!);
    return out;
  }

  /** Content of stack[k], rebuilt from the nearest kept ancestor if it was dropped. */
  private dataOf(stack: Frame[], k: number): Buffer {
    const have = stack[k]!.data;
    if (have) return have;
    let j = k - 1;
    while (j >= 0 && !stack[j]!.data) j--;
    if (j < 0) {
      j = 0;
      stack[0]!.data = this.readEntry(stack[0]!.obj);
      this.cached += stack[0]!.data.length;
    }
    for (let m = j + 1; m <= k; m++) {
      const f = stack[m]!;
      f.data = applyDelta(stack[m - 1]!.data!, this.readEntry(f.obj), this.t.offset[f.obj]!);
      this.cached += f.data.length;
    }
    this.prune(stack, k);
    return stack[k]!.data!;
  }

  private release(f: Frame): void {
    if (f.data) this.cached -= f.data.length;
    f.data = null;
  }

  /** Drops kept bases, oldest first, until under budget; never the one at `keep`. */
  private prune(stack: Frame[], keep: number): void {
    for (let m = 0; this.cached > this.cacheLimit && m < stack.length; m++) {
      if (m !== keep) this.release(stack[m]!);
    }
  }
}
