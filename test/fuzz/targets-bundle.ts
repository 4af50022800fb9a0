// Fuzz targets for bundles (gitformat-bundle, bundle-uri): the header at the start of a
// downloaded bundle, and bundle lists (protocol `bundle-uri` lines, and list files).

import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { encodeBundleHeader, parseBundleHeader } from '../../ts/bundle/format.js';
import { formatBundleListFile, parseBundleListFile, parseBundleListLines } from '../../ts/bundle/list.js';
import { check, hostile, type TsTarget } from './lib.js';

/** JSON with bigints (creation tokens) as decimal strings. */
const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

const oid = fc.stringMatching(/^[0-9a-f]{40}$/);
const refName = fc.oneof(fc.constantFrom('HEAD', 'refs/heads/main', 'refs/tags/v1', 'refs/heads/../x', 'refs/heads/a.lock'), fc.stringMatching(/^refs\/heads\/[a-z0-9_-]{1,10}$/));
const header = fc
  .record({
    version: fc.constantFrom('# v2 git bundle\n', '# v3 git bundle\n'),
    caps: fc.array(fc.constantFrom('@object-format=sha1', '@object-format=sha256', '@filter=blob:none', '@unknown'), { maxLength: 2 }),
    prereqs: fc.array(fc.tuple(oid, fc.string({ maxLength: 20 })), { maxLength: 3 }),
    refs: fc.array(fc.tuple(oid, refName), { minLength: 1, maxLength: 5 }),
  })
  .map((h) => Buffer.from(`${h.version}${[...(h.version.includes('v3') ? h.caps : []), ...h.prereqs.map(([o, c]) => `-${o}${c ? ` ${c.replace(/\n/g, ' ')}` : ''}`), ...h.refs.map(([o, n]) => `${o} ${n}`)].join('\n')}\n\nPACK\0\0\0\x02`));

const bundleHeader: TsTarget = {
  name: 'bundle-header',
  maxLen: 1 << 16,
  arb: hostile(header, 1 << 16),
  run(input) {
    // Null while the header has not ended; a header re-encodes (v2, as we write bundles) to
    // one that parses the same, and to the same bytes when it was a plain v2 header.
    const h = parseBundleHeader(input);
    if (!h) return { verdict: 'refused' };
    check(h.length <= input.length && h.refs.length > 0, () => 'header length or refs out of range');
    const again = encodeBundleHeader(h.prerequisites, h.refs);
    const back = parseBundleHeader(again);
    check(back !== null && isDeepStrictEqual(back.refs, h.refs) && isDeepStrictEqual(back.prerequisites.map((p) => p.oid), h.prerequisites.map((p) => p.oid)), () => 're-encoding parses differently');
    // ("-<oid> " with an empty comment is written back without its space; a comment, which
    // nothing reads, may be read lossily when it is not UTF-8.)
    const lossless = !h.prerequisites.some((p) => p.comment === '' || p.comment.includes('\ufffd'));
    if (h.version === 2 && lossless) check(again.equals(input.subarray(0, h.length)), () => 're-encoding differs from the header read');
    return { verdict: 'parsed', resultBytes: again.length };
  },
};

const listLines = fc
  .record({
    version: fc.constantFrom('1', '1', '2'),
    mode: fc.constantFrom('all', 'any', 'some'),
    bundles: fc.array(fc.record({ id: fc.stringMatching(/^[A-Za-z0-9-]{1,8}$/), uri: fc.oneof(fc.webUrl(), fc.constantFrom('relative/b.bundle', 'file:///etc/passwd', '')), token: fc.oneof(fc.nat().map(String), fc.constantFrom('x', '-1', '99999999999999999999')) }), { maxLength: 5 }),
  })
  .map((l) => [`bundle.version=${l.version}`, `bundle.mode=${l.mode}`, 'bundle.heuristic=creationToken', ...l.bundles.flatMap((b) => [`bundle.${b.id}.uri=${b.uri}`, `bundle.${b.id}.creationtoken=${b.token}`])].join('\n'));

const bundleList: TsTarget = {
  name: 'bundle-list',
  maxLen: 1 << 16,
  arb: hostile(listLines.map((s) => Buffer.from(s)), 1 << 16),
  run(input) {
    // As the protocol's key=value lines, and as a list file; a list with every token set
    // re-encodes (as `mpgit offload` writes it) to a file that parses the same.
    const text = input.toString('utf8');
    const fromLines = parseBundleListLines(text.split('\n'));
    let fromFile = null;
    try {
      fromFile = parseBundleListFile(text.split('\n').map((l) => (l.includes('=') ? l.replace(/^bundle\.([^.=]+)\.([^=]+)=/, '[bundle "$1"]\n$2=').replace(/^bundle\.([^=]+)=/, '[bundle]\n$1=') : l)).join('\n'), 'http://127.0.0.1/list');
    } catch (e) {
      if (!(e instanceof Error && 'code' in e)) throw e;
    }
    for (const l of [fromLines, fromFile]) {
      // Tokens are unsigned 64-bit (bigint), exact at any size; a list without every token set
      // would be written with no token, so it is not re-encoded.
      if (!l || l.mode !== 'all' || l.bundles.some((b) => b.creationToken === null)) continue;
      const file = formatBundleListFile(l.bundles.map((b) => ({ id: b.id, uri: b.uri, creationToken: b.creationToken! })));
      const back = parseBundleListFile(file, 'http://127.0.0.1/list');
      check(isDeepStrictEqual(back.bundles, l.bundles), () => `list re-encodes differently: ${json(l.bundles)} vs ${json(back.bundles)}`);
    }
    return { verdict: 'parsed', resultBytes: json(fromLines).length };
  },
};

export const bundleTargets: TsTarget[] = [bundleHeader, bundleList];
