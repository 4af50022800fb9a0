// mpgit clone [--mptcp] [--depth N] [--branch B] [--bare] [-q] [-v] git://host[:port]/path [dir]
// mpgit clone --resume DIR: finish a clone interrupted while downloading packfile URIs

import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { positiveInt } from './args.js';
import { MpgitError } from '../errors.js';
import { outputs } from './output.js';

export function registerClone(program: Command): void {
  program
    .command('clone')
    .description('clone a repository over git:// (protocol v2, MPTCP with --mptcp or GIT_ENABLE_MPTCP)')
    .argument('<url>', 'git://host[:port]/path')
    .argument('[dir]', 'directory to clone into (default: from the URL)')
    .option('--mptcp', 'connect with Multipath TCP (also: GIT_ENABLE_MPTCP set to any value)')
    .option('--depth <n>', 'shallow clone: only the last <n> commits (implies a single branch)', positiveInt)
    .option('-b, --branch <name>', 'check out <name> (a branch, or a tag as a detached HEAD)')
    .option('--bare', 'make a bare repository')
    .option('-q, --quiet', 'print nothing but errors')
    .option('-v, --verbose', 'report the transport (TCP or MPTCP, subflows)')
    .option('--progress', 'show progress even when stderr is not a terminal')
    .option('--no-packfile-uris', 'do not ask the server for packfile URIs (get everything from it)')
    .option('--bundle-uri <uri>', 'seed the clone from a bundle or bundle list (http, https or file) before fetching the rest')
    .option('--no-bundle-uri', 'do not use the bundles the server advertises (as transfer.bundleURI=false)')
    .option('--resume', 'finish the interrupted clone in <url> (given as its directory), continuing its downloads')
    .action(async (url: string, dir: string | undefined, o: { mptcp?: boolean; depth?: number; branch?: string; bare?: boolean; quiet?: boolean; verbose?: boolean; progress?: boolean; packfileUris?: boolean; bundleUri?: string | false; resume?: boolean }) => {
      // Loaded on use: the CLI starts fast whatever command runs.
      const { clone } = await import('../client/clone.js');
      const out = outputs(o);
      if (o.resume) {
        // `mpgit clone --resume DIR`: the URL and the options come from the clone's record.
        if (dir !== undefined) throw new MpgitError('MPGIT_CONFIG', 'with --resume, give only the directory of the interrupted clone', 'usage: mpgit clone --resume DIR');
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
        await clone({ url, dir, mptcp: o.mptcp, depth: o.depth, branch: o.branch, bare: o.bare, packfileUris: o.packfileUris, bundleUri: o.bundleUri || undefined, bundleUris: o.bundleUri === false ? false : undefined, ...out, onTempDir: (d) => (tmp = d) });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
