// One isomorphic-git indexPack run, as a process of its own for the bench (wall time and peak
// RSS measured from outside): indexes PACK and writes its .idx to IDX.
//
//   node --import tsx benches/lib/iso-index-pack.ts PACK IDX

import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import git from 'isomorphic-git';

const [pack, idx] = process.argv.slice(2);
if (!pack || !idx) throw new Error('usage: iso-index-pack.ts PACK IDX');
const dir = dirname(pack);
// indexPack writes the .idx next to the pack (its name with .idx).
await git.indexPack({ fs, dir, gitdir: dir, filepath: basename(pack) });
fs.renameSync(join(dir, basename(pack).replace(/\.pack$/, '.idx')), idx);
