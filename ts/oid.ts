// Object ids: SHA-1, written as 40 lowercase hex digits. The one definition of their form.

/** One id, for composing the patterns of protocol and file lines. */
export const OID_PATTERN = '[0-9a-f]{40}';
/** Exactly one id. */
export const OID_RE = new RegExp(`^${OID_PATTERN}$`);
/** The id git uses for "no object" (a ref's absence, the capabilities^{} placeholder). */
export const ZERO_OID = '0'.repeat(40);

export function isOid(s: string): boolean {
  return OID_RE.test(s);
}
