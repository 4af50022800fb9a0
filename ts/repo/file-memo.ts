// What git would answer again and again about a repository (its refs, a config setting, an
// advertisement) remembered while the files the answer came from are unchanged: each entry
// carries the fingerprint of those files (mtime, size, inode; see server-refs.ts) and is used
// only while it matches. Entries also expire after a TTL whatever the files say (a config may
// include files no fingerprint covers), and the oldest go first past the bound.

const TTL_MS = 60_000;

export class FileMemo<T> {
  private readonly m = new Map<string, { fp: string; at: number; value: T }>();

  constructor(private readonly maxEntries: number) {}

  /** The value remembered for `key` under fingerprint `fp`; never one for a null fingerprint. */
  get(key: string, fp: string | null): T | undefined {
    const e = this.m.get(key);
    return e && fp !== null && e.fp === fp && Date.now() - e.at < TTL_MS ? e.value : undefined;
  }

  set(key: string, fp: string, value: T): void {
    this.m.delete(key);
    this.m.set(key, { fp, at: Date.now(), value });
    if (this.m.size > this.maxEntries) this.m.delete(this.m.keys().next().value!);
  }
}
