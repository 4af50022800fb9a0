// What one finished connection did, as the access log and the metrics see it; and the access
// line itself, written for every served transfer whatever --verbose says (text and JSON carry
// the same fields).

import type { ConnLog } from './log.js';

export type CacheOutcome = 'hit' | 'join' | 'miss' | 'bypass';

export interface TransferRecord {
  service: string | null;
  /** The repository served (its real path), or the path asked for when refused. */
  repo: string | null;
  client: string | null;
  /** served: a service ran to its end; refused: an ERR went back; gone: no request came. */
  result: 'served' | 'refused' | 'gone';
  /** Why it was refused ("service not enabled", "too many connections", ...). */
  refusal: string | null;
  exitCode: number;
  bytesSent: number | null;
  bytesReceived: number | null;
  durationMs: number;
  mptcp: boolean | null;
  subflows: number | null;
  subflowsUsed: number | null;
  /** What the pack cache did (null: no pack was asked for, or the cache is off). */
  cache: CacheOutcome | null;
  /** Packfile URIs named to the client (offload). */
  packfileUris: number;
}

const n = (v: number | null) => (v === null ? '-' : String(v));

/** The access line: one per served transfer. */
export function logAccess(log: ConnLog, r: TransferRecord): void {
  if (r.result !== 'served') return;
  const secs = (r.durationMs / 1000).toFixed(3);
  const mptcp = r.mptcp === null ? '-' : r.mptcp ? 'yes' : 'no';
  const text =
    `access: ${r.service} ${r.repo} client=${r.client ?? '-'} exit=${r.exitCode} sent=${n(r.bytesSent)} received=${n(r.bytesReceived)} ` +
    `duration=${secs}s mptcp=${mptcp} subflows=${n(r.subflowsUsed)} cache=${r.cache ?? '-'}`;
  log.notice('access', text, {
    service: r.service,
    repo: r.repo,
    client: r.client,
    exitCode: r.exitCode,
    bytesSent: r.bytesSent,
    bytesReceived: r.bytesReceived,
    durationMs: r.durationMs,
    mptcp: r.mptcp,
    subflows: r.subflowsUsed,
    cache: r.cache,
  });
}
