// Teardown of test beds on every exit path. A bed's namespaces are named after the process
// that owns it (`mpgb<pid>x<rand>c` / `...s`), so:
// - a normal end, an exception or a test failure: the owner calls destroy() (ava's t.teardown);
// - the owner exits or is interrupted (exit, SIGINT, SIGTERM, SIGHUP): handlers below delete
//   whatever beds it still has, synchronously;
// - the owner is killed outright (SIGKILL, a timeout): the next bed created on this machine
//   sweeps every bed whose owner pid is dead.
// Only namespaces with our prefix are ever touched, and of those only our own or orphans.

import { readFileSync } from 'node:fs';
import { execSyncQuiet, exec } from '../../ts/net/iproute.js';

export const BED_PREFIX = 'mpgb';
/** `mpgb<owner pid>x<random hex><c|s>` */
const BED_NAME = /^mpgb(\d+)x([0-9a-f]+)([cs])$/;

const live = new Set<string>(); // namespaces of this process's beds
let handlersInstalled = false;

export function bedNamespaceNames(id: string): { client: string; server: string } {
  return { client: `${id}c`, server: `${id}s` };
}

export function newBedId(): string {
  const rand = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0');
  return `${BED_PREFIX}${process.pid}x${rand}`;
}

/** Owner pid of a bed namespace, or null for names that are not ours. */
export function bedOwner(ns: string): number | null {
  const m = BED_NAME.exec(ns);
  return m ? Number(m[1]) : null;
}

/** The process runs; a zombie (dead, its parent not reaping it) does not count. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Kills what runs in a namespace, then deletes it (sync: usable in exit handlers). */
export function deleteNamespaceSync(ns: string): void {
  killNamespacePids(execSyncQuiet('ip', ['netns', 'pids', ns]));
  execSyncQuiet('ip', ['netns', 'delete', ns]);
  live.delete(ns);
}

export async function deleteNamespace(ns: string): Promise<void> {
  const pids = await exec('ip', ['netns', 'pids', ns]);
  killNamespacePids(pids.code === 0 ? pids.stdout : null);
  const del = await exec('ip', ['netns', 'delete', ns]);
  live.delete(ns);
  if (del.code !== 0 && (await namespaceExists(ns))) throw new Error(`could not delete network namespace ${ns}: ${del.stderr.trim()}`);
}

function killNamespacePids(out: string | null): void {
  for (const line of (out ?? '').split('\n')) {
    const pid = Number(line.trim());
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export async function listNamespaces(): Promise<string[]> {
  const r = await exec('ip', ['netns', 'list']);
  if (r.code !== 0) throw new Error(`ip netns list failed: ${r.stderr.trim()}`);
  // Lines look like "name" or "name (id: 3)".
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
}

async function namespaceExists(ns: string): Promise<boolean> {
  return (await listNamespaces()).includes(ns);
}

/** Deletes the beds whose owner process is gone (killed before it could clean up). */
export async function sweepOrphanBeds(): Promise<string[]> {
  const swept: string[] = [];
  for (const ns of await listNamespaces()) {
    const owner = bedOwner(ns);
    if (owner === null || owner === process.pid || pidAlive(owner)) continue;
    await deleteNamespace(ns);
    swept.push(ns);
  }
  return swept;
}

/** Deletes every bed of this process that is still there (exit paths). */
export function deleteLiveBedsSync(): void {
  for (const ns of [...live]) deleteNamespaceSync(ns);
}

/** Records a namespace of this process so the exit handlers delete it. */
export function trackNamespace(ns: string): void {
  live.add(ns);
  installHandlers();
}

export function untrackNamespace(ns: string): void {
  live.delete(ns);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', deleteLiveBedsSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      deleteLiveBedsSync();
      process.off(sig, onSignal);
      // Die of the same signal unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
