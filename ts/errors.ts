// Typed errors: `code` is stable for scripts and tests, `hint` tells the user what to do.

export class MpgitError extends Error {
  readonly code: string;
  readonly hint?: string;
  constructor(code: string, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MpgitError';
    this.code = code;
    this.hint = hint;
  }
}

/** Bytes from the peer that break the protocol (bad pkt-line, unexpected section...). */
export class ProtocolError extends MpgitError {
  constructor(message: string, hint = 'the peer is not speaking the git protocol correctly; check the URL and the server') {
    super('MPGIT_PROTOCOL', message, hint);
    this.name = 'ProtocolError';
  }
}

/** An `ERR` packet or refusal from the remote side. */
export class RemoteError extends MpgitError {
  constructor(message: string) {
    super('MPGIT_REMOTE', `remote error: ${message}`, 'the server refused the request; its message says why');
    this.name = 'RemoteError';
  }
}

/** A pack that is truncated, corrupt or inconsistent. */
export class PackError extends MpgitError {
  constructor(message: string, hint = 'the pack is corrupt or incomplete; fetch it again') {
    super('MPGIT_BAD_PACK', message, hint);
    this.name = 'PackError';
  }
}

/** Invalid configuration or command-line usage. */
export class ConfigError extends MpgitError {
  constructor(message: string, hint?: string) {
    super('MPGIT_CONFIG', message, hint);
    this.name = 'ConfigError';
  }
}

/** A command-line mistake found after parsing (exit 129 with the command's usage line). */
export class UsageError extends MpgitError {
  constructor(message: string, hint?: string) {
    super('MPGIT_USAGE', message, hint);
    this.name = 'UsageError';
  }
}

/** A bounded wait ran out. */
export class TimeoutError extends MpgitError {
  constructor(what: string, ms: number) {
    super('MPGIT_TIMEOUT', `${what} timed out after ${ms} ms`, 'the peer stopped responding; check the network or raise the timeout');
    this.name = 'TimeoutError';
  }
}

/** The peer closed the connection before we were done (nothing to do about it but log it). */
export class ClientGoneError extends MpgitError {
  constructor(message = 'the client hung up') {
    super('MPGIT_CLIENT_GONE', message, 'nothing to do: the client went away');
    this.name = 'ClientGoneError';
  }
}

/** A thin pack whose delta bases are neither in it nor in the repository. */
export class MissingBaseError extends MpgitError {
  constructor(message: string, hint = 'the pack is thin: index it with --fix-thin in a repository that has its bases, or fetch a complete pack') {
    super('MPGIT_MISSING_BASE', message, hint);
    this.name = 'MissingBaseError';
  }
}

/** The error for the terminal: its message, and its hint on a line of its own ("hint: ..."); the CLI puts "fatal: " in front. */
export function describe(err: unknown): string {
  if (err instanceof MpgitError) return err.hint ? `${err.message}\nhint: ${err.hint}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
