// The daemon's settings are listed once (ts/daemon/options.ts): the command's options are made
// from that table, a --config file takes the same names, and the documentation names each one.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { addDaemonOptions, DAEMON_OPTIONS, type OptionRow } from '../ts/daemon/options.js';
import { flagSettings, resolveConfig } from '../ts/daemon/config.js';

const rows = Object.entries(DAEMON_OPTIONS) as [string, OptionRow][];

test('each option of mpgit daemon comes from the table, under the key a --config file uses', (t) => {
  const cmd = addDaemonOptions(new Command('daemon'));
  for (const [key, row] of rows) {
    const option = cmd.options.find((o) => o.long === (row.negationOnly ? `--no-${row.flag.slice(2)}` : row.flag));
    t.truthy(option, row.flag);
    t.is(option!.attributeName(), key, `${row.flag} sets ${key}`);
  }
  // The flags are validated and typed by the same keys (config.ts holds a schema for each).
  const typed = resolveConfig({}, flagSettings({ exportAll: true, listen: ['127.0.0.1'], port: '9999' }));
  t.like(typed, { exportAll: true, listen: ['127.0.0.1'], port: 9999 });
});

test('the documentation names every option in the table', (t) => {
  const docs = readFileSync(new URL('../README.md', import.meta.url), 'utf8') + readFileSync(new URL('../docs/git-daemon-options.md', import.meta.url), 'utf8');
  const named = (flag: string) => docs.includes(`\`${flag}\``) || docs.includes(`\`${flag}=`) || docs.includes(`\`${flag} `) || docs.includes(`[${flag}`);
  for (const [, row] of rows) {
    const flag = row.negationOnly ? `--no-${row.flag.slice(2)}` : row.flag;
    t.true(named(flag), `${flag} is documented (README.md or docs/git-daemon-options.md)`);
  }
});
