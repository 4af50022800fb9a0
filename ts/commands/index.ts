// Every command of the CLI, in the order `mpgit --help` lists them. Each is loaded only when
// it runs (or for the full help): a command does not pay for the others' modules (the
// daemon's zod schemas, the HTTP client), in start-up time or in memory.

import type { RegisterCommand } from './types.js';

export const commands: { name: string; load: () => Promise<RegisterCommand> }[] = [
  { name: 'demo', load: async () => (await import('./demo.js')).registerDemo },
  { name: 'daemon', load: async () => (await import('./daemon.js')).registerDaemon },
  { name: 'clone', load: async () => (await import('./clone.js')).registerClone },
  { name: 'fetch', load: async () => (await import('./fetch.js')).registerFetch },
  { name: 'ls-remote', load: async () => (await import('./ls-remote.js')).registerLsRemote },
  { name: 'index-pack', load: async () => (await import('./index-pack.js')).registerIndexPack },
  { name: 'offload', load: async () => (await import('./offload.js')).registerOffload },
  { name: 'doctor', load: async () => (await import('./doctor.js')).registerDoctor },
  { name: 'version', load: async () => (await import('./version.js')).registerVersion },
];

/** The commands to register for `argv` (after node and the script): the one named, else all. */
export function commandsFor(argv: string[]): typeof commands {
  const first = argv.find((a) => !a.startsWith('-'));
  const named = commands.filter((c) => c.name === first);
  return named.length ? named : commands;
}
