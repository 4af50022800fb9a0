// The command line as a user meets it: every command listed and helped, unknown ones refused.

import test from 'ava';
import { mpgit } from './helpers/proc.js';

const COMMANDS = ['demo', 'daemon', 'clone', 'fetch', 'ls-remote', 'index-pack', 'offload', 'doctor'];

test('mpgit --help lists every command, and each has its own --help', async (t) => {
  const top = await mpgit(['--help']);
  t.is(top.code, 0, top.stderr);
  for (const c of COMMANDS) t.regex(top.stdout, new RegExp(`^  ${c} `, 'm'), `${c} missing from mpgit --help`);
  for (const c of COMMANDS) {
    const r = await mpgit([c, '--help']);
    t.is(r.code, 0, `${c} --help: ${r.stderr}`);
    t.regex(r.stdout, new RegExp(`^Usage: mpgit ${c} `, 'm'));
    const viaHelp = await mpgit(['help', c]);
    t.is(viaHelp.stdout, r.stdout, `mpgit help ${c} differs from mpgit ${c} --help`);
  }
});

test('an unknown command is an error that lists the commands', async (t) => {
  const r = await mpgit(['frobnicate']);
  t.not(r.code, 0);
  t.regex(r.stderr, /^mpgit: 'frobnicate' is not an mpgit command\. See 'mpgit --help'\.\n/);
  t.regex(r.stderr, /index-pack/);
});
