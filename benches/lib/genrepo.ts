// A deterministic generator of realistic repositories: many text files under a two-level
// directory tree, a long history of small edits (so delta chains form), some binaries that
// are replaced or patched now and then, annotated tags. Fed to `git fast-import` from a seeded
// PRNG with fixed dates, so the same spec always gives the same commit ids. Repositories are
// cached under benches/out/cache/<spec hash>/ so benches generate them once.
//
//   node --import tsx benches/lib/genrepo.ts --objects 200000 --pack-mb 100 [--seed N] [--dir D]

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const BENCH_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CACHE_DIR = join(BENCH_ROOT, 'out', 'cache');
/** Bumped whenever the generator's output changes, so stale cached repositories are not reused. */
const GENERATOR_VERSION = 1;

export interface GenSpec {
  seed: number;
  /** Text files in the first commit. */
  files: number;
  /** Commits on main after the first. */
  commits: number;
  /** Text files edited per commit. */
  editsPerCommit: number;
  /** Average lines per text file. */
  linesPerFile: number;
  /** Binary files in the first commit. */
  binaries: number;
  /** Average binary size in bytes. */
  binaryBytes: number;
  /** Every this many commits one binary is patched (a few KiB change) or, one time in three, replaced. */
  binaryEditEvery: number;
  /** An annotated tag every this many commits. */
  tagEvery: number;
}

/** Measured on generated repositories: objects per commit (itself, ~6 blobs, ~13 trees). */
const OBJECTS_PER_COMMIT = 20;
/** Measured: pack bytes per commit of history (deltas of blobs and trees, the commit). */
const PACK_BYTES_PER_COMMIT = 1600;
/** Measured: pack bytes per line of a text file's first version. */
const PACK_BYTES_PER_LINE = 15;
/** Share of the pack that is binaries. */
const BINARY_SHARE = 0.3;

/**
 * A spec aiming at about `objects` objects and a `packMB` MB pack (after `git repack -adf`):
 * the object count sets the history length, the size sets how much text there is, and a
 * third of the size is binaries.
 */
export function specFor(target: { objects: number; packMB: number; seed?: number }): GenSpec {
  const commits = Math.max(10, Math.round(target.objects / OBJECTS_PER_COMMIT));
  const binaryMB = target.packMB * BINARY_SHARE;
  const textMB = Math.max(0.2, target.packMB - binaryMB - (commits * PACK_BYTES_PER_COMMIT) / 1e6);
  const linesPerFile = 150;
  const binaries = Math.max(2, Math.round(binaryMB * 0.5));
  return {
    seed: target.seed ?? 1,
    files: Math.max(20, Math.round((textMB * 1e6) / (PACK_BYTES_PER_LINE * linesPerFile))),
    commits,
    editsPerCommit: 6,
    linesPerFile,
    binaries,
    // Replacements and patches add about a third again of the initial binary bytes.
    binaryBytes: Math.round((binaryMB * 1e6) / binaries / 1.35),
    binaryEditEvery: Math.max(1, Math.round(commits / (binaries * 1.5))),
    tagEvery: 1000,
  };
}

/** Named sizes: the index-pack bench repository, and smaller ones for tests and other benches. */
export const PRESETS = {
  /** At least 200k objects and a 100 MiB pack. */
  bench: specFor({ objects: 210_000, packMB: 115 }),
  /** About 50 MB (daemon tests, multipath bench). */
  medium: specFor({ objects: 60_000, packMB: 50 }),
  /** A few MB, seconds to make (tests). */
  small: specFor({ objects: 4_000, packMB: 3 }),
} satisfies Record<string, GenSpec>;

/** The spec of a named preset (`extra` adds a bench's own), or an error listing the names. */
export function presetSpec(name: string, extra: Record<string, GenSpec> = {}): GenSpec {
  const all: Record<string, GenSpec> = { ...extra, ...PRESETS };
  const spec = all[name];
  if (!spec) throw new Error(`unknown preset ${name}: ${Object.keys(all).join(', ')}`);
  return spec;
}

export interface GeneratedRepo {
  /** The bare repository. */
  gitDir: string;
  /** Its single pack (after `git repack -adf`) and index. */
  packPath: string;
  idxPath: string;
  head: string;
  objects: number;
  packBytes: number;
  spec: GenSpec;
}

/** Seeded PRNG (mulberry32): same seed, same sequence, on every machine. */
export class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE((this.next() * 4294967296) >>> 0, i);
    for (let i = n - (n % 4); i < n; i++) b[i] = this.int(256);
    return b;
  }
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'ex', 'on', 'si', 'ba', 'de', 'po', 'qu', 'ar', 'vi', 'zo', 'ch', 'st', 'el', 'um'];
const KEYWORDS = ['if', 'for', 'return', 'let', 'const', 'while', 'fn', 'match', 'else', 'struct'];

