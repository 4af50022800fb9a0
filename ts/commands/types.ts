// What a command module exports: a function that adds its command to the program.

import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;
