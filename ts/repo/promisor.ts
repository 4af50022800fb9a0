// Promisor packs (partial clone): a .promisor file beside a pack marks that the objects it
// refers to may be missing and are fetched on demand from the promisor remote.

import { writeFileSync } from 'node:fs';

/** The .promisor file of a pack: the refs it was fetched for, "<oid> <name>" per line, as git writes it. */
export function writePromisorFile(packPath: string, refs: { name: string; oid: string | null }[]): void {
  const text = refs
    .filter((r) => r.oid)
    .map((r) => `${r.oid} ${r.name}\n`)
    .join('');
  writeFileSync(packPath.replace(/\.pack$/, '.promisor'), text, { mode: 0o600 });
}
