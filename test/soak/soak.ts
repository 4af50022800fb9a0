// The soak: `mpgit daemon` (pack cache on, one repository offloaded to nginx) under many
// concurrent stock-git clones for a while, kill -9'd and restarted at random moments, with
// clients cut mid-transfer (SIGINT, as a user's Ctrl-C). Checks: every clone git reports as
// done passes `git fsck`; every one that failed on its own leaves nothing behind (a cut one is
// the client's to clean up: git keeps the repository when interrupted during checkout, and its
// clean-up can race its own index-pack; both are counted, neither is the server's doing);
// every restart binds in under
// a second; the daemon's RSS is sampled throughout (its growth over the kill-free last phase,
// median of its last minute against median of its first minute after a 20 s warm-up, is what a
// long-running daemon would show).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MPGIT, freePort, run, runOk } from '../helpers/proc.js';
import { makeRepo } from '../helpers/repo.js';
import { bigRepo } from '../helpers/offload.js';
import { startNginx } from '../helpers/nginx.js';

export interface SoakOptions {
  seconds: number;
  clients: number;
  /** Share of the run during which the daemon is killed (the rest measures a steady daemon). */
  killPhase: number;
  /** Share of clones cut mid-transfer. */
  cutRate: number;
  /** Seconds between kills: uniform in [min, max]. */
  killEvery: [number, number];
  log?: (line: string) => void;
}

export interface SoakReport {
  seconds: number;
  clients: number;
  clones: {
    ok: number;
    failed: number;
    cut: number;
    corrupt: number;
    leftBehind: number;
    /** Cut during checkout: git keeps the repository (its JUNK_LEAVE_REPO), which fscks clean. */
    keptByGit: number;
    /** Cut, and git's clean-up raced its index-pack child: a partial directory git left. */
    cutRaced: number;
    byRepo: Record<string, number>;
  };
  restarts: { count: number; bindMs: number[]; maxBindMs: number; startToReadyMs: number[]; failed: number };
  rss: { firstMb: number; peakMb: number; steadyStartMb: number; steadyEndMb: number; steadyGrowthMb: number; steadySeconds: number; steadyTimeline: [number, number][] };
  problems: string[];
}

