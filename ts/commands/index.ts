// Every command of the CLI, in the order `mpgit --help` lists them.

import type { Command } from 'commander';
import { registerIndexPack } from './index-pack.js';
import { registerClone } from './clone.js';
import { registerFetch } from './fetch.js';
import { registerLsRemote } from './ls-remote.js';
import { registerOffload } from './offload.js';
import { registerDoctor } from './doctor.js';
import { registerDaemon } from './daemon.js';
import { registerDemo } from './demo.js';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  registerDemo,
  registerDaemon,
  registerClone,
  registerFetch,
  registerLsRemote,
  registerIndexPack,
  registerOffload,
  registerDoctor,
];
