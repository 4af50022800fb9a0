// SHA-1 throughput on the same bytes: each of mpgit's collision-detecting backends (forced,
// through the addon), git's own SHA-1DC (`git hash-object` of the same content as a file),
// and plain SHA-1 without collision detection (node:crypto, i.e. OpenSSL; and the Rust sha1
// crate mpgit uses for pack checksums). Each row hashes a blob of --mb MB whole (what
// hash-object does) and, where it can, as consecutive 4 KiB objects (what a pack's many small
// objects look like). Every digest of the whole blob must equal git's before a figure counts.
// Speeds are bytes per second of CPU time (user + system: process.cpuUsage in-process, GNU
// time for git), which other processes' load on a shared machine stretches far less than wall
// time; the wall-clock speed of the whole blob is recorded beside it.
//
//   npm run bench:hash [-- --mb N] [--runs N]

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { core } from '../ts/core/index.js';
import { versionReport } from '../ts/version.js';
import { benchArgs, machine, machineLine, measure, median, printTable, round, writeJson, type Row } from './lib/bench.js';

/** Object size for the "many objects" column. */
const OBJECT_BYTES = 4096;

interface Case {
  name: string;
  /** Hashes `buf` whole (returns its hex id) or as objects of `objectBytes` (the last one's). */
  run?: (buf: Buffer, objectBytes: number) => string;
  /** Or a command timed from outside (whole blob only). */
  file?: (path: string) => Promise<{ ms: number; cpuMs: number; id: string }>;
}

function nodeCrypto(buf: Buffer, objectBytes: number): string {
  let id = '';
  for (let at = 0; at < buf.length; at += objectBytes || buf.length) id = createHash('sha1').update(buf.subarray(at, at + (objectBytes || buf.length))).digest('hex');
  return id;
}

async function main(): Promise<void> {
  const values = benchArgs({ mb: '128', runs: '3' });
  const bytes = Math.max(1, Number(values.mb)) * 1_000_000;
  const runs = Math.max(1, Number(values.runs));
  const data = randomBytes(bytes);
  // What git hashes for a blob: its header, then the content. Every row hashes these bytes.
  const blob = Buffer.concat([Buffer.from(`blob ${bytes}\0`), data]);
  const work = mkdtempSync(join(tmpdir(), 'mpgit-bench-hash-'));
  try {
    const file = join(work, 'blob.bin');
    writeFileSync(file, data);
    const report = versionReport();
    const cases: Case[] = [];
    const info = core.info;
    const hash = info && ((data: Buffer, backend: string, n: number) => info.sha1Hash(data, backend, n));
    for (const b of report.sha1.backends.filter((x) => x.supported)) {
      if (hash) cases.push({ name: `mpgit sha1dc ${b.name}${b.name === report.sha1.backend ? ' (chosen)' : ''}`, run: (buf, n) => hash(buf, b.name, n) });
    }
    cases.push({
      name: 'git hash-object (sha1dc)',
      file: async (path) => {
        const m = await measure('git', ['hash-object', '--no-filters', path]);
        return { ms: m.wallMs, cpuMs: m.cpuMs, id: m.stdout.trim() };
      },
    });
    cases.push({ name: 'plain SHA-1: node:crypto', run: nodeCrypto });
    if (hash) cases.push({ name: 'plain SHA-1: Rust sha1 (pack checksums)', run: (buf, n) => hash(buf, 'plain', n) });

    const want = createHash('sha1').update(blob).digest('hex');
    const whole = new Map<Case, number[]>(cases.map((c) => [c, []]));
    const wholeCpu = new Map<Case, number[]>(cases.map((c) => [c, []]));
    const objects = new Map<Case, number[]>(cases.map((c) => [c, []]));
    const cpuMsOf = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
    // Rounds over all cases, so that load from elsewhere hits every row alike.
    for (let r = 0; r < runs; r++) {
      for (const c of cases) {
        let ms: number;
        let cpuMs: number;
        if (c.file) {
          const out = await c.file(file);
          if (out.id !== want) throw new Error(`${c.name}: ${out.id}, not ${want}`);
          ms = out.ms;
          cpuMs = out.cpuMs;
        } else {
          const t = process.hrtime.bigint();
          const cpu = process.cpuUsage();
          const id = c.run!(blob, 0);
          cpuMs = cpuMsOf(process.cpuUsage(cpu));
          ms = Number(process.hrtime.bigint() - t) / 1e6;
          if (id !== want) throw new Error(`${c.name}: ${id}, not ${want}`);
          const cpu2 = process.cpuUsage();
          c.run!(blob, OBJECT_BYTES);
          objects.get(c)!.push(cpuMsOf(process.cpuUsage(cpu2)));
        }
        whole.get(c)!.push(ms);
        wholeCpu.get(c)!.push(cpuMs);
        process.stderr.write(`round ${r + 1}/${runs}: ${c.name}: ${ms.toFixed(0)} ms\n`);
      }
    }
    const mbps = (ms: number) => round(blob.length / 1e6 / (ms / 1000), 0);
    const results = cases.map((c) => ({
      name: c.name,
      mbPerSecWhole: mbps(median(wholeCpu.get(c)!)),
      mbPerSecObjects: objects.get(c)!.length ? mbps(median(objects.get(c)!)) : null,
      mbPerSecWholeWall: mbps(median(whole.get(c)!)),
      collisionDetection: !c.name.startsWith('plain'),
      runsMs: whole.get(c)!.map((x) => round(x, 0)),
    }));
    const rows: Row[] = results.map((r) => ({
      'SHA-1': r.name,
      [`MB/s, one ${values.mb} MB blob`]: r.mbPerSecWhole,
      [`MB/s, ${OBJECT_BYTES / 1024} KiB objects`]: r.mbPerSecObjects ?? '-',
      'MB/s wall, blob': r.mbPerSecWholeWall,
    }));
    const m = machine();
    printTable(`SHA-1 of the same ${values.mb} MB, median of ${runs}, per second of CPU time (git hash-object: the whole process, reading the file from the page cache)\non ${machineLine(m)}`, rows);
    const path = writeJson('hash', { bench: 'hash', date: new Date().toISOString(), machine: m, bytes: blob.length, objectBytes: OBJECT_BYTES, runs, digest: want, results });
    process.stdout.write(`wrote ${path}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench hash: ${(e as Error).message}\n`);
  process.exit(1);
});
