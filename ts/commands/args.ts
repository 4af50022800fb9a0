// Parsers for option values shared by several commands (commander calls them; a bad value
// is a usage error naming the option).

import { InvalidArgumentError } from 'commander';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}
