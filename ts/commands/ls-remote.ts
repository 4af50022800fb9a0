// mpgit ls-remote [--heads] [--tags] [--refs] [--symref] [--exit-code] <url|remote> [patterns...]

import type { Command } from 'commander';
import { outputs } from './output.js';

export function registerLsRemote(program: Command): void {
  program
    .command('ls-remote')
    .description('list the refs of a git:// remote')
    .argument('<remote>', 'git://host[:port]/path, or a remote name of the repository here')
    .argument('[patterns...]', 'show only refs whose name ends with one of these (globs allowed)')
    .option('--heads', 'only refs/heads/')
    .option('-t, --tags', 'only refs/tags/')
    .option('--refs', 'leave out peeled tags and HEAD')
    .option('--symref', 'show what symbolic refs point to')
    .option('--exit-code', 'exit 2 when no ref matches')
    .option('--mptcp', 'connect with Multipath TCP (also: GIT_ENABLE_MPTCP set to any value)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('-v, --verbose', 'report the transport (TCP or MPTCP, subflows)')
    .action(async (remote: string, patterns: string[], o: { heads?: boolean; tags?: boolean; refs?: boolean; symref?: boolean; exitCode?: boolean; mptcp?: boolean; quiet?: boolean; verbose?: boolean }) => {
      // Loaded on use: the CLI starts fast whatever command runs.
      const { lsRemote } = await import('../client/ls-remote.js');
      const { lines } = await lsRemote({
        remote,
        cwd: process.cwd(),
        heads: o.heads,
        tags: o.tags,
        refsOnly: o.refs,
        symref: o.symref,
        patterns,
        mptcp: o.mptcp,
        verbose: outputs(o).verbose,
      });
      if (!o.quiet && lines.length) process.stdout.write(`${lines.join('\n')}\n`);
      if (o.exitCode && !lines.length) process.exitCode = 2;
    });
}
