#!/usr/bin/env node
// mpgit's command line: one module per command under commands/, composed here.

import { Command, CommanderError } from 'commander';
import { describe, MpgitError } from './errors.js';
import { commandsFor } from './commands/index.js';

const program = new Command('mpgit')
  .description('git transport for big repositories on fast, flaky, multi-link networks')
  .version(process.env.npm_package_version ?? '0.1.0')
  .showHelpAfterError()
  .exitOverride();

// A missing addon is not silent: one line per command (MPGIT_NO_NATIVE=1 chooses it quietly).
const warning = (await import('./native.js')).nativeMissingWarning();
if (warning) process.stderr.write(`${warning}\n`);

for (const c of commandsFor(process.argv.slice(2))) (await c.load())(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  process.stderr.write(`fatal: ${describe(e)}\n`);
  if (process.env.MPGIT_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(e instanceof MpgitError && e.code === 'MPGIT_CONFIG' ? 129 : 128);
}