/** Source-like text: identifiers from a fixed vocabulary, keywords, indentation, punctuation. */
class TextMaker {
  private readonly words: string[] = [];
  constructor(private readonly rng: Prng) {
    for (let i = 0; i < 3000; i++) {
      let w = '';
      const n = 2 + rng.int(3);
      for (let k = 0; k < n; k++) w += SYLLABLES[rng.int(SYLLABLES.length)];
      this.words.push(rng.int(4) === 0 ? `${w}_${SYLLABLES[rng.int(SYLLABLES.length)]}` : w);
    }
  }
  word(): string {
    // Zipf-like: low indices much more often.
    const r = this.rng.next();
    return this.words[Math.floor(r * r * r * this.words.length)]!;
  }
  line(): string {
    const indent = '    '.repeat(this.rng.int(4));
    switch (this.rng.int(6)) {
      case 0:
        return `${indent}${KEYWORDS[this.rng.int(KEYWORDS.length)]} ${this.word()} = ${this.word()}(${this.word()}, ${this.rng.int(1000)});`;
      case 1:
        return `${indent}// ${Array.from({ length: 3 + this.rng.int(8) }, () => this.word()).join(' ')}`;
      case 2:
        return `${indent}}`;
      case 3:
        return '';
      default:
        return `${indent}${this.word()}.${this.word()}(${Array.from({ length: this.rng.int(4) }, () => this.word()).join(', ')});`;
    }
  }
}

function fileName(i: number): string {
  return `src/m${String(i % 20).padStart(2, '0')}/p${String(Math.floor(i / 20) % 10)}/f${i}.txt`;
}

/** Writes the fast-import stream for `spec` into `sink` (awaiting back-pressure). */
async function emitHistory(spec: GenSpec, sink: (chunk: string | Buffer) => Promise<void>): Promise<void> {
  const rng = new Prng(spec.seed);
  const text = new TextMaker(rng);
  const files: string[][] = [];
  const binaries: Buffer[] = [];
  const t0 = 1_600_000_000;
  const who = (c: number) => `Bench Author <author${c % 7}@example.com> ${t0 + c * 97} +0000`;
  const data = async (content: string | Buffer) => {
    const b = typeof content === 'string' ? Buffer.from(content) : content;
    await sink(`data ${b.length}\n`);
    await sink(b);
    await sink('\n');
  };

  // The first commit: every file.
  await sink(`commit refs/heads/main\nmark :1\nauthor ${who(0)}\ncommitter ${who(0)}\n`);
  await data('Initial import\n');
  for (let f = 0; f < spec.files; f++) {
    const n = Math.max(5, Math.round(spec.linesPerFile * (0.3 + rng.next() * 1.4)));
    files.push(Array.from({ length: n }, () => text.line()));
    await sink(`M 100644 inline ${fileName(f)}\n`);
    await data(files[f]!.join('\n') + '\n');
  }
  for (let b = 0; b < spec.binaries; b++) {
    binaries.push(rng.bytes(Math.max(64, Math.round(spec.binaryBytes * (0.5 + rng.next())))));
    await sink(`M 100644 inline assets/blob${b}.bin\n`);
    await data(binaries[b]!);
  }
  await sink('\n');

  for (let c = 1; c <= spec.commits; c++) {
    const touched = new Set<number>();
    // Some files are edited far more than others (long delta chains form on those).
    while (touched.size < Math.min(spec.editsPerCommit, spec.files)) touched.add(Math.floor(spec.files * rng.next() ** 2.5));
    await sink(`commit refs/heads/main\nmark :${c + 1}\nauthor ${who(c)}\ncommitter ${who(c)}\n`);
    await data(`Change ${c}: ${text.word()} ${text.word()} in ${touched.size} files\n`);
    await sink(`from :${c}\n`);
    for (const f of touched) {
      const lines = files[f]!;
      const at = rng.int(lines.length);
      const op = rng.int(10);
      if (op < 5 || lines.length > spec.linesPerFile * 3) {
        for (let k = 0; k < 1 + rng.int(3) && at + k < lines.length; k++) lines[at + k] = text.line();
      } else if (op < 8 || lines.length < 5) {
        lines.splice(at, 0, ...Array.from({ length: 1 + rng.int(5) }, () => text.line()));
      } else {
        lines.splice(at, 1 + rng.int(3));
      }
      await sink(`M 100644 inline ${fileName(f)}\n`);
      await data(lines.join('\n') + '\n');
    }
    if (spec.binaries && c % spec.binaryEditEvery === 0) {
      const b = rng.int(spec.binaries);
      const old = binaries[b]!;
      if (rng.int(3) === 0) {
        binaries[b] = rng.bytes(old.length);
      } else {
        const patched = Buffer.from(old);
        const len = Math.min(patched.length, 1024 + rng.int(4096));
        rng.bytes(len).copy(patched, rng.int(patched.length - len + 1));
        binaries[b] = patched;
      }
      await sink(`M 100644 inline assets/blob${b}.bin\n`);
      await data(binaries[b]!);
    }
    await sink('\n');
    if (c % spec.tagEvery === 0) {
      await sink(`tag v${c / spec.tagEvery}.0\nfrom :${c + 1}\ntagger ${who(c)}\n`);
      await data(`Release ${c / spec.tagEvery}.0\n`);
    }
  }
  await sink('done\n');
}

