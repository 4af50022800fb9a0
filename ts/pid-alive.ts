// Whether a process lives (and is ours to see or not: EPERM means it exists): how leftovers of
// a killed run (a clone's build directory, a pack cache's temp file) are told from live work.

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
