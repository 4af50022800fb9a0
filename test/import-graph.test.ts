// The layering of ts/ that docs/ARCHITECTURE.md states, checked against the source: every
// import (static, type-only or dynamic) goes to a lower layer or stays inside its own folder,
// and no chain of imports comes back to where it started.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TS = join(ROOT, 'ts');

/** Lowest first; a module may import from a lower layer, or from its own folder. Keep in step with docs/ARCHITECTURE.md. */
export const LAYERS: string[][] = [
  ['errors.ts', 'progress.ts', 'oid.ts', 'file-size.ts'],
  ['core', 'git.ts'],
  ['net', 'pktline.ts', 'version.ts'],
  ['protocol'],
  ['pack'],
  ['repo'],
  ['bundle'],
  ['offload', 'config'],
  ['serve', 'client', 'cache'],
  ['daemon', 'doctor'],
  ['commands', 'cli-errors.ts'],
  ['cli.ts'],
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The unit a file belongs to: its top folder under ts/, or the file itself at the top. */
function unitOf(file: string): string {
  return relative(TS, file).split('/')[0]!;
}

function layerOf(unit: string): number {
  const i = LAYERS.findIndex((l) => l.includes(unit));
  if (i < 0) throw new Error(`ts/${unit} is in no layer: add it to LAYERS here and to docs/ARCHITECTURE.md`);
  return i;
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(TS)) {
    const src = readFileSync(f, 'utf8');
    const deps = [...src.matchAll(IMPORT)].map((m) => resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts')));
    g.set(f, deps);
  }
  return g;
}

test('every import in ts/ goes down a layer or stays in its folder', (t) => {
  const bad: string[] = [];
  for (const [from, deps] of graph()) {
    const u = unitOf(from);
    for (const to of deps) {
      const v = unitOf(to);
      if (u === v) continue;
      if (layerOf(v) >= layerOf(u)) bad.push(`${relative(ROOT, from)} -> ${relative(ROOT, to)}`);
    }
  }
  t.deepEqual(bad, [], 'imports that go up or sideways between layers');
});

test('no import circles in ts/', (t) => {
  const g = graph();
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      circles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(TS, p)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of g.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of g.keys()) visit(f, []);
  t.deepEqual(circles, []);
});

test('every import in ts/ names a file that exists', (t) => {
  const g = graph();
  const missing = [...g].flatMap(([from, deps]) => deps.filter((d) => !g.has(d)).map((d) => `${relative(ROOT, from)} -> ${relative(ROOT, d)}`));
  t.deepEqual(missing, []);
});

test('no file in ts/ is over 400 lines', (t) => {
  const long = files(TS).map((f) => [relative(ROOT, f), readFileSync(f, 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > 400);
  t.deepEqual(long, []);
});

test('the object-id pattern is defined once in ts/ (ts/oid.ts); everything else uses it', (t) => {
  const pattern = /\[0-9a-f\]\{40\}/;
  const defined = files(TS).filter((f) => pattern.test(readFileSync(f, 'utf8'))).map((f) => relative(ROOT, f));
  t.deepEqual(defined, ['ts/oid.ts']);
});
