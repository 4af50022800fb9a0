// Stock `git daemon` as a server for client tests: plain, forced to answer protocol v0 (as an
// old server would), or under MPTCP (mptcpize). Killed when the test ends.

import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { freePort, git, runOk, start, tempDir, type Running } from './proc.js';

export interface GitDaemon {
  port: number;
  url(path: string): string;
  proc: Running;
}

export interface GitDaemonOptions {
  /** Strip GIT_PROTOCOL before upload-pack runs, so it answers v0 to a v2 request. */
  v0?: boolean;
  /** Run under mptcpize: the daemon's sockets become MPTCP. */
  mptcp?: boolean;
}

/** Starts `git daemon --export-all --base-path=<base>` on a free loopback port. */
export async function gitDaemon(t: ExecutionContext, base: string, opts: GitDaemonOptions = {}): Promise<GitDaemon> {
  // A port found free may be taken by a parallel test before git daemon binds it (git then
  // exits at once): try another port, a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await gitDaemonOn(t, await freePort(), base, opts);
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

async function gitDaemonOn(t: ExecutionContext, port: number, base: string, opts: GitDaemonOptions): Promise<GitDaemon> {
  const execPath = (await git(['--exec-path'])).stdout.trim();
  const args = [`--base-path=${base}`, '--export-all', '--reuseaddr', '--verbose', '--listen=127.0.0.1', `--port=${port}`];
  let cmd = join(execPath, 'git-daemon');
  let argv = args;
  const env: NodeJS.ProcessEnv = {};
  if (opts.v0) {
    // git daemon runs "git upload-pack" through PATH: a wrapper first in PATH drops the
    // client's version=2, which is exactly what a server without v2 does.
    const bin = await tempDir(t, 'mpgit-v0bin-');
    const realGit = (await runOk('sh', ['-c', 'command -v git'])).stdout.trim();
    const wrapper = join(bin, 'git');
    await writeFile(wrapper, `#!/bin/sh\nunset GIT_PROTOCOL\nexec ${realGit} "$@"\n`);
    await chmod(wrapper, 0o755);
    env.PATH = `${bin}:${process.env.PATH}`;
  }
  if (opts.mptcp) {
    argv = ['run', cmd, ...args];
    cmd = 'mptcpize';
  }
  const proc = start(t, cmd, argv, { env });
  await proc.waitFor(/Ready to rumble/);
  return { port, url: (path) => `git://127.0.0.1:${port}/${path.replace(/^\//, '')}`, proc };
}
