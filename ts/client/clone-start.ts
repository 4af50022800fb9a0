// Where a clone starts from: the URL (as given, for the config; rewritten by insteadOf, to
// connect), the target and the name messages give it, the record an interrupted clone left
// there, and the clone's shape (the record's, when resuming: a clone finishes as it began).

import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { MpgitError } from '../errors.js';
import type { PackfileUri } from '../protocol/packfile-uris.js';
import type { RemoteRef } from '../protocol/wire.js';
import type { GitConfig } from '../repo/config.js';
import { readConfig } from '../config/read.js';
import { cloneFlags, cloneShape, type CloneFlags, type CloneOptions, type CloneShape } from './clone-options.js';
import { readResumeRecord, resumeDir, saveResumeRecord, type ResumeRecord } from './resume.js';
import { defaultCloneDir, parseRemoteUrl, type GitUrl } from './url.js';

/** What an interrupted clone keeps (with its packfile URIs) to finish without the server. */
export interface CloneRecord {
  refs: RemoteRef[];
  branch?: string;
  depth?: number;
  bare: boolean;
  flags?: CloneFlags;
  shallow: string[];
  unshallow: string[];
  /** Saved while bundles download: the next run starts over, resuming those downloads. */
  bundlePhase?: boolean;
  bundleUri?: string;
}

export interface CloneStart {
  /** System, global and -c configuration: url.<base>.insteadOf, clone.defaultRemoteName... */
  config: GitConfig;
  /** The URL to connect to; `url.url` is the one given, which the config records. */
  url: GitUrl;
  /** The target directory (absolute), and its name in messages (as the user gave it). */
  target: string;
  shown: string;
  /** The record an interrupted clone left in the target, whatever its phase. */
  record: ResumeRecord<CloneRecord> | null;
  /** That record when it resumes URI downloads (one left in the bundle phase starts over). */
  resume: ResumeRecord<CloneRecord> | null;
  branch: string | undefined;
  depth: number | undefined;
  bundleUri: string | undefined;
  shape: CloneShape;
}

/** Checks the options and the target's record against each other; touches nothing on disk. */
export function startClone(opts: CloneOptions): CloneStart {
  const config = readConfig(null).config;
  const url = { ...parseRemoteUrl(opts.url, config), url: opts.url };
  if (opts.depth !== undefined && (!Number.isInteger(opts.depth) || opts.depth < 1)) {
    throw new MpgitError('MPGIT_CONFIG', `depth ${opts.depth} is not a positive number`, 'pass --depth 1 or more');
  }
  const target = resolve(opts.dir ?? defaultCloneDir(url, !!(opts.bare || opts.mirror)));
  const shown = opts.dir ?? basename(target);
  // A clone interrupted while downloading packfile URIs continues from what it kept there; one
  // interrupted while downloading bundles starts over, and its downloads resume.
  const record = existsSync(target) ? readResumeRecord<CloneRecord>(target) : null;
  const resume = record && !record.clone.bundlePhase ? record : null;
  if (record && record.url !== url.url) {
    throw new MpgitError('MPGIT_EXISTS', `'${shown}' holds an interrupted clone of ${record.url}, not of ${url.url}`, `resume it with \`mpgit clone --resume ${shown}\`, or choose another directory`);
  }
  if (record && readdirSync(target).some((n) => join(target, n) !== resumeDir(target))) {
    throw new MpgitError('MPGIT_EXISTS', `'${shown}' holds an interrupted clone and other files`, 'remove the other files, or choose another directory');
  }
  const bundleUri = record ? record.clone.bundleUri : opts.bundleUri;
  if (bundleUri && opts.depth !== undefined) throw new MpgitError('MPGIT_CONFIG', "options '--bundle-uri' and '--depth' cannot be used together", 'drop one of them');
  const shape = cloneShape(record ? { ...record.clone.flags, bare: record.clone.bare, depth: record.clone.depth } : opts, config);
  const branch = record ? record.clone.branch : opts.branch;
  const depth = record ? record.clone.depth : opts.depth;
  return { config, url, target, shown, record, resume, branch, depth, bundleUri, shape };
}

/** Records how to finish the clone without the server (its refs, shape, the URIs left to fetch). */
export function saveCloneRecord(
  start: CloneStart,
  opts: CloneOptions,
  refs: RemoteRef[],
  uris: PackfileUri[],
  inline: { packPath: string; idxPath: string; checksum: string } | null,
  rest: Partial<CloneRecord>,
): void {
  const { branch, depth } = start;
  const clone: CloneRecord = { refs, branch, depth, bare: start.shape.bare, flags: cloneFlags(opts), shallow: [], unshallow: [], ...rest };
  saveResumeRecord<CloneRecord>(start.target, { version: 1, url: start.url.url, uris, inlinePack: inline?.checksum ?? null, clone }, inline);
}
