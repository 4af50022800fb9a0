// What the kernel says about the bed's connections and links, from outside the processes that
// own them: `ss -M` / `ss -ti` (MPTCP connections and their subflows) and `tc -s qdisc` (bytes
// each link carried). Used to cross-check what mpgit reports and to time failover.

/** One subflow (a TCP socket under an MPTCP connection, or a plain TCP connection). */
export interface TcpSocketInfo {
  state: string;
  /** Bytes received but not yet read by the application (Recv-Q). */
  recvQ: number;
  local: string;
  /** The device a socket is bound to ("10.71.2.1%c1" in ss): an endpoint's subflow. */
  boundDev: string | null;
  peer: string;
  bytesReceived: number;
  bytesSent: number;
  /** MPTCP token of the connection this is a subflow of; null for plain TCP. */
  mptcpToken: string | null;
}

export interface MptcpSocketInfo {
  state: string;
  /** Bytes received but not yet read by the application (Recv-Q). */
  recvQ: number;
  local: string;
  peer: string;
  token: string | null;
  /** The connection fell back to plain TCP (the peer does not speak MPTCP). */
  fallback: boolean;
  /** All subflows (ss prints the ones beyond the first: `subflows:N` means N + 1). */
  subflows: number;
  /** In-order data received at the MPTCP level (rcv_nxt), as a 64-bit sequence. */
  rcvNxt: bigint | null;
  /** The subflows `ss -ti` lists for this connection's token. */
  tcp: TcpSocketInfo[];
}

// "ESTAB 0 0 10.71.1.1:59636 10.71.1.2:5555", preceded by the Netid ("tcp", "mptcp") when
// ss lists several socket types at once (`ss -tM`).
const HEAD = /^(?:(tcp|mptcp)\s+)?(\S+)\s+(\d+)\s+\d+\s+(\S+)\s+(\S+)/;

interface SsRecord {
  netid: string | null;
  state: string;
  recvQ: number;
  local: string;
  peer: string;
  detail: string;
}

/** Splits ss output into one record per socket (its head line and its info lines). */
function records(out: string): SsRecord[] {
  const res: SsRecord[] = [];
  for (const line of out.split('\n')) {
    if (!line.trim() || line.startsWith('State') || line.startsWith('Netid')) continue;
    if (/^\s/.test(line)) {
      const last = res[res.length - 1];
      if (last) last.detail += ' ' + line.trim();
      continue;
    }
    const m = HEAD.exec(line.trim());
    if (m) res.push({ netid: m[1] ?? null, state: m[2]!, recvQ: Number(m[3]), local: m[4]!, peer: m[5]!, detail: line.trim().slice(m[0].length) });
  }
  return res;
}

function field(detail: string, name: string): string | null {
  const m = new RegExp(`(?:^|\\s)${name}:(\\S+)`).exec(detail);
  return m ? m[1]! : null;
}

function tcpRecord(r: SsRecord): TcpSocketInfo {
  const [local, dev] = splitDev(r.local);
  // "token:0000(id:0)/1ae7fd57(id:0)": the part after the slash is the connection's own token.
  const tok = /tcp-ulp-mptcp.*?token:[0-9a-f]+\(id:\d+\)\/([0-9a-f]+)\(id:\d+\)/.exec(r.detail);
  return {
    state: r.state,
    recvQ: r.recvQ,
    local,
    boundDev: dev,
    peer: r.peer,
    bytesReceived: Number(field(r.detail, 'bytes_received') ?? 0),
    bytesSent: Number(field(r.detail, 'bytes_sent') ?? 0),
    mptcpToken: tok ? tok[1]! : null,
  };
}

function mptcpRecord(r: SsRecord, tcp: TcpSocketInfo[]): MptcpSocketInfo {
  const token = field(r.detail, 'token');
  const extra = field(r.detail, 'subflows');
  const rcv = field(r.detail, 'rcv_nxt');
  return {
    state: r.state,
    recvQ: r.recvQ,
    local: splitDev(r.local)[0],
    peer: r.peer,
    token,
    fallback: /(?:^|\s)fallback(?:\s|$)/.test(r.detail),
    subflows: (extra === null ? 0 : Number(extra)) + 1,
    rcvNxt: rcv === null ? null : BigInt(`0x${rcv}`),
    tcp: token ? tcp.filter((s) => s.mptcpToken === token) : [],
  };
}

