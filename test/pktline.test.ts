import test from 'ava';
import { PassThrough } from 'node:stream';
import { pkt, parsePkts, PktReader, FLUSH, DELIM, MAX_PKT_DATA } from '../ts/pktline.js';
import { parseRequest, encodeRequest } from '../ts/protocol/request.js';

test('pkt-lines round-trip, with flush and delim', (t) => {
  const buf = Buffer.concat([pkt('hello\n'), DELIM, pkt(Buffer.alloc(MAX_PKT_DATA, 1)), FLUSH]);
  const p = parsePkts(buf);
  t.is(p.length, 4);
  t.deepEqual(p[0], { kind: 'data', data: Buffer.from('hello\n') });
  t.is(p[1]!.kind, 'delim');
  t.is(p[2]!.kind === 'data' && p[2]!.data.length, MAX_PKT_DATA);
  t.is(p[3]!.kind, 'flush');
  t.throws(() => pkt(Buffer.alloc(MAX_PKT_DATA + 1)));
});

test('bad headers and huge lengths are protocol errors, not allocations', (t) => {
  t.throws(() => parsePkts(Buffer.from('zzzz')), { message: /4 hex digits/ });
  t.throws(() => parsePkts(Buffer.from('0003')), { message: /reserved/ });
  t.throws(() => parsePkts(Buffer.from('fff1xxxx')), { message: /exceeds/ });
  t.throws(() => parsePkts(Buffer.from('0010abc')), { message: /truncated/ });
});

test('the reader bounds its wait and reports a hang-up mid-packet', async (t) => {
  const s = new PassThrough();
  const r = new PktReader(s, { timeoutMs: 100, what: 'the test peer' });
  s.write('0009hel');
  await t.throwsAsync(r.read(), { code: 'MPGIT_TIMEOUT' });
  const s2 = new PassThrough();
  const r2 = new PktReader(s2, { timeoutMs: 1000, what: 'the test peer' });
  s2.end('0009hel');
  await t.throwsAsync(r2.read(), { message: /hung up in the middle/ });
});

test('git:// request lines parse strictly and round-trip', (t) => {
  const line = encodeRequest({ service: 'git-upload-pack', path: '/repo.git', host: 'example.com', port: 9418, extra: ['version=2'] });
  const req = parseRequest(parsePkts(line)[0]!.kind === 'data' ? (parsePkts(line)[0] as { data: Buffer }).data : Buffer.alloc(0));
  t.deepEqual(req, { service: 'git-upload-pack', path: '/repo.git', host: 'example.com', port: 9418, extra: ['version=2'] });
  t.throws(() => parseRequest(Buffer.from('git-frobnicate /x\0')), { message: /unknown service/ });
  t.throws(() => parseRequest(Buffer.from('git-upload-pack /x\0host=bad host\0')), { message: /host parameter/ });
  t.throws(() => parseRequest(Buffer.from('git-upload-pack\0')), { message: /no space/ });
});
