// The size of a file, or null when there is none: what a resumable download and a publish
// check before they write (any other error, EACCES say, is thrown: it needs a person).

import { stat } from 'node:fs/promises';

export async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
