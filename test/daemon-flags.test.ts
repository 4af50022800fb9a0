// Every git daemon option is accepted by mpgit daemon (docs/git-daemon-options.md), and
// --user-path means what it means to git: alone it turns user paths on, =DIR names the place.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeRepo } from './helpers/repo.js';
import { freePort, MPGIT, run, start, tempDir } from './helpers/proc.js';
import { READY_RE } from './helpers/daemon.js';

/** Starts mpgit daemon with `args` on a free port; resolves once a git ls-remote through it works. */
async function servesWith(t: Parameters<Parameters<typeof test>[1]>[0], base: string, args: string[], repo = 'up.git'): Promise<string> {
  const port = await freePort();
  const cache = await tempDir(t, 'mpgit-cache-');
  const d = start(t, process.execPath, [MPGIT, 'daemon', `--port=${port}`, `--cache-dir=${cache}`, ...args]);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await run('git', ['ls-remote', `git://127.0.0.1:${port}/${repo}`], { timeoutMs: 10_000 });
    if (r.code === 0) {
      d.kill('SIGKILL');
      return d.output();
    }
    if (d.child.exitCode !== null || Date.now() > deadline) throw new Error(`mpgit daemon ${args.join(' ')}: not serving (${r.stderr.trim()}); its output:\n${d.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('mpgit daemon accepts every git daemon option', async (t) => {
  const base = await tempDir(t);
  await makeRepo(join(base, 'up.git'));
  const dir = await tempDir(t);
  const docs = readFileSync(new URL('../docs/git-daemon-options.md', import.meta.url), 'utf8');
  // Each git daemon option with what it needs around it (the served repository: base/up.git).
  const served = [`--base-path=${base}`, '--export-all', '--listen=127.0.0.1'];
  const cases: Record<string, string[]> = {
    // As git, --strict-paths wants the allow-list to name the repository.
    '--strict-paths': [...served, '--strict-paths', join(base, 'up.git')],
    '--base-path=<path>': served,
    '--base-path-relaxed': [...served, '--base-path-relaxed'],
    '--interpolated-path=<template>': ['--export-all', '--listen=127.0.0.1', `--interpolated-path=${base}%D`],
    '--export-all': served,
    '--listen=<host_or_ipaddr>': served,
    '--port=<n>': served,
    '--init-timeout=<n>': [...served, '--init-timeout=5'],
    '--timeout=<n>': [...served, '--timeout=5'],
    '--max-connections=<n>': [...served, '--max-connections=3'],
    '--syslog': [...served, '--syslog'],
    '--log-destination=<destination>': [...served, '--log-destination=none'],
    '--user-path': [...served, '--user-path'],
    '--user-path=<path>': [...served, '--user-path=public_git'],
    '--verbose': [...served, '--verbose'],
    '--reuseaddr': [...served, '--reuseaddr'],
    '--pid-file=<file>': [...served, `--pid-file=${join(dir, 'pid')}`],
    '--user=<user>': [...served, '--user=root'],
    '--group=<group>': [...served, '--user=root', '--group=root'],
    '--enable=<service>': [...served, '--enable=receive-pack'],
    '--disable=<service>': [...served, '--disable=upload-archive'],
    '--allow-override=<service>': [...served, '--allow-override=upload-archive'],
    '--forbid-override=<service>': [...served, '--forbid-override=receive-pack'],
    '--informative-errors': [...served, '--informative-errors'],
    '--no-informative-errors': [...served, '--no-informative-errors'],
    '--access-hook=<path>': [...served, '--access-hook=/bin/true'],
    '<directory>...': [...served, base],
  };
  for (const [option, args] of Object.entries(cases)) {
    t.true(docs.includes(`| \`${option}\``), `${option} is in the table`);
    const out = await servesWith(t, base, args);
    t.notRegex(out, /unknown option|usage:/, option);
  }
  // --detach returns once bound; the background daemon serves until killed.
  const pidFile = join(dir, 'detached.pid');
  const port = await freePort();
  const r = await run(process.execPath, [MPGIT, 'daemon', '--detach', `--pid-file=${pidFile}`, `--port=${port}`, `--cache-dir=${dir}`, ...served]);
  t.is(r.code, 0, r.stderr);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  });
  t.is((await run('git', ['ls-remote', `git://127.0.0.1:${port}/up.git`])).code, 0);
  // --inetd: one connection on stdin/stdout (an empty one: the daemon ends without a usage error).
  const inetd = await run(process.execPath, [MPGIT, 'daemon', '--inetd', ...served.slice(0, 2)]);
  t.not(inetd.code, 129, inetd.stderr);
  t.true(docs.includes('| `--inetd`') && docs.includes('| `--detach`'));
});

test('--user-path alone turns user paths on and leaves the next word an argument; --user-path=DIR names the directory', async (t) => {
  const base = await tempDir(t);
  await makeRepo(join(base, 'up.git'));
  const ask = async (args: string[]) => {
    const port = await freePort();
    const d = start(t, process.execPath, [MPGIT, 'daemon', '--verbose', '--informative-errors', '--export-all', '--listen=127.0.0.1', `--port=${port}`, `--cache-dir=${await tempDir(t)}`, ...args]);
    await d.waitFor(READY_RE);
    await run('git', ['ls-remote', `git://127.0.0.1:${port}/~root/nope.git`]);
    await d.waitFor(/Disconnected|refused|not allowed|directory list/);
    d.kill('SIGKILL');
    return d.output();
  };
  // Alone, followed by a directory: the directory is the allow-list, not the user path.
  const alone = await ask(['--user-path', base]);
  t.notRegex(alone, /User-path not allowed/);
  // The home directory itself was tried (and is outside the allow-list), not ~root/<base>.
  t.regex(alone, /'\/root\/nope\.git[^']*': not in directory list|'\/root\/nope\.git'/);
  const named = await ask(['--user-path=public_git', base]);
  t.notRegex(named, /User-path not allowed/);
  t.regex(named, /\/root\/public_git\/nope\.git/);
  const off = await ask([base]);
  t.regex(off, /User-path not allowed/);
});
