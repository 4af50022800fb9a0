// Responses to common requests, cached (packfile-uri.txt's "future work"): a fetch without
// haves (a clone) of the same wants, against the same published packs, gets the same answer,
// so its URIs and inline pack are kept under <git-dir>/mpgit-offload-cache/ and later ones are
// streamed from there, without pack-objects. `mpgit offload` stores the answer to a clone of
// the advertised refs ahead of the first one (./warm.ts). Objects never change, so an entry
// stays correct; new wants or a refresh (other published packs) make new keys, and the cache
// is bounded (entry size, total size, least recently used first out).
//
// The key is what decides the content, not how the request was worded: the pack bytes are
// kept without side-band framing, the scheme list becomes the packs it lets us name, and
// include-tag counts only when it could add a tag. So stock git and mpgit, which ask
// differently for the same clone, share one entry.
//
// A clone seeded by bundles is common too: its haves come down to the tips of the published
// bundles (whatever ancestors the client also sent), and its answer is cached under them.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { PackfileUri } from '../protocol/packfile-uris.js';
import { liveBundles, type OffloadState } from './state.js';
import { gitLines, objectTypes } from '../git.js';
import { idsKey, OidMemo } from './oid-memo.js';

const independentMemo = new OidMemo<string[]>();
const wantsMemo = new OidMemo<string[]>();
import { eligiblePacks } from './plan.js';
import { annotatedTags } from '../repo/server-refs.js';

export const CACHE_DIR = 'mpgit-offload-cache';
/** Largest inline pack kept. */
export const MAX_ENTRY_BYTES = 256 * 1024 * 1024;
/** Total bytes kept per repository. */
export const MAX_CACHE_BYTES = 1024 * 1024 * 1024;
const VERSION = 2;

export interface CacheKeyParts {
  /** Hashes of the published packs the response may name (a refresh changes them). */
  packs: string[];
  wants: string[];
  ofsDelta: boolean;
  includeTag: boolean;
  /** A clone after bundles: the bundle tips it has (none for a plain clone). */
  haves?: string[];
  /** With haves: whether the pack may be thin (deltas against them). */
  thin?: boolean;
}

export function cacheKey(p: CacheKeyParts): string {
  const norm = {
    v: VERSION,
    packs: [...new Set(p.packs)].sort(),
    wants: [...new Set(p.wants)].sort(),
    ofs: p.ofsDelta,
    tag: p.includeTag,
    // Absent for a plain clone, so those keys stay what they were.
    ...(p.haves?.length ? { haves: [...new Set(p.haves)].sort(), thin: !!p.thin } : {}),
  };
  return createHash('sha1').update(JSON.stringify(norm)).digest('hex');
}

export interface CloneRequest {
  wants: string[];
  ofsDelta: boolean;
  includeTag: boolean;
  /** Schemes of the client's `packfile-uris`, null when it did not ask. */
  protocols: string[] | null;
  /** Bundle tips the client has (a clone seeded by bundles). */
  haves?: string[];
  /** The client accepts a thin pack (only matters with haves). */
  thin?: boolean;
}

/** Bound on the common commits reduced for a seeded clone's key (more is not such a clone). */
const MAX_SEEDED_HAVES = 1024;

/**
 * The cache key of a fetch whose common commits come down to tips of live bundles (a clone
 * seeded by them), else null. The pack is `wants ^common`, the same for `^tips`.
 */
export async function seededCloneKey(gitDir: string, state: OffloadState | null, req: CloneRequest, common: string[]): Promise<string | null> {
  const tips = new Set(state ? liveBundles(state).map((b) => b.commit) : []);
  if (!tips.size || !common.length || common.length > MAX_SEEDED_HAVES) return null;
  const independent = common.length === 1 ? common : await independentMemo.get(idsKey(gitDir, common), () => gitLines(gitDir, ['merge-base', '--independent', ...common]));
  if (!independent.length || !independent.every((c) => tips.has(c))) return null;
  return cloneKey(gitDir, state, { ...req, haves: independent });
}

/** The cache key of a fetch without haves. */
export async function cloneKey(gitDir: string, state: OffloadState | null, req: CloneRequest): Promise<string> {
  let includeTag = req.includeTag;
  if (includeTag) {
    // pack-objects --include-tag adds annotated tags (any under refs/tags, hidden or not)
    // whose object is in the pack: when every one is wanted already, it adds nothing.
    const wanted = new Set(req.wants);
    includeTag = (await annotatedTags(gitDir)).some((t) => !wanted.has(t));
  }
  const wants = req.haves?.length ? await wantsBeyond(gitDir, req.wants, req.haves) : req.wants;
  return cacheKey({ packs: eligiblePacks(state, req.protocols).map((p) => p.hash), wants, ofsDelta: req.ofsDelta, includeTag, haves: req.haves, thin: req.thin });
}

