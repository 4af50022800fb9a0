// `mpgit offload REPO --publish DIR --base-url URL (--min-size SIZE | --base REF [--bundles]) [--refresh]`:
// prepares packfile-URI offload for a repository. Packs go to DIR (served by any HTTP server at
// URL); the state goes into the repository, where `mpgit daemon` finds it on its own.

import type { Command } from 'commander';
import { ConfigError } from '../errors.js';
import { humanBytes } from '../progress.js';

interface Opts {
  publish: string;
  baseUrl: string;
  minSize?: string;
  base?: string;
  refresh?: boolean;
  bundles?: boolean;
  quiet?: boolean;
}

export function registerOffload(program: Command): void {
  program
    .command('offload')
    .description('publish packs of a repository for packfile-URI offload (served by HTTP, named by `mpgit daemon`)')
    .argument('<repo>', 'the repository (bare or not)')
    .requiredOption('--publish <dir>', 'directory the HTTP server serves; packs are written there as pack-<checksum>.pack')
    .requiredOption('--base-url <url>', 'URL under which <dir> is served (http or https)')
    .option('--min-size <size>', 'blob mode: offload every blob of at least this size (e.g. 1m)')
    .option('--base <ref>', 'base-pack mode: offload everything reachable from this ref or commit')
    .option('--refresh', 'publish what changed since the last run (new blobs, or the base ref\'s new target)')
    .option('--bundles', 'base-pack mode: publish bundles too (a base bundle, then increments), advertised by `mpgit daemon` with bundle-uri')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (repo: string, opts: Opts) => {
      if ((opts.minSize === undefined) === (opts.base === undefined)) {
        throw new ConfigError('give exactly one of --min-size SIZE (blob mode) and --base REF (base-pack mode)', 'usage: mpgit offload REPO --publish DIR --base-url URL (--min-size SIZE | --base REF) [--refresh]');
      }
      // Loaded when the command runs, not with every start of the CLI (zod, pack-objects plumbing).
      const { packUri } = await import('../offload/state.js');
      const { parseSize, prepareOffload } = await import('../offload/publish.js');
      const log = opts.quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
      const r = await prepareOffload({
        repo,
        publishDir: opts.publish,
        baseUrl: opts.baseUrl,
        minSize: opts.minSize !== undefined ? parseSize(opts.minSize) : undefined,
        base: opts.base,
        refresh: !!opts.refresh,
        bundles: !!opts.bundles,
        log,
      });
      if (opts.quiet) return;
      const live = r.state.packs.filter((p) => p.kind === 'config' || p.retiredAt === null);
      const bytes = live.reduce((a, p) => a + (p.kind === 'config' ? 0 : p.size), 0);
      process.stdout.write(`offload (${r.state.mode} mode) ready in ${r.gitDir}: ${live.length} pack${live.length === 1 ? '' : 's'} named to clients, ${humanBytes(bytes)} published\n`);
      for (const p of live) process.stdout.write(`  ${p.hash} ${packUri(r.state, p)}\n`);
      if (r.state.bundlesOn) {
        const { bundleUri, BUNDLE_LIST_FILE } = await import('../offload/bundles.js');
        const { liveBundles } = await import('../offload/state.js');
        const bundles = liveBundles(r.state);
        process.stdout.write(`bundles (creationToken heuristic, list at ${r.state.baseUrl.replace(/\/+$/, '')}/${BUNDLE_LIST_FILE}): ${bundles.length} listed\n`);
        for (const b of bundles) process.stdout.write(`  ${b.creationToken} ${bundleUri(r.state, b)}\n`);
      }
    });
}
