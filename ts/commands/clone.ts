// mpgit clone [options] git://host[:port]/path [dir], with git clone's flags
// mpgit clone --resume DIR: finish a clone interrupted while downloading packfile URIs

import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { positiveInt } from './args.js';
import { MpgitError, UsageError } from '../errors.js';
import { outputs } from './output.js';

interface CloneCliOptions {
  mptcp?: boolean;
  depth?: number;
  branch?: string;
  bare?: boolean;
  mirror?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  progress?: boolean;
  packfileUris?: boolean;
  /** --bundle-uri URL, or false for --no-bundle-uri. */
  bundleUri?: string | false;
  resume?: boolean;
  checkout?: boolean;
  singleBranch?: boolean;
  origin?: string;
  tags?: boolean;
  filter?: string;
  recurseSubmodules?: boolean;
}

export function registerClone(program: Command): void {
  program
    .command('clone')
    .description('clone a repository over git:// (protocol v2, MPTCP with --mptcp or GIT_ENABLE_MPTCP)')
    .argument('<url>', 'git://host[:port]/path (url.<base>.insteadOf applies)')
    .argument('[dir]', 'directory to clone into (default: from the URL)')
    .option('--mptcp', 'connect with Multipath TCP (also: GIT_ENABLE_MPTCP set to any value)')
    .option('--depth <n>', 'shallow clone: only the last <n> commits (implies --single-branch)', positiveInt)
    .option('-b, --branch <name>', 'check out <name> (a branch, or a tag as a detached HEAD)')
    .option('--bare', 'make a bare repository')
    .option('--mirror', 'a bare mirror: every ref of the remote, fetched again by `fetch` (remote.<name>.mirror)')
    .option('-n, --no-checkout', 'do not check out HEAD (no work tree files, no index)')
    .option('--single-branch', 'fetch only one branch (--branch, else the remote HEAD), and the tags on it')
    .option('--no-single-branch', 'fetch every branch (also with --depth)')
    .option('-o, --origin <name>', 'name the remote <name> instead of origin (or clone.defaultRemoteName)')
    .option('--no-tags', 'fetch no tags, now or later (remote.<name>.tagOpt=--no-tags)')
    .option('--filter <filter-spec>', 'partial clone: blob:none, blob:limit=<n>[kmg] or tree:<depth>')
    .option('--recurse-submodules', 'clone the submodules too (git:// ones with mpgit, others with git)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('-v, --verbose', 'report the transport (TCP or MPTCP, subflows)')
    .option('--progress', 'show progress even when stderr is not a terminal')
    .option('--no-packfile-uris', 'do not ask the server for packfile URIs (get everything from it)')
    .option('--bundle-uri <uri>', 'seed the clone from a bundle or bundle list (http, https or file) before fetching the rest')
    .option('--no-bundle-uri', 'do not use the bundles the server advertises (as transfer.bundleURI=false)')
    .option('--resume', 'finish the interrupted clone in <url> (given as its directory), continuing its downloads')
    .action(async (url: string, dir: string | undefined, o: CloneCliOptions) => {
      // Loaded on use: the CLI starts fast whatever command runs.
      const { clone } = await import('../client/clone.js');
      const out = outputs(o);
      if (o.resume) {
        // `mpgit clone --resume DIR`: the URL and the options come from the clone's record.
        if (dir !== undefined) throw new UsageError('with --resume, give only the directory of the interrupted clone');
        const { readResumeRecord } = await import('../client/resume.js');
        const rec = readResumeRecord<{ bare: boolean }>(resolve(url));
        if (!rec) throw new MpgitError('MPGIT_RESUME', `${url} holds no interrupted clone to resume`, 'start the clone again: mpgit clone URL DIR');
        dir = url;
        url = rec.url;
        o.bare = rec.clone.bare;
      }
      let tmp: string | null = null;
      // An interrupted clone leaves nothing behind either.
      const onSignal = (sig: NodeJS.Signals) => {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
        process.exit(sig === 'SIGINT' ? 130 : 143);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const r = await clone({
          url,
          dir,
          mptcp: o.mptcp,
          depth: o.depth,
          branch: o.branch,
          bare: o.bare,
          mirror: o.mirror,
          checkout: o.checkout,
          singleBranch: o.singleBranch,
          origin: o.origin,
          tags: o.tags,
          filter: o.filter,
          recurseSubmodules: o.recurseSubmodules,
          packfileUris: o.packfileUris,
          bundleUri: o.bundleUri || undefined,
          bundleUris: o.bundleUri === false ? false : undefined,
          ...out,
          onTempDir: (d) => (tmp = d),
        });
        if (r.detached && r.head) await adviseDetached(r.head);
        if (o.recurseSubmodules && o.checkout !== false && !o.bare && !o.mirror) {
          const { cloneSubmodules } = await import('../client/submodules.js');
          await cloneSubmodules(r.dir, { mptcp: o.mptcp, quiet: !!o.quiet, say: out.say });
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

/** git's advice after checking out a detached HEAD (printed even with -q, as git does). */
async function adviseDetached(head: string): Promise<void> {
  const { readConfig } = await import('../config/read.js');
  if (readConfig(null).config.getBool('advice.detachedHead') === false) return;
  process.stderr.write(`Note: switching to '${head}'.

You are in 'detached HEAD' state. You can look around, make experimental
changes and commit them, and you can discard any commits you make in this
state without impacting any branches by switching back to a branch.

If you want to create a new branch to retain commits you create, you may
do so (now or later) by using -c with the switch command. Example:

  git switch -c <new-branch-name>

Or undo this operation with:

  git switch -

Turn off this advice by setting config variable advice.detachedHead to false

`);
}
