// Small deterministic repositories for tests, built with `git fast-import` (fast, no clock).

import { git, runOk } from './proc.js';
import { mkdir } from 'node:fs/promises';

export interface RepoSpec {
  /** Number of commits on main (default 3). */
  commits?: number;
  /** Files touched per commit (default 4). */
  filesPerCommit?: number;
  /** Also write an executable file, a symlink and a nested directory (default true). */
  variety?: boolean;
  /** Extra branch and annotated tag (default true). */
  refs?: boolean;
}

/** An empty bare repository at `dir` (created with its parents), its branch main. */
export async function initBare(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await git(['init', '-q', '--bare', '-b', 'main', dir]);
}

/** Creates a bare repository at `dir` with deterministic content; returns its HEAD commit id. */
export async function makeRepo(dir: string, spec: RepoSpec = {}): Promise<string> {
  const commits = spec.commits ?? 3;
  const files = spec.filesPerCommit ?? 4;
  await initBare(dir);
  let stream = '';
  let mark = 0;
  for (let c = 0; c < commits; c++) {
    stream += `commit refs/heads/main\nmark :${++mark}\ncommitter Test <test@example.com> ${1700000000 + c * 60} +0000\n`;
    const msg = `commit ${c}\n`;
    stream += `data ${Buffer.byteLength(msg)}\n${msg}`;
    for (let f = 0; f < files; f++) {
      const body = Array.from({ length: 40 }, (_, i) => `file ${f} line ${i} rev ${i % 7 === c % 7 ? c : 0}`).join('\n') + '\n';
      stream += `M 100644 inline src/dir${f % 3}/file${f}.txt\ndata ${Buffer.byteLength(body)}\n${body}`;
    }
    if (spec.variety ?? true) {
      const script = `#!/bin/sh\necho run ${c}\n`;
      stream += `M 100755 inline bin/run.sh\ndata ${Buffer.byteLength(script)}\n${script}`;
      stream += `M 120000 inline link-to-readme\ndata 9\nREADME.md`;
      stream += '\n';
      const readme = `# demo\nrevision ${c}\n`;
      stream += `M 100644 inline README.md\ndata ${Buffer.byteLength(readme)}\n${readme}`;
    }
    stream += '\n';
  }
  if (spec.refs ?? true) {
    stream += `reset refs/heads/topic\nfrom :${Math.max(1, mark - 1)}\n\n`;
    const tagMsg = 'release 1\n';
    stream += `tag v1.0\nfrom :${mark}\ntagger Test <test@example.com> 1700009999 +0000\ndata ${tagMsg.length}\n${tagMsg}\n`;
  }
  await runOk('git', ['fast-import', '--quiet'], { cwd: dir, input: stream });
  const head = await git(['rev-parse', 'refs/heads/main'], { cwd: dir });
  return head.stdout.trim();
}

/**
 * A bare repository whose pack is about `mb` MB of incompressible (but deterministic) blobs, in
 * two commits: for tests that need a transfer to last a while. The blobs are marked as too big
 * to delta (core.bigFileThreshold), so serving them costs the server no delta search.
 */
export async function makeBulkRepo(dir: string, mb: number): Promise<string> {
  const { createCipheriv } = await import('node:crypto');
  const blobBytes = 1 << 20;
  const stream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 1)); // deterministic noise
  const parts: Buffer[] = [];
  const half = Math.max(1, Math.round(mb / 2));
  for (let c = 0; c < 2; c++) {
    parts.push(Buffer.from(`commit refs/heads/main\ncommitter Test <test@example.com> ${1700000000 + c} +0000\ndata 5\nbulk\n`));
    for (let i = c * half; i < (c === 0 ? half : Math.max(half + 1, mb)); i++) {
      const blob = stream.update(Buffer.alloc(blobBytes));
      parts.push(Buffer.from(`M 100644 inline data/blob${i}.bin\ndata ${blob.length}\n`), blob, Buffer.from('\n'));
    }
    const readme = `bulk ${c}\n`;
    parts.push(Buffer.from(`M 100644 inline README.md\ndata ${readme.length}\n${readme}\n\n`));
  }
  await initBare(dir);
  await git(['config', 'core.bigFileThreshold', '256k'], { cwd: dir });
  await runOk('git', ['fast-import', '--quiet'], { cwd: dir, input: Buffer.concat(parts) });
  return (await git(['rev-parse', 'refs/heads/main'], { cwd: dir })).stdout.trim();
}
