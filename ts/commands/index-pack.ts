// `mpgit index-pack`: the indexer on its own, with git index-pack's meaning. A pack file gets
// its .idx next to it (or at -o) and the pack checksum is printed; with --stdin the pack is
// read from standard input and written to PACK, or into the repository's objects/pack as
// pack-<checksum>.pack, and "pack\t<checksum>" is printed.

import { chmodSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { ConfigError, MpgitError } from '../errors.js';
import { defaultThreads, indexPackFile, indexStream, siblingPath, type IndexProgress, type IndexResult } from '../pack/indexer.js';
import { Progress, stderrSink } from '../progress.js';
import { ObjectDb } from '../repo/odb.js';
import { findRepository } from '../repo/layout.js';
import { zlibCompressionLevel } from '../repo/compression.js';
import { readConfig } from '../config/read.js';

interface Opts {
  threads?: string;
  o?: string;
  stdin?: boolean;
  fixThin?: boolean;
  revIndex?: boolean;
  v?: boolean;
}

export function registerIndexPack(program: Command): void {
  program
    .command('index-pack')
    .description('build the .idx (and .rev) of a pack, as git index-pack does')
    .argument('[pack]', 'the pack file (with --stdin: where to write the pack read from stdin)')
    .option('--threads <n>', 'threads resolving deltas (0: one per core)')
    .option('-o <file>', 'write the index to <file> instead of next to the pack')
    .option('--stdin', 'read the pack from standard input')
    .option('--fix-thin', 'append the bases a thin pack lacks, from the current repository (needs --stdin)')
    .option('--rev-index', 'also write the reverse index (.rev)')
    .option('--no-rev-index', 'do not write the reverse index (the default)')
    .option('-v', 'show progress')
    .action(async (pack: string | undefined, opts: Opts) => {
      await indexPack(pack, opts);
    });
}

async function indexPack(pack: string | undefined, opts: Opts): Promise<void> {
  if (!pack && !opts.stdin) throw new ConfigError('index-pack needs a pack file, or --stdin', 'usage: mpgit index-pack [-o <index>] [--stdin [--fix-thin] [<pack>]] <pack>');
  if (opts.fixThin && !opts.stdin) throw new ConfigError('--fix-thin cannot be used without --stdin');
  const threads = parseThreads(opts.threads);
  const idxPath = opts.o ?? (pack ? siblingPath(pack, '.idx') : undefined);
  const show = !!opts.v || !!process.stderr.isTTY;

  if (!opts.stdin) {
    if (!existsSync(pack!)) throw new MpgitError('MPGIT_NOT_FOUND', `cannot open packfile '${pack}': no such file`);
    const meter = new Meter(show, 'Indexing objects', false);
    try {
      const r = await indexPackFile(pack!, { threads, idxPath, revPath: revPathFor(idxPath!, opts) });
      meter.done(r);
      chmodReadOnly(r.idxPath, r.revPath);
      process.stdout.write(`${r.packChecksum}\n`);
    } catch (e) {
      meter.abort();
      throw e;
    }
    return;
  }

  // --stdin: into PACK, or into the repository's objects/pack under temporary names that are
  // renamed to pack-<checksum>.* once the checksum is known.
  const gitDir = !pack || opts.fixThin ? findRepository(process.cwd()).gitDir : null;
  let packPath: string;
  let idx: string;
  let rev: string | null;
  if (pack) {
    if (existsSync(pack)) throw new MpgitError('MPGIT_EXISTS', `unable to create '${pack}': it already exists`, 'remove it, or name another pack file');
    packPath = pack;
    idx = idxPath!;
    rev = revPathFor(idx, opts);
  } else {
    const packDir = join(gitDir!, 'objects', 'pack');
    mkdirSync(packDir, { recursive: true });
    const tag = randomBytes(6).toString('hex');
    packPath = join(packDir, `tmp_pack_${tag}.pack`);
    idx = idxPath ?? join(packDir, `tmp_idx_${tag}.idx`);
    rev = revPathFor(idx, opts);
  }
  const meter = new Meter(show, 'Receiving objects', true);
  try {
    const r = await indexStream(process.stdin, packPath, {
      threads,
      idxPath: idx,
      revPath: rev,
      fixThin: opts.fixThin ? await ObjectDb.open(gitDir!) : undefined,
      compressionLevel: opts.fixThin ? zlibCompressionLevel(readConfig(gitDir!).config) : undefined,
      onProgress: (p) => meter.update(p),
    });
    meter.done(r);
    if (!pack) {
      const named = join(dirname(packPath), `pack-${r.packChecksum}`);
      renameSync(packPath, (packPath = `${named}.pack`));
      if (!idxPath) {
        renameSync(idx, (idx = `${named}.idx`));
        if (rev) renameSync(rev, (rev = `${named}.rev`));
      }
    }
    chmodSync(packPath, 0o444);
    chmodReadOnly(idx, rev);
    process.stdout.write(`pack\t${r.packChecksum}\n`);
  } catch (e) {
    meter.abort();
    throw e;
  }
}

function parseThreads(s: string | undefined): number {
  if (s === undefined) return defaultThreads();
  if (!/^\d+$/.test(s)) throw new ConfigError(`--threads: ${JSON.stringify(s)} is not a number`);
  const n = Number(s);
  return n === 0 ? defaultThreads() : n;
}

/** The .rev that goes with `idx` when asked for (git derives it from the index name). */
function revPathFor(idx: string, opts: Opts): string | null {
  if (!opts.revIndex) return null;
  if (!idx.endsWith('.idx')) throw new ConfigError(`index file name '${idx}' does not end with '.idx'`, 'the .rev is named after the index');
  return `${idx.slice(0, -'.idx'.length)}.rev`;
}

function chmodReadOnly(idx: string, rev: string | null): void {
  chmodSync(idx, 0o444);
  if (rev) chmodSync(rev, 0o444);
}

/** git's two meters: objects received (or indexed), then deltas resolved. */
class Meter {
  private readonly sink: ReturnType<typeof stderrSink> | null;
  private readonly objects: Progress;
  private deltas: Progress | null = null;
  private objectsDone = false;
  private last: IndexProgress | null = null;

  constructor(show: boolean, title: string, throughput: boolean) {
    this.sink = show ? stderrSink() : null;
    this.objects = new Progress(this.sink, title, 0, { throughput });
  }

  update(p: IndexProgress): void {
    this.last = p;
    if (!this.objectsDone) {
      this.objects.setTotal(p.objectsTotal);
      this.objects.update(p.objectsReceived, p.bytes);
      if (p.objectsTotal > 0 && p.objectsReceived === p.objectsTotal) this.finishObjects(p);
    }
    if (this.objectsDone && p.deltasTotal > 0) {
      this.deltas ??= new Progress(this.sink, 'Resolving deltas', p.deltasTotal);
      this.deltas.update(p.deltasResolved);
    }
  }

  private finishObjects(p: IndexProgress): void {
    this.objectsDone = true;
    this.objects.setTotal(p.objectsTotal);
    this.objects.done(p.objectsReceived, p.bytes);
  }

  /** The final lines (also when no progress was reported, as for the native file indexer). */
  done(r: IndexResult): void {
    if (!this.objectsDone) {
      const received = r.objectCount - r.appendedBases;
      this.finishObjects(this.last ?? { bytes: 0, objectsTotal: received, objectsReceived: received, deltasTotal: r.deltaCount, deltasResolved: r.deltaCount });
    }
    if (r.deltaCount > 0) {
      this.deltas ??= new Progress(this.sink, 'Resolving deltas', r.deltaCount);
      this.deltas.done(r.deltaCount);
    }
  }

  abort(): void {
    (this.deltas ?? this.objects).abort();
  }
}
