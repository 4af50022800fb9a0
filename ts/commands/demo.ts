// `mpgit demo`: creates (once) a small demo repository under a state directory and serves it
// with the daemon, printing the `git clone` line to try.

import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { runGitIn } from '../git.js';

/** The repository name clients ask for: git://HOST:PORT/demo. */
export const DEMO_NAME = 'demo';

/** Where the demo lives unless --dir says otherwise. */
export function defaultDemoDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(cache, 'mpgit', 'demo');
}

async function git(args: string[], opts: { cwd: string; input?: string }): Promise<void> {
  await runGitIn(opts.cwd, args, { input: opts.input });
}

/** The demo history as a fast-import stream: fixed authors and dates, so the ids never change. */
function demoHistory(): string {
  const files: Record<string, string>[] = [
    {
      'README.md': '# demo\n\nA repository served by `mpgit daemon`. You cloned it over git://.\n',
      'src/hello.c': '#include <stdio.h>\n\nint main(void) {\n\tputs("hello from mpgit");\n\treturn 0;\n}\n',
    },
    { Makefile: 'hello: src/hello.c\n\tcc -O2 -o $@ $<\n', '.gitignore': 'hello\n' },
    {
      'src/hello.c': '#include <stdio.h>\n\nint main(int argc, char **argv) {\n\tprintf("hello from mpgit, %s\\n", argc > 1 ? argv[1] : "world");\n\treturn 0;\n}\n',
      'docs/multipath.md': '# Multipath TCP\n\nStart the daemon with --mptcp and clone with an MPTCP-enabled client\n(e.g. `mptcpize run git clone ...`): the daemon log says how many subflows carried it.\n',
    },
    { 'README.md': '# demo\n\nA repository served by `mpgit daemon`. You cloned it over git://.\n\nBuild: `make && ./hello`\n' },
  ];
  const messages = ['Add hello', 'Add a Makefile', 'Greet by name; document multipath', 'README: how to build'];
  let s = '';
  files.forEach((f, i) => {
    const when = 1704067200 + i * 3600; // 2024-01-01, an hour apart
    s += `commit refs/heads/main\nmark :${i + 1}\nauthor mpgit demo <demo@mpgit.invalid> ${when} +0000\ncommitter mpgit demo <demo@mpgit.invalid> ${when} +0000\n`;
    s += `data ${Buffer.byteLength(messages[i]!) + 1}\n${messages[i]}\n`;
    if (i > 0) s += `from :${i}\n`;
    for (const [path, body] of Object.entries(f)) s += `M 100644 inline ${path}\ndata ${Buffer.byteLength(body)}\n${body}\n`;
    s += '\n';
  });
  const tagMessage = 'demo v1.0\n';
  s += `tag v1.0\nfrom :${files.length}\ntagger mpgit demo <demo@mpgit.invalid> 1704085200 +0000\ndata ${tagMessage.length}\n${tagMessage}\n`;
  return s;
}

/** Creates <dir>/demo.git once (built aside, then renamed into place); returns its path. */
export async function ensureDemoRepo(dir: string): Promise<string> {
  const repo = join(dir, `${DEMO_NAME}.git`);
  if (existsSync(join(repo, 'git-daemon-export-ok'))) {
    // Partial clones (--filter) of the demo work: upload-pack honours filters only when allowed.
    await git(['config', 'uploadpack.allowFilter', 'true'], { cwd: repo });
    return repo;
  }
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${DEMO_NAME}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    await git(['init', '-q', '--bare', tmp], { cwd: dir });
    await git(['symbolic-ref', 'HEAD', 'refs/heads/main'], { cwd: tmp });
    await git(['fast-import', '--quiet'], { cwd: tmp, input: demoHistory() });
    await git(['config', 'uploadpack.allowFilter', 'true'], { cwd: tmp });
    await writeFile(join(tmp, 'git-daemon-export-ok'), '');
    await rm(repo, { recursive: true, force: true }); // a half-made one from an older version
    await rename(tmp, repo);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return repo;
}

/** 127.0.0.1, and ::1 when this host has IPv6 loopback. */
function loopbacks(): string[] {
  const v6 = Object.values(networkInterfaces()).some((list) => list?.some((a) => a.family === 'IPv6' && a.address === '::1'));
  return v6 ? ['127.0.0.1', '::1'] : ['127.0.0.1'];
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .summary('serve a demo repository with the daemon and print the `git clone` line to try')
    .description(
      `Creates a small repository "${DEMO_NAME}" (once) under --dir and serves it with \`mpgit daemon\` ` +
        '(Multipath TCP when the kernel has it), on loopback unless --listen says otherwise.',
    )
    .option('--port <n>', 'TCP port (default 9418)')
    .option('--dir <dir>', 'state directory for the demo repository (default $XDG_CACHE_HOME/mpgit/demo or ~/.cache/mpgit/demo)')
    .option('--listen <addr>', 'listen address (repeatable; default 127.0.0.1 and ::1)', (v: string, p: string[] | undefined) => [...(p ?? []), v])
    .option('--no-mptcp', 'plain TCP instead of Multipath TCP')
    .addOption(new Option('--log-format <format>', 'human lines or JSON').choices(['human', 'json']).default('human'))
    .option('--quiet', 'log only errors and readiness, not every connection')
    .action(async (opts: { port?: string; dir?: string; listen?: string[]; mptcp: boolean; logFormat: 'human' | 'json'; quiet?: boolean }) => {
      // The daemon's modules load when the command runs, not with every start of the CLI.
      const { flagSettings, resolveConfig } = await import('../daemon/config.js');
      const { hostPort } = await import('../daemon/log.js');
      const { runDaemon } = await import('../daemon/run.js');
      const dir = opts.dir ?? defaultDemoDir();
      const flags = flagSettings({ ...(opts.port !== undefined ? { port: opts.port } : {}), listen: opts.listen ?? loopbacks(), mptcp: opts.mptcp, logFormat: opts.logFormat, verbose: !opts.quiet });
      const cfg = resolveConfig({}, { ...flags, basePath: dir });
      await ensureDemoRepo(dir);
      await runDaemon(cfg, {}, (d) => {
        const l = d.listeners.find((x) => !x.address.includes(':')) ?? d.listeners[0]!;
        const host = l.address === '0.0.0.0' ? '127.0.0.1' : l.address === '::' ? '::1' : l.address;
        process.stdout.write(`Serving ${join(dir, `${DEMO_NAME}.git`)}. Try:\n\n    git clone git://${hostPort(host, l.port)}/${DEMO_NAME}\n\n`);
      });
    });
}
