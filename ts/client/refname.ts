// git check-ref-format's rules (refs.c check_refname_component), for names users give us.

export function checkRefFormat(name: string): boolean {
  if (!name || name.endsWith('/') || name.endsWith('.') || name === '@' || name.includes('@{')) return false;
  for (const part of name.split('/')) {
    if (!part || part.startsWith('.') || part.endsWith('.lock') || part.includes('..')) return false;
    // control characters, space, ~ ^ : ? * [ \ are not allowed anywhere
    if (/[\x00-\x20\x7f~^:?*[\\]/.test(part)) return false;
  }
  return true;
}
