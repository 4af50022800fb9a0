// How the CLI ends on an error, as git does: usage errors exit 129 with git's wording and the
// command's usage line; fatal errors exit 128 with "fatal: <message>" and mpgit's hint on the
// next line; an unknown command exits 1 ("'x' is not an mpgit command").

import { type Command, CommanderError } from 'commander';
import { describe, MpgitError } from './errors.js';

export { UsageError } from './errors.js';

export const EXIT_USAGE = 129;
export const EXIT_FATAL = 128;

/** git's messages for a missing required argument, per command. */
const MISSING_ARGUMENT: Record<string, string> = {
  clone: 'fatal: You must specify a repository to clone.',
};

/** The command a CommanderError came from (commander's errors do not carry it). */
class CommandError extends Error {
  constructor(
    readonly command: Command,
    readonly inner: CommanderError,
  ) {
    super(inner.message);
  }
}

/**
 * Makes `program` and every command under it throw instead of printing and exiting, so that
 * `exitCode` can word the error as git would. Call after registering the commands.
 */
export function gitStyleErrors(program: Command): { current: () => Command } {
  let running: Command = program;
  const visit = (cmd: Command) => {
    cmd.exitOverride((err) => {
      throw new CommandError(cmd, err);
    });
    // commander's own wording is replaced by ours (help and --version still print).
    cmd.configureOutput({ outputError: () => {} });
    cmd.showHelpAfterError(false);
    for (const sub of cmd.commands) visit(sub);
  };
  visit(program);
  program.hook('preAction', (_top, action) => {
    running = action;
  });
  return { current: () => running };
}

/** "mpgit clone [options] <url> [dir]" */
export function usageLine(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return `usage: ${names.join(' ')} ${cmd.usage()}`;
}

/** Writes what the user sees for `e` and returns the exit status. */
export function reportError(e: unknown, running: Command, write: (s: string) => void): number {
  if (e instanceof CommandError || e instanceof CommanderError) {
    const inner = e instanceof CommandError ? e.inner : e;
    const cmd = e instanceof CommandError ? e.command : running;
    // --help, --version: commander printed them; exit as it says (0).
    if (inner.exitCode === 0) return 0;
    // `mpgit` alone: the help was shown instead of a command; git exits 1 then.
    if (inner.code === 'commander.help') return 1;
    if (inner.code === 'commander.unknownCommand') {
      const name = /'([^']*)'/.exec(inner.message)?.[1] ?? '';
      write(`mpgit: '${name}' is not an mpgit command. See 'mpgit --help'.\n\nThe commands are: ${cmd.commands.map((c) => c.name()).join(', ')}\n`);
      return 1;
    }
    write(`${gitWording(inner, cmd)}\n${usageLine(cmd)}\n`);
    return EXIT_USAGE;
  }
  // Bad values on the command line (ConfigError) are usage errors too.
  const usage = e instanceof MpgitError && (e.code === 'MPGIT_USAGE' || e.code === 'MPGIT_CONFIG');
  write(`fatal: ${describe(e)}\n`);
  if (process.env.MPGIT_DEBUG && e instanceof Error) write(`${e.stack}\n`);
  if (!usage) return EXIT_FATAL;
  write(`${usageLine(running)}\n`);
  return EXIT_USAGE;
}

/** commander's messages in git's words (parse-options.c). */
function gitWording(err: CommanderError, cmd: Command): string {
  const m = err.message.replace(/^error: /, '');
  const optName = (s: string) => {
    const flag = /'(-{1,2}[^' ]+)/.exec(s)?.[1] ?? s;
    return flag.replace(/^-+/, '');
  };
  switch (err.code) {
    case 'commander.unknownOption': {
      const flag = /'([^']*)'/.exec(m)?.[1] ?? '';
      return flag.startsWith('--') ? `error: unknown option \`${flag.slice(2)}'` : `error: unknown switch \`${flag.slice(1, 2)}'`;
    }
    case 'commander.optionMissingArgument':
      return `error: option \`${optName(m)}' requires a value`;
    case 'commander.missingArgument':
      return MISSING_ARGUMENT[cmd.name()] ?? `fatal: ${m}`;
    case 'commander.excessArguments':
      return 'fatal: Too many arguments.';
    case 'commander.invalidArgument': {
      const why = / is invalid\. (.*)$/.exec(m)?.[1] ?? m;
      const value = /argument '([^']*)'/.exec(m)?.[1];
      return `error: option \`${optName(m)}' ${why}${value !== undefined ? `, not '${value}'` : ''}`;
    }
    default:
      return `error: ${m}`;
  }
}
