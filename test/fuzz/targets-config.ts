// Fuzz targets for what is read from disk: a repository's mpgit-offload.json and the daemon's
// --config file. Valid documents, their mutations (as text), and random bytes.

import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseState } from '../../ts/offload/state.js';
import { loadConfigFile, resolveConfig } from '../../ts/daemon/config.js';
import { check, hostile, type TsTarget } from './lib.js';

const oid = fc.stringMatching(/^[0-9a-f]{40}$/);
const when = fc.constantFrom('2026-01-01T00:00:00.000Z', 'yesterday', '');
const pack = fc.oneof(
  fc.record({ kind: fc.constant('base'), hash: oid, file: fc.constantFrom('pack-1.pack', '../../x.pack'), size: fc.nat(), createdAt: when, retiredAt: fc.option(when), ref: fc.constantFrom('v1', 'refs/heads/main'), object: oid, commit: oid, commits: fc.nat() }),
  fc.record({ kind: fc.constant('blob'), hash: oid, file: fc.string(), size: fc.nat(), createdAt: when, retiredAt: fc.option(when), blobs: fc.array(oid, { maxLength: 4 }) }),
  fc.record({ kind: fc.constant('config'), hash: oid, uri: fc.webUrl(), blobs: fc.array(oid, { maxLength: 4 }) }),
);
const state = fc.record({
  version: fc.constantFrom(1, 1, 2),
  mode: fc.constantFrom('blob', 'base', 'other'),
  publishDir: fc.constantFrom('/srv/packs', ''),
  baseUrl: fc.oneof(fc.webUrl(), fc.constant('')),
  minSize: fc.option(fc.integer({ min: -1, max: 1 << 30 })),
  packs: fc.array(pack, { maxLength: 5 }),
});

const offloadState: TsTarget = {
  name: 'offload-state',
  maxLen: 1 << 16,
  arb: hostile(state.map((s) => Buffer.from(JSON.stringify(s, null, 1))), 1 << 16),
  run(input) {
    // A parsed state re-encodes (as `mpgit offload` writes it) to text that parses the same.
    const s = parseState(input.toString('utf8'), 'fuzz input');
    const text = JSON.stringify(s, null, 1);
    check(isDeepStrictEqual(parseState(text, 'its re-encoding'), s), () => 're-encoding parses differently');
    check(JSON.stringify(parseState(text, 'again'), null, 1) === text, () => 're-encoding is not stable');
    return { verdict: 'parsed', resultBytes: Buffer.byteLength(text) };
  },
};

const value = fc.oneof(fc.boolean(), fc.integer({ min: -5, max: 70000 }), fc.double(), fc.string({ maxLength: 12 }), fc.array(fc.constantFrom('receive-pack', 'upload-pack', 'upload-archive', 'nope', '::1', '0.0.0.0'), { maxLength: 3 }), fc.constant(null));
const keys = ['basePath', 'basePathRelaxed', 'exportAll', 'listen', 'port', 'mptcp', 'enable', 'disable', 'maxConnections', 'timeout', 'initTimeout', 'logFormat', 'logDestination', 'syslog', 'detach', 'inetd', 'user', 'group', 'pidFile', 'unknownKey', '__proto__'];
const daemonConfigDoc = fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 8 }).map((o) => Buffer.from(JSON.stringify(o)));

const scratch = join(tmpdir(), `mpgit-fuzz-config-${process.pid}`);

const daemonConfig: TsTarget = {
  name: 'daemon-config',
  maxLen: 1 << 16,
  arb: hostile(daemonConfigDoc, 1 << 16),
  async run(input) {
    // As `mpgit daemon --config FILE` reads it: validated settings, then the whole config.
    mkdirSync(scratch, { recursive: true });
    const file = join(scratch, 'daemon.json');
    writeFileSync(file, input);
    const settings = await loadConfigFile(file);
    resolveConfig(settings, {});
    writeFileSync(file, JSON.stringify(settings));
    check(isDeepStrictEqual(await loadConfigFile(file), settings), () => 're-encoded settings read back differently');
    return { verdict: 'parsed', resultBytes: Buffer.byteLength(JSON.stringify(settings)) };
  },
};

export const configTargets: TsTarget[] = [offloadState, daemonConfig];
