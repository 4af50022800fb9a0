// The answer to the most common request, made ahead of it: `mpgit offload` (and --refresh)
// stores in the answer cache what a clone of the advertised branches and tags gets (the
// packfile URIs and the inline pack), so the first clone after preparing is served from the
// cache like every later one. Stock git and mpgit ask for a clone in ways that share one cache
// entry (./cache.ts); a second entry is made only where include-tag would change the pack.
// When refs move later, the first clone recomputes and caches its answer as before.

import { humanBytes } from '../progress.js';
import { CACHE_DIR, cacheLookup, CacheWriter, cloneKey, MAX_ENTRY_BYTES } from './cache.js';
import { PackObjects } from './pack-objects.js';
import { liveSchemes, planFetch } from './plan.js';
import { listServerRefs } from '../repo/server-refs.js';
import { liveBundles, type OffloadState } from './state.js';

export interface WarmedAnswer {
  key: string;
  includeTag: boolean;
  /** Inline pack bytes. */
  size: number;
  uris: number;
  /** Already in the cache: nothing was computed. */
  reused: boolean;
  /** The answer to a clone that has the bundles (their tip as its have). */
  seeded: boolean;
  describe: string;
}

/** What a clone wants: every visible branch and tag (git clone's refspec and tag following). */
export async function cloneWants(gitDir: string): Promise<string[]> {
  const wants = new Set<string>();
  for (const r of await listServerRefs(gitDir)) {
    if (r.oid && (r.name.startsWith('refs/heads/') || r.name.startsWith('refs/tags/'))) wants.add(r.oid);
  }
  return [...wants];
}

/**
 * Computes and caches the answer to a clone of the advertised refs by a client that accepts
 * every live pack's URI scheme, with and without include-tag where that differs.
 */
export async function warmCloneCache(gitDir: string, state: OffloadState, log: (line: string) => void = () => {}): Promise<WarmedAnswer[]> {
  const wants = await cloneWants(gitDir);
  if (!wants.length) {
    log('no branches or tags yet: no clone answer to prepare');
    return [];
  }
  const protocols = liveSchemes(state);
  const done = new Map<string, WarmedAnswer>();
  // A clone seeded by the bundles has the chain's tip: stock git 2.55 asks without packfile URIs,
  // mpgit with them; both may take a thin pack.
  const chain = liveBundles(state);
  const tip = chain.length ? chain[chain.length - 1]!.commit : null;
  const variants: { protocols: string[] | null; haves?: string[]; thin?: boolean }[] = [{ protocols }];
  if (tip) for (const p of [protocols, null]) for (const thin of [true, false]) variants.push({ protocols: p, haves: [tip], thin });
  // Stock git asks without include-tag, mpgit with it; both ask for ofs-delta.
  for (const v of variants) {
    for (const includeTag of [false, true]) {
      const key = await cloneKey(gitDir, state, { wants, ofsDelta: true, includeTag, protocols: v.protocols, haves: v.haves, thin: v.thin });
      if (done.has(key)) continue;
      const hit = await cacheLookup(gitDir, key);
      if (hit) {
        done.set(key, { key, includeTag, size: hit.size, uris: hit.uris.length, reused: true, describe: hit.describe, seeded: !!v.haves });
        continue;
      }
      const answer = await computeAnswer(gitDir, state, key, wants, v, includeTag);
      if (!answer) {
        log(`clone answer not cached: its inline pack is over ${humanBytes(MAX_ENTRY_BYTES)}, or ${gitDir}/${CACHE_DIR} is not writable`);
        return [...done.values()];
      }
      done.set(key, answer);
    }
  }
  for (const a of done.values()) {
    log(`clone answer${a.seeded ? ' after the bundles' : ''} ${a.reused ? 'already cached' : 'cached'}: ${a.uris} packfile URI${a.uris === 1 ? '' : 's'} + inline pack of ${humanBytes(a.size)} (${wants.length} refs${a.includeTag ? ', include-tag' : ''})`);
  }
  return [...done.values()];
}

async function computeAnswer(gitDir: string, state: OffloadState, key: string, wants: string[], v: { protocols: string[] | null; haves?: string[]; thin?: boolean }, includeTag: boolean): Promise<WarmedAnswer | null> {
  const plan = await planFetch({ gitDir, state, wants, common: v.haves ?? [], protocols: v.protocols, thin: !!v.thin });
  const pack = new PackObjects(gitDir, { ofsDelta: true, includeTag, progress: false });
  const cache = await CacheWriter.start(gitDir, key);
  if (!cache) return null;
  let kept = false;
  try {
    const uris = await plan.run(pack.start);
    let size = 0;
    for await (const chunk of pack.chunks()) {
      size += chunk.length;
      await cache.write(chunk);
      if (cache.dropped) return null;
    }
    await pack.finish();
    kept = await cache.commit(uris, plan.describe);
    return kept ? { key, includeTag, size, uris: uris.length, reused: false, describe: plan.describe, seeded: !!v.haves } : null;
  } finally {
    if (!kept) await cache.abort();
    pack.kill();
  }
}
