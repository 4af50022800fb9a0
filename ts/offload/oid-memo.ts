// Answers that depend only on object ids (whether one commit reaches another, which commits of
// a set no other one reaches, an object's type) never change once computed: objects are
// immutable. A daemon keeps them, bounded, so the requests every seeded clone makes alike
// (negotiation after bundles, its cache key) cost no git process after the first.

/** Bound on the answers kept per memo (least recently used out). */
const MAX_ENTRIES = 4096;

export class OidMemo<T> {
  private readonly entries = new Map<string, Promise<T>>();

  /** The answer for `key` (the repository and the ids it depends on), computed once. */
  get(key: string, compute: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const p = compute();
    this.entries.set(key, p);
    // A failure is not an answer: the next request computes again.
    p.catch(() => this.entries.delete(key));
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    return p;
  }
}

/** A memo key: the repository and the ids, in a canonical order. */
export function idsKey(gitDir: string, ...sets: string[][]): string {
  return [gitDir, ...sets.map((s) => [...new Set(s)].sort().join(','))].join('\0');
}
