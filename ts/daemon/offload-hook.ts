// The daemon's in-process hook for offloaded repositories: a protocol v2 upload-pack request
// to a repository where `mpgit offload` published packs is answered by our v2 server (which
// names those packs as packfile URIs); everything else (v0/v1, other services, repositories
// without offload) is left to git upload-pack.

import type { ServiceHook } from './connection-types.js';
import { liveBundles, livePacks, loadStateCached } from '../offload/state.js';
import { serveV2 } from '../serve/serve.js';

export const offloadHook: ServiceHook = async (call) => {
  if (call.service !== 'upload-pack' || call.protocolVersion !== 2) return null;
  let state;
  try {
    state = await loadStateCached(call.gitDir);
  } catch (e) {
    // A broken state file must not take the repository offline: git serves it, without URIs.
    call.log.error('offload-state', `offload state of '${call.gitDir}' unreadable, serving without packfile URIs: ${(e as Error).message}`);
    return null;
  }
  // git 2.39's upload-pack has no bundle-uri command: a repository with bundles is ours to serve.
  if (!state) return null;
  const bundles = liveBundles(state).length;
  if (!livePacks(state).length && !bundles) return null;
  call.log.info('offload', `Serving '${call.gitDir}' in-process (protocol v2 with packfile URIs${bundles ? ` and ${bundles} bundle URIs` : ''}, ${state.mode} mode)`, { gitDir: call.gitDir, mode: state.mode, bundles });
  const stats = await serveV2({
    gitDir: call.gitDir,
    input: call.input,
    initial: call.leftover,
    output: call.output,
    log: (msg) => call.log.info('offload', msg),
  });
  call.served.packfileUris += stats.packfileUris;
  call.log.info('offload-done', `offload session: ${stats.commands} commands, ${stats.fetches} packs, ${stats.packfileUris} packfile URIs, ${stats.bundleLists} bundle lists, ${stats.bytesOut} bytes`, { ...stats });
  return 0;
};
