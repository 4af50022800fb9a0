// Repositories and servers for the packfile-URI tests: a fully packed repository with big
// incompressible blobs (what offload is for), and `mpgit daemon` serving a base path.

import { randomBytes } from 'node:crypto';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { RESUME_DIR } from '../../ts/client/resume.js';
import { git, run, runOk, tempDir, type RunResult } from './proc.js';
import { startDaemon, type MpgitDaemonHandle } from './daemon.js';
import { startNginx, type Nginx } from './nginx.js';
import { mpgit } from './proc.js';
import { initBare, type RepoSpec } from './repo.js';

export interface BigRepoSpec extends Pick<RepoSpec, 'commits'> {
  /** Big blobs (default 6), spread over the commits. */
  big?: number;
  /** Size of each big blob (default 200 KB). */
  bigBytes?: number;
  /** Leave the objects loose instead of `git repack -ad` (default false: fully packed). */
  loose?: boolean;
}

/**
 * A bare repository at `dir`: small text files edited in every commit, `big` random blobs under
 * big/, a branch `topic` one commit behind, an annotated tag v1 on main. Returns main's commit.
 */
export async function bigRepo(dir: string, spec: BigRepoSpec = {}): Promise<string> {
  const big = spec.big ?? 6;
  const commits = spec.commits ?? 3;
  const bigBytes = spec.bigBytes ?? 200_000;
  await initBare(dir);
  const parts: Buffer[] = [];
  for (let c = 0; c < commits; c++) {
    parts.push(Buffer.from(`commit refs/heads/main\nmark :${c + 1}\ncommitter T <t@example.com> ${1700000000 + c * 60} +0000\ndata 3\nc${c}\n`));
    for (let f = 0; f < 5; f++) {
      const body = Buffer.from(Array.from({ length: 60 }, (_, i) => `file ${f} line ${i} rev ${i % 5 === c % 5 ? c : 0}`).join('\n') + '\n');
      parts.push(Buffer.from(`M 100644 inline small/f${f}.txt\ndata ${body.length}\n`), body, Buffer.from('\n'));
    }
    for (let b = c; b < big; b += commits) {
      const body = randomBytes(bigBytes);
      parts.push(Buffer.from(`M 100644 inline big/b${b}.bin\ndata ${body.length}\n`), body, Buffer.from('\n'));
    }
    parts.push(Buffer.from('\n'));
  }
  parts.push(Buffer.from(`reset refs/heads/topic\nfrom :${Math.max(1, commits - 1)}\n\n`));
  parts.push(Buffer.from('tag v1\nfrom refs/heads/main\ntagger T <t@example.com> 1700009999 +0000\ndata 3\nv1\n\n'));
  await runOk('git', ['fast-import', '--quiet'], { cwd: dir, input: Buffer.concat(parts) });
  if (!spec.loose) await git(['repack', '-adq'], { cwd: dir });
  else {
    // fast-import writes a pack: explode it into loose objects (git's blobPackfileUri needs them).
    const packDir = join(dir, 'objects', 'pack');
    for (const name of await readdir(packDir)) {
      if (!name.endsWith('.pack')) continue;
      const moved = join(dir, name);
      await rename(join(packDir, name), moved);
      await rm(join(packDir, name.replace(/\.pack$/, '.idx')), { force: true });
      await runOk('sh', ['-c', `git unpack-objects -q < '${moved}'`], { cwd: dir });
      await rm(moved);
    }
  }
  return (await git(['rev-parse', 'refs/heads/main'], { cwd: dir })).stdout.trim();
}

/** Adds a commit on main: one small file changed, and optionally a new big blob. */
export async function commitUpstream(dir: string, opts: { bigBytes?: number; time?: number } = {}): Promise<string> {
  const t = opts.time ?? 1700100000;
  const parts = [Buffer.from(`commit refs/heads/main\ncommitter T <t@example.com> ${t} +0000\ndata 7\nupdate\nfrom refs/heads/main^0\n`)];
  const small = Buffer.from(`changed at ${t}\n`);
  parts.push(Buffer.from(`M 100644 inline small/f0.txt\ndata ${small.length}\n`), small, Buffer.from('\n'));
  if (opts.bigBytes) {
    const body = randomBytes(opts.bigBytes);
    parts.push(Buffer.from(`M 100644 inline big/new-${t}.bin\ndata ${body.length}\n`), body, Buffer.from('\n'));
  }
  parts.push(Buffer.from('\n'));
  await runOk('git', ['fast-import', '--quiet'], { cwd: dir, input: Buffer.concat(parts) });
  return (await git(['rev-parse', 'refs/heads/main'], { cwd: dir })).stdout.trim();
}

export type MpgitDaemon = MpgitDaemonHandle;