/**
 * The wants that decide a pack after `haves`, however a client words them: it leaves out what
 * it has (a branch at a bundle's tip) and may name ancestors of other wants. Commits reduce to
 * those no other want or have reaches; tags and other objects stay as they are.
 */
function wantsBeyond(gitDir: string, wants: string[], haves: string[]): Promise<string[]> {
  return wantsMemo.get(idsKey(gitDir, wants, haves), () => reduceWants(gitDir, wants, haves));
}

async function reduceWants(gitDir: string, wants: string[], haves: string[]): Promise<string[]> {
  const types = await objectTypes(gitDir, [...new Set(wants)]);
  const commits = [...new Set(wants)].filter((w) => types.get(w)?.type === 'commit');
  const others = [...new Set(wants)].filter((w) => types.get(w)?.type !== 'commit');
  const tips = new Set(haves);
  const independent = await gitLines(gitDir, ['merge-base', '--independent', ...new Set([...commits, ...haves])]);
  return [...others, ...independent.filter((c) => !tips.has(c))];
}

export interface CacheHit {
  uris: PackfileUri[];
  packPath: string;
  size: number;
  describe: string;
}

interface Meta {
  uris: PackfileUri[];
  size: number;
  describe: string;
}

/** The cached response for `key`, or null. A hit refreshes the entry's age. */
export async function cacheLookup(gitDir: string, key: string): Promise<CacheHit | null> {
  const dir = join(gitDir, CACHE_DIR);
  const packPath = join(dir, `${key}.pack`);
  try {
    const meta = JSON.parse(await readFile(join(dir, `${key}.json`), 'utf8')) as Meta;
    const st = await stat(packPath);
    if (st.size !== meta.size || !Array.isArray(meta.uris)) return null;
    const now = new Date();
    await utimes(packPath, now, now).catch(() => {});
    return { uris: meta.uris, packPath, size: st.size, describe: meta.describe };
  } catch {
    return null;
  }
}

/** Collects a response as it is sent; `commit` makes it an entry, `abort` drops it. */
export class CacheWriter {
  private fh: FileHandle | null = null;
  private size = 0;
  private failed = false;
  private readonly tmp: string;

  private constructor(
    private readonly dir: string,
    private readonly key: string,
  ) {
    this.tmp = join(dir, `.tmp-${key}-${randomBytes(4).toString('hex')}`);
  }

  /** A writer, or null when the cache cannot be written (read-only repository: no cache). */
  static async start(gitDir: string, key: string): Promise<CacheWriter | null> {
    const w = new CacheWriter(join(gitDir, CACHE_DIR), key);
    try {
      await mkdir(w.dir, { recursive: true });
      w.fh = await open(w.tmp, 'w', 0o644);
      return w;
    } catch {
      return null;
    }
  }

  /** The entry will not be kept (it grew too big, or writing failed). */
  get dropped(): boolean {
    return this.failed;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failed || !this.fh) return;
    this.size += chunk.length;
    if (this.size > MAX_ENTRY_BYTES) return this.abort();
    try {
      await this.fh.write(chunk);
    } catch {
      await this.abort();
    }
  }

  /** Makes the entry; false when it was not kept (too big, or the cache is not writable). */
  async commit(uris: PackfileUri[], describe: string): Promise<boolean> {
    if (this.failed || !this.fh) return false;
    try {
      await this.fh.close();
      this.fh = null;
      const meta: Meta = { uris, size: this.size, describe };
      await writeFile(join(this.dir, `${this.key}.json`), JSON.stringify(meta));
      // The pack last: an entry counts once its pack is in place.
      await rename(this.tmp, join(this.dir, `${this.key}.pack`));
      await prune(this.dir);
      return true;
    } catch {
      await this.abort();
      return false;
    }
  }

  async abort(): Promise<void> {
    this.failed = true;
    await this.fh?.close().catch(() => {});
    this.fh = null;
    await rm(this.tmp, { force: true });
  }
}

/** Keeps the cache under MAX_CACHE_BYTES, dropping the least recently used entries. */
async function prune(dir: string): Promise<void> {
  const entries: { key: string; size: number; used: number }[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.pack') || name.startsWith('.')) continue;
    const st = await stat(join(dir, name)).catch(() => null);
    if (st) entries.push({ key: name.slice(0, -5), size: st.size, used: st.mtimeMs });
  }
  let total = entries.reduce((a, e) => a + e.size, 0);
  entries.sort((a, b) => a.used - b.used);
  for (const e of entries) {
    if (total <= MAX_CACHE_BYTES) break;
    await rm(join(dir, `${e.key}.pack`), { force: true });
    await rm(join(dir, `${e.key}.json`), { force: true });
    total -= e.size;
  }
}
