// What runs on this machine: mpgit's version, whether the native addon loaded (and from
// where, or why not), the SHA-1 backend chosen with each candidate's measured speed, the
// inflaters, the default thread count, the CPU. `versionReport()` builds one plain object
// (`mpgit version --json`, `mpgit doctor`, every bench's JSON); `formatVersionReport` renders
// it as text. A new field goes into the object and gets one line in the rendering.

import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { core, coreReason, nativePath, passedOverNative, type CoreInfo, type CoreKind } from './core/index.js';

/** The CPU flags that decide which code paths the core can take, as /proc/cpuinfo names them. */
export const REPORTED_FLAGS = ['sha_ni', 'avx2', 'avx512f'] as const;

export interface CpuReport {
  model: string;
  /** From /proc/cpuinfo (what the hardware and kernel offer), null where it cannot be read. */
  flags: Record<(typeof REPORTED_FLAGS)[number], boolean> | null;
}

export interface VersionReport {
  mpgit: string;
  node: string;
  /** The core in use (native, else wasm; MPGIT_CORE forces one) and why. */
  core: CoreKind;
  coreReason: string;
  native: { loaded: boolean; path: string; error: string | null };
  sha1: {
    /** The backend object ids are computed with (collision-detecting in either core). */
    backend: string | null;
    /** Always true: both cores detect collisions (kept for readers of the JSON). */
    collisionDetection: true;
    /** Chosen by measurement, or forced by MPGIT_SHA1_BACKEND. */
    chosenBy: 'measurement' | 'MPGIT_SHA1_BACKEND' | null;
    error: string | null;
    backends: CoreInfo['sha1']['backends'];
  };
  inflate: { whole: string; streaming: string };
  threads: number;
  cpu: CpuReport;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The CPU model and the flags that matter, from /proc/cpuinfo (Linux). */
export function cpuReport(): CpuReport {
  const model = cpus()[0]?.model ?? 'unknown';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const have = new Set(/^flags\s*:(.*)$/m.exec(info)?.[1]?.trim().split(/\s+/) ?? []);
    return { model, flags: Object.fromEntries(REPORTED_FLAGS.map((f) => [f, have.has(f)])) as CpuReport['flags'] };
  } catch {
    return { model, flags: null };
  }
}

export function versionReport(): VersionReport {
  const info = core.info?.coreInfo() ?? null;
  const sha1: VersionReport['sha1'] = info
    ? {
        backend: info.sha1.backend,
        collisionDetection: true,
        chosenBy: info.sha1.error ? null : info.sha1.forced ? 'MPGIT_SHA1_BACKEND' : 'measurement',
        error: info.sha1.error,
        backends: info.sha1.backends,
      }
    : { backend: core.kind === 'wasm' ? 'sha1collisiondetection (wasm)' : 'sha1dc', collisionDetection: true, chosenBy: null, error: null, backends: [] };
  return {
    mpgit: packageVersion(),
    node: process.version,
    core: core.kind,
    coreReason: coreReason(),
    native: {
      loaded: core.kind === 'native',
      path: core.kind === 'wasm' ? nativePath : core.path,
      error: core.kind === 'native' ? (info ? null : 'the addon predates coreInfo: rebuild it (npm run build:native)') : passedOverNative(),
    },
    sha1,
    inflate: info?.inflate ?? (core.kind === 'wasm' ? { whole: 'miniz_oxide (wasm)', streaming: 'miniz_oxide (wasm)' } : { whole: 'unknown (rebuild the addon)', streaming: 'unknown (rebuild the addon)' }),
    threads: availableParallelism(),
    cpu: cpuReport(),
  };
}

function sha1Line(s: VersionReport['sha1']): string {
  if (s.error) return `error: ${s.error}`;
  if (!s.backends.length) return `${s.backend} (collision detection on)`;
  const speeds = s.backends
    .map((b) => (b.supported ? `${b.name} ${b.mbPerSec ?? '?'} MB/s` : `${b.name} unsupported (no ${b.missingFlags.join(', ')})`))
    .join(', ');
  const how = s.chosenBy === 'measurement' ? 'the fastest measured' : 'forced by MPGIT_SHA1_BACKEND';
  return `${s.backend}, ${how} (${speeds})`;
}

/** The report as `mpgit version` prints it (git's `version --build-options` style). */
export function formatVersionReport(r: VersionReport): string {
  const flags = r.cpu.flags ? REPORTED_FLAGS.map((f) => `${f} ${r.cpu.flags![f] ? 'yes' : 'no'}`).join(', ') : 'flags unknown';
  const lines = [
    `mpgit version ${r.mpgit}`,
    `node: ${r.node}`,
    `core: ${r.core} (${r.coreReason})`,
    `native addon: ${r.native.loaded ? `loaded from ${r.native.path}${r.native.error ? ` (${r.native.error})` : ''}` : `not loaded: ${r.native.error}`}`,
    `sha1: ${sha1Line(r.sha1)}`,
    `inflate: ${r.inflate.whole} (whole entries), ${r.inflate.streaming} (streaming)`,
    `default threads: ${r.threads}`,
    `cpu: ${r.cpu.model} (${flags})`,
  ];
  return `${lines.join('\n')}\n`;
}
