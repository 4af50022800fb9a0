// A short soak in the suite (test/soak/soak.ts; `npm run soak -- --minutes N` runs long ones):
// 64 concurrent stock-git clones against mpgit daemon (pack cache, an offloaded repository),
// the daemon kill -9'd and restarted at random moments, clones cut mid-transfer.

import test from 'ava';
import { runSoak } from './soak/soak.js';

test('soak: kill -9 restarts under 64 concurrent clones; every clone whole or gone; restarts bind in under 1 s', async (t) => {
  const r = await runSoak({ seconds: 45, clients: 64, killPhase: 0.6, cutRate: 0.15, killEvery: [3, 8], log: (l) => t.log(l) });
  t.log(JSON.stringify(r.clones), JSON.stringify(r.restarts.bindMs), JSON.stringify(r.rss));
  t.deepEqual(r.problems, []);
  t.is(r.clones.corrupt, 0);
  t.is(r.clones.leftBehind, 0);
  t.true(r.restarts.count >= 2, `${r.restarts.count} restarts`);
  t.is(r.restarts.failed, 0);
  t.true(r.restarts.maxBindMs < 1000, `slowest restart bound in ${r.restarts.maxBindMs} ms`);
  t.true(r.clones.ok >= 64, `${r.clones.ok} clones completed`);
  t.true(r.clones.cut > 0 && r.clones.byRepo['offload-uris']! > 0 && r.clones.byRepo['plain']! > 0);
});