function run(cmd: string, args: string[], opts: { cwd?: string; input?: (stdin: NodeJS.WritableStream) => Promise<void> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
    child.stdin.on('error', () => {});
    if (opts.input) {
      opts.input(child.stdin).then(
        () => child.stdin.end(),
        (e) => {
          child.kill();
          reject(e);
        },
      );
    } else {
      child.stdin.end();
    }
  });
}

/** Generates the repository for `spec` as a bare repository at `dir` (which must not exist). */
export async function generateRepo(spec: GenSpec, dir: string, log: (s: string) => void = () => {}): Promise<GeneratedRepo> {
  await run('git', ['init', '-q', '--bare', '-b', 'main', dir]);
  log(`genrepo: fast-import ${spec.files} files, ${spec.commits} commits, ${spec.binaries} binaries into ${dir}`);
  await run('git', ['-c', 'gc.auto=0', 'fast-import', '--quiet', '--done'], {
    cwd: dir,
    input: async (stdin) => {
      let pending: Buffer[] = [];
      let size = 0;
      const flush = async () => {
        if (!stdin.write(Buffer.concat(pending))) await once(stdin, 'drain');
        pending = [];
        size = 0;
      };
      await emitHistory(spec, async (chunk) => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        pending.push(b);
        size += b.length;
        if (size >= 1 << 20) await flush();
      });
      await flush();
    },
  });
  log('genrepo: git repack -adf (deltas as a server would send them)');
  await run('git', ['-c', 'pack.writeBitmaps=false', 'repack', '-q', '-a', '-d', '-f', '--window=10', '--depth=50'], { cwd: dir });
  return describeRepo(dir, spec);
}

function describeRepo(dir: string, spec: GenSpec): GeneratedRepo {
  const packDir = join(dir, 'objects', 'pack');
  const packs = readdirSync(packDir).filter((n) => n.endsWith('.pack'));
  if (packs.length !== 1) throw new Error(`${packDir}: expected one pack, found ${packs.length}`);
  const packPath = join(packDir, packs[0]!);
  const idxPath = packPath.replace(/\.pack$/, '.idx');
  const idx = readFileSync(idxPath);
  return {
    gitDir: dir,
    packPath,
    idxPath,
    head: readFileSync(join(dir, 'refs', 'heads', 'main'), 'utf8').trim(),
    objects: idx.readUInt32BE(8 + 255 * 4),
    packBytes: statSync(packPath).size,
    spec,
  };
}

export function specHash(spec: GenSpec): string {
  return createHash('sha1').update(JSON.stringify({ v: GENERATOR_VERSION, ...spec })).digest('hex').slice(0, 16);
}

/** The repository for `spec`, generated once under benches/out/cache/<hash>/repo.git. */
export async function cachedRepo(spec: GenSpec, log: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Promise<GeneratedRepo> {
  const home = join(CACHE_DIR, specHash(spec));
  const dir = join(home, 'repo.git');
  const meta = join(home, 'meta.json');
  if (existsSync(meta) && existsSync(dir)) return describeRepo(dir, spec);
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  const tmp = join(home, `tmp-${process.pid}.git`);
  const started = Date.now();
  const made = await generateRepo(spec, tmp, log);
  renameSync(tmp, dir);
  const repo = describeRepo(dir, spec);
  writeFileSync(meta, JSON.stringify({ spec, objects: made.objects, packBytes: made.packBytes, head: made.head, seconds: (Date.now() - started) / 1000 }, null, 2));
  log(`genrepo: ${repo.objects} objects, ${(repo.packBytes / 1e6).toFixed(1)} MB pack, in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return repo;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      objects: { type: 'string' },
      'pack-mb': { type: 'string' },
      preset: { type: 'string' },
      seed: { type: 'string' },
      dir: { type: 'string' },
    },
  });
  let spec: GenSpec;
  if (values.preset) {
    const p = presetSpec(values.preset);
    spec = { ...p, seed: values.seed ? Number(values.seed) : p.seed };
  } else {
    spec = specFor({ objects: Number(values.objects ?? 200_000), packMB: Number(values['pack-mb'] ?? 100), seed: values.seed ? Number(values.seed) : 1 });
  }
  const repo = values.dir ? await generateRepo(spec, values.dir, (s) => process.stderr.write(`${s}\n`)) : await cachedRepo(spec);
  process.stdout.write(`${JSON.stringify(repo, null, 2)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    process.stderr.write(`genrepo: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
