// Loading the N-API addon (crates/node, built by `npm run build:native`) and handing out its
// areas. An area is offered only when the addon has every function of it.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { platformName, platformPackageDir } from './platform.js';
import type { CheckoutCore, ConnectivityCore, Core, IndexerCore, InfoCore, NetCore, OdbCore } from './types.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fileName = `mpgit.${platformName()}.node`;

/**
 * The file the addon is (or would be) loaded from: MPGIT_NATIVE_PATH names another build; a
 * build in the checkout (development) comes before the platform package (an install).
 */
function findNative(): string {
  if (process.env.MPGIT_NATIVE_PATH) return process.env.MPGIT_NATIVE_PATH;
  const local = join(root, fileName);
  if (existsSync(local)) return local;
  const pkg = platformPackageDir();
  return pkg ? join(pkg, fileName) : local;
}
export const nativePath: string = findNative();

/** Why the addon file is not there, and what to do. */
function missingReason(): string {
  if (process.env.MPGIT_NATIVE_PATH) return 'check MPGIT_NATIVE_PATH';
  if (existsSync(join(root, 'Cargo.toml'))) return 'run `npm run build:native`';
  return `npm did not install mpgit-${platformName()} (no prebuilt package for this platform, or --omit=optional)`;
}

const AREAS = {
  net: ['listenSocket', 'connectSocket', 'connInfo', 'kernelMptcp'],
  indexer: ['packIndexerNew', 'packIndexerWrite', 'packIndexerProgress', 'packIndexerResolve', 'packIndexerAddBase', 'packIndexerFinish', 'indexPackFile'],
  odb: ['odbOpen', 'odbAddPack', 'odbClose', 'odbHas', 'odbRead', 'odbReadCommit'],
  checkout: ['checkoutNew', 'checkoutRun', 'checkoutProgress'],
  connectivity: ['connectivityCheck'],
  info: ['coreInfo', 'sha1Hash'],
} as const;

type Area = keyof typeof AREAS;

/** The addon as a Core, or why it cannot be loaded. */
export function loadNative(): { core: Core; error: null } | { core: null; error: string } {
  // Resolved from dist/core/ and from ts/core/ alike: the addon sits at the package root.
  const path = nativePath;
  if (!existsSync(path)) return { core: null, error: `${path} is missing: ${missingReason()}` };
  let addon: Record<string, unknown>;
  try {
    addon = createRequire(import.meta.url)(path) as Record<string, unknown>;
  } catch (e) {
    return { core: null, error: `${path} failed to load: ${(e as Error).message}` };
  }
  const lacking: string[] = [];
  // The Windows addon has no net area by design (crates/node/src/lib.rs: sockets reach node
  // as Unix descriptors), so its absence there is no fault of the build.
  const byDesign: readonly Area[] = process.platform === 'win32' ? ['net'] : [];
  const area = <T>(name: Area): T | null => {
    const absent = AREAS[name].filter((f) => typeof addon[f] !== 'function');
    if (!absent.length) return addon as T;
    if (byDesign.includes(name) && absent.length === AREAS[name].length) return null;
    lacking.push(`${name} (${absent.join(', ')})`);
    return null;
  };
  const core: Core = {
    kind: 'native',
    path,
    net: area<NetCore>('net'),
    indexer: area<IndexerCore>('indexer'),
    odb: area<OdbCore>('odb'),
    checkout: area<CheckoutCore>('checkout'),
    connectivity: area<ConnectivityCore>('connectivity'),
    info: area<InfoCore>('info'),
    loadError: null,
  };
  return { core: lacking.length ? { ...core, loadError: `${path} lacks ${lacking.join('; ')}: run \`npm run build:native\`` } : core, error: null };
}
