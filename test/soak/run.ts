// `npm run soak -- [--minutes N] [--clients 64] [--kill-phase 0.5] [--cut-rate 0.15]`
// Runs the soak (test/soak/soak.ts), prints what happened, writes benches/out/soak.json, and
// exits non-zero on a corrupt clone, a failed clone left behind, or a restart slower than 1 s.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { runSoak, type SoakOptions } from './soak.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const o: SoakOptions = { seconds: 600, clients: 64, killPhase: 0.5, cutRate: 0.15, killEvery: [3, 10], log: (l) => console.log(l) };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const v = Number(argv[i + 1]);
  if (argv[i] === '--minutes') o.seconds = v * 60;
  else if (argv[i] === '--seconds') o.seconds = v;
  else if (argv[i] === '--clients') o.clients = v;
  else if (argv[i] === '--kill-phase') o.killPhase = v;
  else if (argv[i] === '--cut-rate') o.cutRate = v;
  else throw new Error(`unknown argument ${argv[i]}: expected --minutes N, --clients N, --kill-phase F, --cut-rate F`);
  i++;
}
console.log(`soak: ${o.seconds} s, ${o.clients} concurrent git clones, daemon killed during the first ${Math.round(o.killPhase * 100)}%, ${Math.round(o.cutRate * 100)}% of clones cut`);
const r = await runSoak(o);
console.log(JSON.stringify(r, null, 1));
mkdirSync(`${root}benches/out`, { recursive: true });
writeFileSync(`${root}benches/out/soak.json`, JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, options: { ...o, log: undefined }, report: r }, null, 1) + '\n');
const bad = r.clones.corrupt + r.clones.leftBehind + r.restarts.failed + (r.restarts.maxBindMs >= 1000 ? 1 : 0);
console.log(
  `soak: ${r.clones.ok} clones ok (fsck clean), ${r.clones.failed} failed, ${r.clones.cut} cut (git kept ${r.clones.keptByGit} whole repositories interrupted at checkout, its clean-up raced in ${r.clones.cutRaced}), ${r.clones.corrupt} corrupt, ${r.clones.leftBehind} left behind; ` +
    `${r.restarts.count} kill -9 restarts, bind max ${r.restarts.maxBindMs} ms; daemon RSS ${r.rss.steadyStartMb} -> ${r.rss.steadyEndMb} MB over the last ${r.rss.steadySeconds} s (peak ${r.rss.peakMb} MB)`,
);
if (bad) process.exitCode = 1;
