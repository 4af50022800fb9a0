// mpgit fetch [-q] [-v] [--mptcp] [--depth N | --unshallow] [-p|--prune] [remote]

import type { Command } from 'commander';
import { outputs } from './output.js';
import { positiveInt } from './args.js';

export function registerFetch(program: Command): void {
  program
    .command('fetch')
    .description('fetch from a git:// remote into the repository here (cloned by mpgit or git)')
    .argument('[remote]', 'remote name or git:// URL (default: the branch\'s remote, else origin)')
    .option('--mptcp', 'connect with Multipath TCP (also: GIT_ENABLE_MPTCP set to any value)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('-v, --verbose', 'report the transport (TCP or MPTCP, subflows)')
    .option('--progress', 'show progress even when stderr is not a terminal')
    .option('--depth <n>', 'deepen or shorten a shallow history to the last <n> commits of each fetched branch', positiveInt)
    .option('--unshallow', 'fetch the whole history of a shallow repository')
    .option('-p, --prune', 'delete remote-tracking refs whose branch is gone from the remote (default: remote.<name>.prune, fetch.prune)')
    .option('--no-prune', 'keep them (overrides the configuration)')
    .option('--no-packfile-uris', 'do not ask the server for packfile URIs (get everything from it)')
    .action(async (remote: string | undefined, o: { mptcp?: boolean; depth?: number; unshallow?: boolean; prune?: boolean; quiet?: boolean; verbose?: boolean; progress?: boolean; packfileUris?: boolean }) => {
      // Loaded on use: the CLI starts fast whatever command runs.
      const { fetch } = await import('../client/fetch.js');
      // git's reflog action is the command line after "git": "fetch", "fetch -q origin".
      const reflogAction = ['fetch', ...process.argv.slice(process.argv.indexOf('fetch') + 1)].join(' ');
      const r = await fetch({ cwd: process.cwd(), remote, mptcp: o.mptcp, packfileUris: o.packfileUris, prune: o.prune, depth: o.depth, unshallow: o.unshallow, reflogAction, ...outputs(o) });
      // Like git: a rejected ref update is an error exit.
      if (r.updates.some((u) => u.kind === 'rejected')) process.exitCode = 1;
    });
}
