// The zlib level git deflates with when it writes objects outside pack-objects (loose objects,
// and the bases `index-pack --fix-thin` appends to a thin pack): core.looseCompression, else
// core.compression, else Z_BEST_SPEED (git's zlib_compression_level). -1 is zlib's default.

import { ConfigError } from '../errors.js';

/** What git uses when neither key is set. */
export const DEFAULT_ZLIB_LEVEL = 1;

/** The level from a repository's config (`get` returns the last value of a key, or undefined). */
export function zlibCompressionLevel(config: { get(key: string): string | undefined }): number {
  for (const key of ['core.looseCompression', 'core.compression']) {
    const v = config.get(key);
    if (v === undefined) continue;
    const n = Number(v.trim());
    if (!Number.isInteger(n) || n < -1 || n > 9 || v.trim() === '') throw new ConfigError(`bad zlib compression level ${v} (${key})`, 'set it to a number from -1 to 9');
    return n;
  }
  return DEFAULT_ZLIB_LEVEL;
}
