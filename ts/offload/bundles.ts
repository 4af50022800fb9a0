// Publishing bundles (`mpgit offload --base REF --bundles`), next to the base packs: the first
// run writes one bundle of everything reachable from the base ref; each --refresh after the ref
// moved forward writes an increment (the new commits, with the previous tip as its bundle
// prerequisite) under a larger creation token, so a client that holds the earlier bundles
// downloads only the new one. When the ref was rewound or rewritten, or the chain grew long, a
// new base bundle starts a new chain; the old chain is no longer listed but stays published
// for RETIRED_RETENTION_MS, for clients still downloading it (as retired packs do).
//
// The list is served two ways: by the daemon's protocol v2 `bundle-uri` command
// (bundleListLines) and as a file in the publish directory (BUNDLE_LIST_FILE), for
// `--bundle-uri=URL` and `fetch.bundleURI`.

import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { isOid } from '../oid.js';
import { humanBytes } from '../progress.js';
import { encodeBundleHeader } from '../bundle/format.js';
import { bundleListPairs, formatBundleListFile } from '../bundle/list.js';
import { gitText, runGit } from '../git.js';
import { liveBundles, type OffloadState, type PublishedBundle } from './state.js';

/** The bundle list file in the publish directory (one repository per publish directory). */
export const BUNDLE_LIST_FILE = 'bundle-list';
/** Increments in one chain before the next refresh starts a new base bundle. */
export const MAX_CHAIN = 30;

/** publish.ts's pack writer: pack-objects' output after `header`, named from its checksum. */
export type WritePack = (gitDir: string, publishDir: string, args: string[], input: string, opts: { header: Buffer; name: (hash: string) => string }) => Promise<{ hash: string; file: string; size: number }>;

export function bundleUri(state: OffloadState, b: PublishedBundle): string {
  return `${state.baseUrl.replace(/\/+$/, '')}/${b.file}`;
}

/** The list entries of the live bundles, with absolute URIs. */
function listEntries(state: OffloadState): { id: string; uri: string; creationToken: number }[] {
  return liveBundles(state).map((b) => ({ id: b.id, uri: bundleUri(state, b), creationToken: b.creationToken }));
}

