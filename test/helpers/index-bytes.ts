// Comparing index files written at different times: the stat data aside, the bytes must match.

/** An index v2 with each entry's ctime, mtime, dev and ino zeroed, without its checksum. */
export function indexSansStat(index: Buffer): Buffer {
  const b = Buffer.from(index.subarray(0, index.length - 20));
  expect(b.toString('latin1', 0, 4) === 'DIRC' && b.readUInt32BE(4) === 2, 'an index v2');
  let at = 12;
  for (let i = 0; i < b.readUInt32BE(8); i++) {
    b.fill(0, at, at + 24);
    const nameLen = b.readUInt16BE(at + 60) & 0xfff;
    at += (62 + nameLen + 8) & ~7;
  }
  expect(at === b.length, 'no extensions');
  return b;
}

function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(`not ${what}`);
}