const READY_RE = /Ready to rumble: listening on [^\n]*; bound in (\d+) ms/;

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = ([a, b]: [number, number]) => a + Math.random() * (b - a);

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  const work = await mkdtemp(join(tmpdir(), 'mpgit-soak-'));
  const base = join(work, 'srv');
  const pub = join(work, 'pub');
  const clones = join(work, 'clones');
  await Promise.all([base, pub, clones].map((d) => mkdir(d, { recursive: true })));
  const report: SoakReport = {
    seconds: o.seconds,
    clients: o.clients,
    clones: { ok: 0, failed: 0, cut: 0, corrupt: 0, leftBehind: 0, keptByGit: 0, cutRaced: 0, byRepo: {} },
    restarts: { count: 0, bindMs: [], maxBindMs: 0, startToReadyMs: [], failed: 0 },
    rss: { firstMb: 0, peakMb: 0, steadyStartMb: 0, steadyEndMb: 0, steadyGrowthMb: 0, steadySeconds: 0, steadyTimeline: [] },
    problems: [],
  };
  const nginxCtx = { teardowns: [] as (() => unknown)[], teardown(f: () => unknown) { this.teardowns.push(f); } };
  let daemon: ChildProcess | null = null;
  try {
    log('soak: making the repositories');
    await makeRepo(join(base, 'plain.git'), { commits: 30, filesPerCommit: 8 });
    await bigRepo(join(base, 'offload.git'), { big: 6, bigBytes: 300_000, commits: 3 });
    const nginx = await startNginx(nginxCtx, pub);
    await runOk(process.execPath, [MPGIT, 'offload', join(base, 'offload.git'), '--publish', pub, '--base-url', `${nginx.baseUrl}/`, '--base', 'main~1']);
    const port = await freePort();
    const argv = [MPGIT, 'daemon', '--verbose', `--port=${port}`, '--listen=127.0.0.1', `--base-path=${base}`, '--export-all', '--max-connections=200', `--cache-dir=${join(work, 'cache')}`, '--bind-timeout=5'];

    let stopped = false;
    const startDaemon = async (): Promise<void> => {
      const t0 = performance.now();
      const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
      let out = '';
      let found = false;
      const ready = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 30_000);
        // The log is read whole until the ready line, then drained (a full pipe would stall it).
        child.stderr!.on('data', (c: Buffer) => {
          if (found) return;
          out += c.toString();
          const m = READY_RE.exec(out);
          if (m) {
            found = true;
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        child.once('exit', (code, sig) => {
          out += `\n(exited ${code ?? sig})`;
          resolve(null);
        });
      });
      if (ready === null) {
        report.restarts.failed++;
        report.problems.push(`the daemon did not get ready within 30 s: ${out.slice(0, 1500)}`);
        child.kill('SIGKILL');
        stopped = true;
        return;
      }
      report.restarts.bindMs.push(ready);
      report.restarts.startToReadyMs.push(Math.round(performance.now() - t0));
      daemon = child;
    };
    await startDaemon();
    if (stopped) return report;

    const start = Date.now();
    const deadline = start + o.seconds * 1000;
    const killUntil = start + o.seconds * 1000 * o.killPhase;
    let steadyFrom = 0;
    const samples: { at: number; kb: number; pid: number }[] = [];
    const sampler = setInterval(() => {
      const pid = daemon?.pid;
      if (pid) samples.push({ at: Date.now(), kb: rssKb(pid), pid });
    }, 1000);

    const killer = (async () => {
      while (Date.now() < killUntil && !stopped) {
        await sleep(between(o.killEvery) * 1000);
        if (Date.now() >= killUntil) break;
        daemon!.kill('SIGKILL');
        await new Promise((r) => daemon!.once('exit', r));
        report.restarts.count++;
        await startDaemon();
        log(`soak: daemon killed and restarted (bound in ${report.restarts.bindMs.at(-1)} ms, ready ${report.restarts.startToReadyMs.at(-1)} ms after start)`);
      }
      steadyFrom = Date.now();
    })();

    let n = 0;
    const repos = [
      { name: 'plain', path: 'plain.git', args: [] as string[] },
      { name: 'offload-uris', path: 'offload.git', args: ['-c', 'fetch.uriprotocols=http'] },
      { name: 'offload-inline', path: 'offload.git', args: [] as string[] },
    ];
    const worker = async () => {
      while (Date.now() < deadline && !stopped) {
        const id = n++;
        const repo = repos[id % repos.length]!;
        const dst = join(clones, `c${id}`);
        const cut = Math.random() < o.cutRate;
        const child = spawn('git', [...repo.args, 'clone', '-q', `git://127.0.0.1:${port}/${repo.path}`, dst], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
        let err = '';
        child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
        const timer = cut ? setTimeout(() => child.kill('SIGINT'), 20 + Math.random() * 400) : null;
        const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
        if (timer) clearTimeout(timer);
        if (code === 0) {
          report.clones.ok++;
          report.clones.byRepo[repo.name] = (report.clones.byRepo[repo.name] ?? 0) + 1;
          const f = await run('git', ['fsck', '--strict', '--no-dangling', '--no-progress'], { cwd: dst, timeoutMs: 120_000 });
          if (f.code !== 0) {
            report.clones.corrupt++;
            report.problems.push(`clone ${id} (${repo.name}) fails git fsck: ${f.stderr.slice(0, 500)} (kept in ${dst})`);
            continue;
          }
          await rm(dst, { recursive: true, force: true });
        } else {
          const wasCut = cut && child.signalCode === 'SIGINT';
          if (wasCut) report.clones.cut++;
          else report.clones.failed++;
          if (wasCut && existsSync(dst)) {
            const head = await run('git', ['rev-parse', '--verify', '-q', 'HEAD'], { cwd: dst });
            const whole = head.code === 0 && (await run('git', ['fsck', '--connectivity-only', '--no-progress'], { cwd: dst, timeoutMs: 120_000 })).code === 0;
            if (whole) report.clones.keptByGit++;
            else report.clones.cutRaced++;
            await rm(dst, { recursive: true, force: true });
          } else if (existsSync(dst)) {
            report.clones.leftBehind++;
            report.problems.push(`failed clone ${id} (${repo.name}, ${cut ? 'cut' : `exit ${code}`}) left ${dst} behind: ${err.trim().split('\n').at(-1)}`);
          }
        }
      }
    };
    await Promise.all([killer, ...Array.from({ length: o.clients }, worker)]);
    clearInterval(sampler);

    const mb = (kb: number) => Math.round(kb / 102.4) / 10;
    report.rss.firstMb = mb(samples[0]?.kb ?? 0);
    report.rss.peakMb = mb(Math.max(0, ...samples.map((s) => s.kb)));
    // The steady phase: the last daemon, from 10 s after the last kill (its start-up and first
    // wave of requests) to the end.
    const steady = samples.filter((s) => s.pid === daemon!.pid && s.at >= Math.max(steadyFrom, (steadyFrom || start) + 10_000));
    if (steady.length >= 2) {
      // RSS moves with the requests in flight and the collector: compare medians, of the first
      // minute after a 20 s warm-up and of the last minute.
      const t0 = steady[0]!.at;
      const median = (xs: number[]) => (xs.length ? xs.sort((a, b) => a - b)[xs.length >> 1]! : 0);
      const early = steady.filter((x) => x.at - t0 >= 20_000 && x.at - t0 < 80_000).map((x) => x.kb);
      const late = steady.filter((x) => steady.at(-1)!.at - x.at < 60_000).map((x) => x.kb);
      report.rss.steadyStartMb = mb(median(early.length ? early : [steady[0]!.kb]));
      report.rss.steadyEndMb = mb(median(late));
      report.rss.steadyGrowthMb = Math.round((report.rss.steadyEndMb - report.rss.steadyStartMb) * 10) / 10;
      report.rss.steadySeconds = Math.round((steady.at(-1)!.at - steady[0]!.at) / 1000);
      // Seconds into the steady phase -> MB, every 10 s: a leak climbs, a warm-up levels off.
      for (const x of steady) {
        const sec = Math.round((x.at - steady[0]!.at) / 1000);
        if (sec >= (report.rss.steadyTimeline.at(-1)?.[0] ?? -10) + 10) report.rss.steadyTimeline.push([sec, mb(x.kb)]);
      }
    }
    report.restarts.maxBindMs = Math.max(0, ...report.restarts.bindMs.slice(1));
    return report;
  } finally {
    const d = daemon as ChildProcess | null;
    if (d && d.exitCode === null) {
      d.kill('SIGTERM');
      await Promise.race([new Promise((r) => d.once('exit', r)), sleep(10_000)]);
      d.kill('SIGKILL');
    }
    for (const f of nginxCtx.teardowns) await f();
    await rm(work, { recursive: true, force: true });
  }
}