/** The `bundle-uri` command's answer: `key=value` lines (none when nothing is listed). */
export function bundleListLines(state: OffloadState): string[] {
  const entries = listEntries(state);
  return entries.length ? bundleListPairs(entries).map(([k, v]) => `${k}=${v}`) : [];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Bundles of the old state whose files are still published (others are dropped, and said so). */
export async function carryBundles(old: OffloadState | null, publishDir: string, log: (l: string) => void): Promise<PublishedBundle[]> {
  const out: PublishedBundle[] = [];
  for (const b of old?.bundles ?? []) {
    if (await exists(join(publishDir, b.file))) out.push(b);
    else log(`${b.file} is missing from ${publishDir}: dropped from the bundle list`);
  }
  // A chain with a hole cannot be applied by anyone: its later increments go too.
  const live = out.filter((b) => b.retiredAt === null).sort((a, b) => a.creationToken - b.creationToken);
  for (let i = 0; i < live.length; i++) {
    const b = live[i]!;
    const broken = i === 0 ? b.prerequisite !== null : b.prerequisite !== live[i - 1]!.commit;
    if (broken) {
      for (const x of live.slice(i)) x.retiredAt = new Date().toISOString();
      log(`bundle chain broken at ${b.file}: a new base bundle is written`);
      break;
    }
  }
  return out;
}

/**
 * Publishes the bundle for the base ref's current target (a base bundle or an increment), and
 * rewrites the list file. Returns the bundles written (none when the ref did not move).
 */
export async function publishBundles(gitDir: string, publishDir: string, state: OffloadState, ref: string, now: Date, log: (l: string) => void, publishPack: WritePack): Promise<PublishedBundle[]> {
  const object = await gitText(gitDir, ['rev-parse', '--verify', '-q', `${ref}^{object}`], { okCodes: [1] });
  const commit = await gitText(gitDir, ['rev-parse', '--verify', '-q', `${ref}^{commit}`], { okCodes: [1] });
  if (!isOid(object) || !isOid(commit)) throw new ConfigError(`--base ${ref} does not name a commit`, 'give a branch, a tag or a commit id');
  // A bundle carries refs by name: the base's full name (a bare commit id gets one of ours).
  const full = await gitText(gitDir, ['rev-parse', '--symbolic-full-name', ref], { okCodes: [0, 1, 128] });
  const refName = full.startsWith('refs/') ? full.split('\n')[0]! : 'refs/mpgit/base';
  const live = liveBundles(state);
  const last = live[live.length - 1];
  const written: PublishedBundle[] = [];
  if (last && last.object === object && last.ref === refName) {
    log(`bundle ${last.file} still carries ${refName} (${object.slice(0, 12)})`);
  } else {
    const increment = !!last && last.ref === refName && live.length < MAX_CHAIN && (await isAncestor(gitDir, last.commit, commit));
    if (!increment && live.length) {
      for (const b of live) b.retiredAt = now.toISOString();
      log(`retired ${live.length} bundle${live.length === 1 ? '' : 's'} (${last!.ref} ${live.length >= MAX_CHAIN ? `reached ${MAX_CHAIN} increments` : 'was rewritten'}); they stay published for a while`);
    }
    // Tokens only grow, across chains too: seconds of the clock, or one more than the last.
    const token = Math.max(Math.floor(now.getTime() / 1000), ...state.bundles.map((b) => b.creationToken + 1));
    const prerequisites = increment ? [{ oid: last!.commit, comment: (await gitText(gitDir, ['log', '-1', '--format=%s', last!.commit])).slice(0, 200) }] : [];
    const header = encodeBundleHeader(prerequisites, [{ oid: object, name: refName }]);
    // Increments are thin, as git bundle makes them: deltas may be against the prerequisite.
    const input = increment ? `${object}\n^${last!.commit}\n` : `${object}\n`;
    const name = (hash: string) => `bundle-${token}-${hash}.bundle`;
    // A base bundle carries the same pack as the live base pack of the same object: copied.
    const basePack = increment ? undefined : state.packs.find((p) => p.kind === 'base' && p.retiredAt === null && p.object === object);
    const { file, size } =
      basePack && basePack.kind === 'base'
        ? await bundleFromPack(publishDir, header, basePack.file, name(basePack.hash))
        : await publishPack(gitDir, publishDir, ['--revs', ...(increment ? ['--thin'] : [])], input, { header, name });
    const b: PublishedBundle = { id: `mpgit-${token}`, file, size, createdAt: now.toISOString(), retiredAt: null, creationToken: token, ref: refName, object, commit, prerequisite: increment ? last!.commit : null };
    state.bundles.push(b);
    written.push(b);
    log(`published ${file}: ${increment ? `increment on ${last!.commit.slice(0, 12)}` : 'base bundle'}, ${refName} ${object.slice(0, 12)}, creationToken ${token}, ${humanBytes(size)}`);
  }
  await writeListFile(publishDir, state);
  return written;
}

/** Removes bundles retired longer than `retentionMs` ago (files and entries). */
export async function pruneBundles(state: OffloadState, publishDir: string, now: Date, retentionMs: number, log: (l: string) => void): Promise<string[]> {
  const removed: string[] = [];
  const keep: PublishedBundle[] = [];
  for (const b of state.bundles) {
    if (b.retiredAt !== null && now.getTime() - Date.parse(b.retiredAt) >= retentionMs) {
      await rm(join(publishDir, b.file), { force: true });
      removed.push(b.file);
      log(`removed ${b.file} (retired ${b.retiredAt})`);
    } else keep.push(b);
  }
  state.bundles = keep;
  return removed;
}

/** A bundle made of `header` and a published pack's bytes. */
async function bundleFromPack(publishDir: string, header: Buffer, packFile: string, file: string): Promise<{ file: string; size: number }> {
  const tmp = join(publishDir, `.tmp-bundle-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(tmp, header, { mode: 0o644 });
    await pipeline(createReadStream(join(publishDir, packFile)), createWriteStream(tmp, { flags: 'a' }));
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const size = (await stat(tmp)).size;
    await rename(tmp, join(publishDir, file));
    return { file, size };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function isAncestor(gitDir: string, older: string, newer: string): Promise<boolean> {
  const r = await runGit(gitDir, ['merge-base', '--is-ancestor', older, newer], { okCodes: [0, 1, 128] });
  return r.code === 0;
}

/** Writes the list file atomically (a client reads the old list or the new one). */
async function writeListFile(publishDir: string, state: OffloadState): Promise<void> {
  const path = join(publishDir, BUNDLE_LIST_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, formatBundleListFile(listEntries(state)), { mode: 0o644 });
  await rename(tmp, path);
}
