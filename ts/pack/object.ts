// Object types as packs number them, and object ids: SHA-1 of "<type> <size>\0" + content.

import { createHash } from 'node:crypto';

export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';

/** Where --fix-thin reads the bases a thin pack leaves out (the object database, or a test's map). */
export interface ObjectReader {
  read(oid: string): Promise<{ type: ObjectType; data: Buffer } | null>;
}

/** Pack entry type codes (pack-format): 1..4 are whole objects, 6 and 7 deltas. */
export const OBJ_COMMIT = 1;
export const OBJ_TREE = 2;
export const OBJ_BLOB = 3;
export const OBJ_TAG = 4;
export const OBJ_OFS_DELTA = 6;
export const OBJ_REF_DELTA = 7;

const NAMES: readonly (ObjectType | undefined)[] = [undefined, 'commit', 'tree', 'blob', 'tag'];

export function typeCode(type: ObjectType): number {
  const code = NAMES.indexOf(type);
  if (code < 1) throw new TypeError(`unknown object type ${JSON.stringify(type)}`);
  return code;
}

export function typeName(code: number): ObjectType {
  const name = NAMES[code];
  if (!name) throw new TypeError(`pack type ${code} is not a whole object`);
  return name;
}

/** The object id (binary, 20 bytes) of `data` as an object of `type`. */
export function hashObject(code: number, data: Uint8Array): Buffer {
  return createHash('sha1').update(`${NAMES[code]} ${data.length}\0`).update(data).digest();
}
