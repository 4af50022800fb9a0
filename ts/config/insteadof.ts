// url.<base>.insteadOf: the longest matching prefix of a URL is replaced by its base, as git
// does before using a remote's URL (pushInsteadOf concerns pushes, which mpgit does not do).

import type { GitConfig } from '../repo/config.js';

export function rewriteUrl(url: string, config: GitConfig): string {
  let best: { base: string; prefix: string } | null = null;
  for (const key of config.keys()) {
    if (!key.startsWith('url.') || !key.endsWith('.insteadof')) continue;
    const base = key.slice('url.'.length, -'.insteadof'.length);
    for (const prefix of config.getAll(key)) {
      if (url.startsWith(prefix) && (!best || prefix.length > best.prefix.length)) best = { base, prefix };
    }
  }
  return best ? best.base + url.slice(best.prefix.length) : url;
}
