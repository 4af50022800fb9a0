// mpgit version [--build-options] [--json]: what runs here (ts/version.ts builds the report).

import type { Command } from 'commander';
import { formatVersionReport, versionReport } from '../version.js';

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print the version, whether the native core loaded, the SHA-1 backend and its measured speed')
    .option('--build-options', "accepted as git's version takes it (everything is always printed)")
    .option('--json', 'print the report as JSON')
    .action((o: { json?: boolean }) => {
      const r = versionReport();
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : formatVersionReport(r));
    });
}
