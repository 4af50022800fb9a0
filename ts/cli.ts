#!/usr/bin/env node
// mpgit's command line: one module per command under commands/, composed here.

import { Command } from 'commander';
import { commandsFor } from './commands/index.js';
import { gitStyleErrors, reportError } from './cli-errors.js';
import { takeConfigArgs } from './config/command-line.js';

const program = new Command('mpgit')
  .description('git transport for big repositories on fast, flaky, multi-link networks')
  .version(process.env.npm_package_version ?? '0.1.0')
  .option('-c <name>=<value>', 'set a configuration value for this command, as `git -c` (repeatable)');

// A missing addon is not silent: one line per command (MPGIT_CORE=wasm chooses it quietly);
// no core at all, or a core forced by MPGIT_CORE that cannot load, is an error.
try {
  const warning = (await import('./core/index.js')).coreMissingWarning();
  if (warning) process.stderr.write(`${warning}\n`);
} catch (e) {
  process.exit(reportError(e, program, (s) => void process.stderr.write(s)));
}

let errors: ReturnType<typeof gitStyleErrors> | null = null;
try {
  // `mpgit -c k=v cmd`: into GIT_CONFIG_PARAMETERS, as git does, so git processes we run see it too.
  const argv = takeConfigArgs(process.argv.slice(2), process.env);
  for (const c of commandsFor(argv)) (await c.load())(program);
  errors = gitStyleErrors(program);
  await program.parseAsync(argv, { from: 'user' });
} catch (e) {
  process.exit(reportError(e, errors?.current() ?? program, (s) => void process.stderr.write(s)));
}
