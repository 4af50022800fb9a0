// The offload state of a repository: which packs are published where, and which objects each
// one carries. `mpgit offload` writes it into the repository's git dir; `mpgit daemon` reads it
// per request (cached by mtime), so a daemon serving the repository uses what was prepared
// there with no flag of its own, and a refresh takes effect on the next request.

import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { OID_RE } from '../oid.js';

export const STATE_FILE = 'mpgit-offload.json';

const oid = z.string().regex(OID_RE);

/** What every pack mpgit publishes has: its hash, its file in the publish dir, its life. */
const published = {
  hash: oid,
  file: z.string(),
  size: z.number().int().nonnegative(),
  createdAt: z.string(),
  /** When a newer pack replaced it: kept published for a while for responses that named it. */
  retiredAt: z.string().nullable(),
};

const basePack = z.object({
  kind: z.literal('base'),
  ...published,
  /** The ref (or commit) given to --base, re-resolved by --refresh. */
  ref: z.string(),
  /** What the ref named when published (a commit, or an annotated tag). */
  object: oid,
  /** That object peeled to its commit. */
  commit: oid,
  /** Commits reachable from the base (for deciding whether a fetch is better served by it). */
  commits: z.number().int().nonnegative(),
});

const blobPack = z.object({
  kind: z.literal('blob'),
  ...published,
  blobs: z.array(oid),
});

/** A pack configured by hand with git's uploadpack.blobPackfileUri (served from its own URI). */
const configPack = z.object({
  kind: z.literal('config'),
  hash: oid,
  uri: z.string(),
  blobs: z.array(oid),
});

/** A published bundle (`--bundles`): the base, then increments with growing creation tokens. */
const publishedBundle = z.object({
  /** The `<id>` of its `bundle.<id>.*` keys. */
  id: z.string().regex(/^[A-Za-z0-9-]+$/),
  file: z.string(),
  size: z.number().int().nonnegative(),
  createdAt: z.string(),
  /** When a new base bundle replaced its chain: no longer listed, kept published for a while. */
  retiredAt: z.string().nullable(),
  creationToken: z.number().int().positive(),
  /** The ref the bundle carries (full name) and what it pointed to, peeled to a commit. */
  ref: z.string(),
  object: oid,
  commit: oid,
  /** The commit an increment builds on (its bundle prerequisite); null for a base bundle. */
  prerequisite: oid.nullable(),
});

const stateSchema = z.object({
  version: z.literal(1),
  mode: z.enum(['blob', 'base']),
  publishDir: z.string(),
  baseUrl: z.string(),
  minSize: z.number().int().positive().nullable(),
  packs: z.array(z.discriminatedUnion('kind', [basePack, blobPack, configPack])),
  /** Bundles are published too (`--bundles`); kept on by --refresh. */
  bundlesOn: z.boolean().default(false),
  bundles: z.array(publishedBundle).default([]),
});

export type OffloadState = z.infer<typeof stateSchema>;
export type BasePack = z.infer<typeof basePack>;
export type BlobPack = z.infer<typeof blobPack>;
export type ConfigPack = z.infer<typeof configPack>;
export type PublishedPack = BasePack | BlobPack;
export type PublishedBundle = z.infer<typeof publishedBundle>;

export function statePath(gitDir: string): string {
  return join(gitDir, STATE_FILE);
}

/** The URI a published pack is served at. */
export function packUri(state: OffloadState, p: PublishedPack | ConfigPack): string {
  if (p.kind === 'config') return p.uri;
  return `${state.baseUrl.replace(/\/+$/, '')}/${p.file}`;
}

export function parseState(text: string, where: string): OffloadState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${where} is not valid JSON: ${(e as Error).message}`, 'run `mpgit offload` again to rewrite it');
  }
  const r = stateSchema.safeParse(json);
  if (!r.success) throw new ConfigError(`${where} is not a valid offload state: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 'run `mpgit offload` again to rewrite it');
  return r.data;
}

/** The state of `gitDir`, or null when offload is not set up there. */
export async function readState(gitDir: string): Promise<OffloadState | null> {
  const file = statePath(gitDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return parseState(text, file);
}

/** Writes the state atomically (a reader sees the old or the new one, never half). */
export async function writeState(gitDir: string, state: OffloadState): Promise<void> {
  const file = statePath(gitDir);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(stateSchema.parse(state), null, 1) + '\n');
  await rename(tmp, file);
}

const cache = new Map<string, { mtimeMs: number; size: number; state: OffloadState }>();
/** Bound on repositories whose parsed state is cached. */
const MAX_CACHED = 256;

/** Like readState, but reparses only when the file changed (the daemon calls it per request). */
export async function loadStateCached(gitDir: string): Promise<OffloadState | null> {
  const file = statePath(gitDir);
  let st;
  try {
    st = await stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      cache.delete(file);
      return null;
    }
    throw e;
  }
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.state;
  const state = await readState(gitDir);
  if (!state) return null;
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
  cache.set(file, { mtimeMs: st.mtimeMs, size: st.size, state });
  return state;
}

/** The bundles listed now, oldest (smallest creation token) first. */
export function liveBundles(state: OffloadState): PublishedBundle[] {
  return state.bundles.filter((b) => b.retiredAt === null).sort((a, b) => a.creationToken - b.creationToken);
}

/** The packs a response may name now (retired ones are only kept published). */
export function livePacks(state: OffloadState): (PublishedPack | ConfigPack)[] {
  return state.packs.filter((p) => p.kind === 'config' || p.retiredAt === null);
}