/** Parses `ss -tni` (TCP sockets with their info lines). */
export function parseSsTcp(out: string): TcpSocketInfo[] {
  return records(out).map(tcpRecord);
}

/** Parses `ss -Mni` (MPTCP sockets) and attaches the subflows found in `ss -tni` output. */
export function parseSsMptcp(out: string, tcpOut = ''): MptcpSocketInfo[] {
  const tcp = parseSsTcp(tcpOut);
  return records(out).map((r) => mptcpRecord(r, tcp));
}

/** Parses `ss -tMni` (both kinds in one listing, told apart by the Netid column). */
export function parseSsBoth(out: string): { mptcp: MptcpSocketInfo[]; tcp: TcpSocketInfo[] } {
  const recs = records(out);
  const tcp = recs.filter((r) => r.netid === 'tcp').map(tcpRecord);
  return { mptcp: recs.filter((r) => r.netid === 'mptcp').map((r) => mptcpRecord(r, tcp)), tcp };
}

function splitDev(addr: string): [string, string | null] {
  // "10.71.2.1%c1:53249" -> ["10.71.2.1:53249", "c1"]
  const m = /^(.*)%([^:\]]+)(:\d+|:\*)$/.exec(addr);
  return m ? [m[1]! + m[3]!, m[2]!] : [addr, null];
}

/** Bytes and drops of the root qdisc of one device, from `tc -s -j qdisc show dev X`. */
export function parseTcQdisc(json: string): { bytes: number; packets: number; drops: number } {
  const list = JSON.parse(json) as { root?: boolean; bytes?: number; packets?: number; drops?: number }[];
  const root = list.find((q) => q.root) ?? list[0];
  if (!root) throw new Error('no qdisc in tc output');
  return { bytes: root.bytes ?? 0, packets: root.packets ?? 0, drops: root.drops ?? 0 };
}

/** A series of (time, in-order bytes) samples of a transfer. */
export interface ProgressSample {
  /** ms since sampling started */
  t: number;
  /** In-order bytes the kernel has received so far. */
  bytes: number;
  /**
   * Recv-Q as ss reports it: unread bytes of a TCP connection; for an MPTCP connection its
   * receive memory, out-of-order data included. A stall with a high, frozen value is data
   * held back behind a hole (bytes lost with a dead subflow, not yet sent again).
   */
  queued: number;
}

/**
 * How long delivery stalled after an event (a link going down) at `eventAt` (ms, the samples'
 * clock). Delivery counts as stalled while the rate between consecutive samples is below
 * `minBytesPerSec` (a trickle of retransmissions is not progress); it has resumed at the first
 * sample after the stall whose interval reaches that rate again. `resumedAfterMs` is measured
 * from the event: 0 when the rate never dropped, null when it never came back before the
 * samples end (a transfer that ended during the stall). Samples after the transfer's last byte
 * are ignored, and so is a slow last interval (the tail of the transfer): neither is a stall.
 */
export function stallAfter(
  samples: Pick<ProgressSample, 't' | 'bytes'>[],
  eventAt: number,
  minBytesPerSec: number,
): { resumedAfterMs: number | null; stallStartMs: number | null } {
  const last = samples.findIndex((s) => s.bytes === samples[samples.length - 1]?.bytes);
  const upTo = samples.slice(0, last + 1);
  let stallStart: number | null = null;
  for (let i = 1; i < upTo.length; i++) {
    const a = upTo[i - 1]!;
    const b = upTo[i]!;
    if (b.t <= eventAt) continue;
    const rate = ((b.bytes - a.bytes) * 1000) / Math.max(1, b.t - a.t);
    if (rate < minBytesPerSec) {
      if (stallStart === null) stallStart = Math.max(a.t, eventAt);
    } else if (stallStart !== null) {
      return { resumedAfterMs: b.t - eventAt, stallStartMs: stallStart - eventAt };
    }
  }
  if (stallStart === null) return { resumedAfterMs: upTo.length && upTo[upTo.length - 1]!.t > eventAt ? 0 : null, stallStartMs: null };
  // Slow only over the last interval: the transfer's tail, not a stall.
  if (upTo.length >= 2 && stallStart >= upTo[upTo.length - 2]!.t) return { resumedAfterMs: 0, stallStartMs: null };
  return { resumedAfterMs: null, stallStartMs: stallStart - eventAt };
}
