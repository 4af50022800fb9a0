// Where a client command's messages go: stderr, silenced by -q; progress only on a terminal
// unless --progress (git's rule); -v lines for the transport.

import { stderrSink, type ProgressSink } from '../progress.js';

export interface Outputs {
  say: ((line: string) => void) | null;
  verbose: ((line: string) => void) | null;
  progress: ProgressSink | null;
}

export function outputs(o: { quiet?: boolean; verbose?: boolean; progress?: boolean }): Outputs {
  const line = (l: string) => void process.stderr.write(`${l}\n`);
  const showProgress = !o.quiet && (o.progress ?? !!process.stderr.isTTY);
  return {
    say: o.quiet ? null : line,
    verbose: o.verbose ? line : null,
    progress: showProgress ? stderrSink() : null,
  };
}