/** Starts `mpgit daemon --export-all --base-path=<base>` on a free loopback port (ready once it says so). */
export function mpgitDaemon(t: ExecutionContext, base: string, extra: string[] = []): Promise<MpgitDaemon> {
  return startDaemon(t, [`--base-path=${base}`, '--export-all', '--reuseaddr', ...extra]);
}

/** A fresh directory for a server's repositories, and one for the published packs. */
export async function offloadDirs(t: ExecutionContext): Promise<{ base: string; pub: string; work: string }> {
  const root = await tempDir(t, 'mpgit-offload-');
  const base = join(root, 'srv');
  const pub = join(root, 'pub');
  const work = join(root, 'work');
  await runOk('mkdir', ['-p', base, pub, work]);
  return { base, pub, work };
}

export interface OffloadedRepo {
  base: string;
  pub: string;
  work: string;
  repo: string;
  /** main's commit. */
  head: string;
  nginx: Nginx;
  /** Runs `mpgit offload` on the repository, publishing into `pub` under nginx's URL; throws on failure. */
  offload(args: string[]): Promise<{ stdout: string; stderr: string }>;
}

/**
 * A big repository (`bigRepo`) under a fresh base path, nginx serving the publish directory,
 * and `mpgit offload` bound to both. `prepare` changes the repository before nginx starts.
 */
export async function offloadedRepo(t: ExecutionContext, spec: BigRepoSpec = {}, prepare?: (repo: string) => Promise<void>): Promise<OffloadedRepo> {
  const { base, pub, work } = await offloadDirs(t);
  const repo = join(base, 'repo.git');
  const head = await bigRepo(repo, spec);
  await prepare?.(repo);
  const nginx = await startNginx(t, pub);
  const offload = async (args: string[]) => {
    const r = await mpgit(['offload', repo, '--publish', pub, '--base-url', `${nginx.baseUrl}/`, ...args]);
    if (r.code !== 0) throw new Error(`mpgit offload failed: ${r.stderr}`);
    return r;
  };
  return { base, pub, work, repo, head, nginx, offload };
}

/**
 * A fetch after a commit upstream, as a user sees it: the commit (with a big blob when
 * `bigBytes`), published by `mpgit offload --refresh` when asked, then `fetch` in the clone
 * `dir` succeeds, origin/main is the new commit, and nginx served `uris` more requests.
 */
export async function fetchAfterCommit(
  t: ExecutionContext,
  s: { repo: string; pub: string; nginx: Nginx },
  dir: string,
  o: { bigBytes?: number; time?: number; refresh?: boolean; fetch: () => Promise<RunResult>; uris: number; why: string },
): Promise<void> {
  const head = await commitUpstream(s.repo, { bigBytes: o.bigBytes, time: o.time });
  if (o.refresh) {
    const re = await mpgit(['offload', s.repo, '--publish', s.pub, '--base-url', `${s.nginx.baseUrl}/`, '--min-size', '100k', '--refresh']);
    t.is(re.code, 0, re.stderr);
  }
  const before = (await s.nginx.accessLog()).length;
  const f = await o.fetch();
  t.is(f.code, 0, f.stderr);
  t.is((await git(['rev-parse', 'origin/main'], { cwd: dir })).stdout.trim(), head);
  t.is((await s.nginx.accessLog()).length, before + o.uris, o.why);
}

/** `git fsck --strict` is clean (dangling objects aside). */
export async function fsckClean(t: ExecutionContext, dir: string): Promise<void> {
  const f = await run('git', ['fsck', '--strict', '--no-dangling'], { cwd: dir });
  t.is(f.code, 0, f.stderr);
  t.is(f.stderr.replace(/^Checking.*\n?/gm, ''), '');
}

/** A finished clone: fsck and status clean, the server's branches and tags, no resume state left. */
export async function checkClone(t: ExecutionContext, dir: string, repo: string): Promise<void> {
  await fsckClean(t, dir);
  t.is((await git(['status', '--porcelain'], { cwd: dir })).stdout, '');
  await sameRefs(t, dir, repo);
  t.false(existsSync(join(dir, RESUME_DIR)), 'no resume state left after a finished clone');
}

/** The clone's branches (remote-tracking, or its own when bare) and tags are the server's. */
export async function sameRefs(t: ExecutionContext, clone: string, repo: string): Promise<void> {
  const refs = async (cwd: string) => (await git(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads', 'refs/remotes/origin', 'refs/tags'], { cwd })).stdout;
  const norm = (s: string) => [...new Set(s.split('\n').filter((l) => l && !l.endsWith('/HEAD')).map((l) => l.replace('refs/remotes/origin/', 'refs/heads/')))].sort().join('\n');
  t.is(norm(await refs(clone)), norm(await refs(repo)));
}
