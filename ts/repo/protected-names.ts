// Names a checkout refuses, as git's verify_path does with its defaults: `.git` in any case,
// and what NTFS would take for it (core.protectNTFS, on by default everywhere: `git~1`,
// `.git ` and `.git.`, also after a backslash) or HFS+ would (core.protectHFS, on by default on
// macOS: `.git` with code points HFS+ ignores); for symbolic links, `.gitmodules` read the same
// ways. The Rust checkout has the same rules (crates/core/src/odb/parse.rs).

const HFS = process.platform === 'darwin';

/** Only spaces and periods up to the end, a backslash or (for NTFS streams) a colon. */
function onlySpacesAndPeriods(rest: string, colonEnds: boolean): boolean {
  for (const c of rest) {
    if (c === '\\' || (colonEnds && c === ':')) return true;
    if (c !== ' ' && c !== '.') return false;
  }
  return true;
}

/** git's is_ntfs_dotgit. */
function ntfsDotgit(name: string): boolean {
  const lower = name.slice(0, 5).toLowerCase();
  if (lower.startsWith('.git')) return onlySpacesAndPeriods(name.slice(4), false);
  if (lower === 'git~1') return onlySpacesAndPeriods(name.slice(5), false);
  return false;
}

/** git's is_ntfs_dot_generic: `.<name>`, `<first 6>~1..4`, or a fall-back `<prefix>~N`. */
function ntfsDotGeneric(name: string, dotName: string, shortPrefix: string): boolean {
  const len = dotName.length;
  if (name[0] === '.' && name.slice(1, len + 1).toLowerCase() === dotName) return onlySpacesAndPeriods(name.slice(len + 1), true);
  if (name.slice(0, 6).toLowerCase() === dotName.slice(0, 6) && name[6] === '~' && name[7]! >= '1' && name[7]! <= '4') return onlySpacesAndPeriods(name.slice(8), true);
  let sawTilde = false;
  for (let i = 0; i < 8; i++) {
    const c = name[i];
    if (c === undefined) return false;
    if (sawTilde) {
      if (c < '0' || c > '9') return false;
    } else if (c === '~') {
      const d = name[++i];
      if (d === undefined || d < '1' || d > '9') return false;
      sawTilde = true;
    } else if (i >= 6 || c.charCodeAt(0) > 0x7f || c.toLowerCase() !== shortPrefix[i]) return false;
  }
  return onlySpacesAndPeriods(name.slice(8), true);
}

/** Code points HFS+ ignores in names. */
const HFS_IGNORED = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/** git's is_hfs_dot_generic. */
function hfsDot(name: string, needle: string): boolean {
  const n = name.replace(HFS_IGNORED, '');
  return n[0] === '.' && n.slice(1, needle.length + 1).toLowerCase() === needle && (n.length === needle.length + 1 || n[needle.length + 1] === '/');
}

/** The name, and what follows each backslash (a separator to NTFS). */
function ntfsComponents(name: string): string[] {
  const out = [name];
  for (let i = name.indexOf('\\'); i >= 0; i = name.indexOf('\\', i + 1)) out.push(name.slice(i + 1));
  return out;
}

/** Whether a tree entry name must not be checked out (`link`: the entry is a symbolic link). */
export function protectedName(name: string, link: boolean): boolean {
  if (name.toLowerCase() === '.git') return true;
  if (ntfsComponents(name).some(ntfsDotgit)) return true;
  if (HFS && hfsDot(name, 'git')) return true;
  if (!link) return false;
  return ntfsComponents(name).some((c) => ntfsDotGeneric(c, 'gitmodules', 'gi7eba')) || (HFS && hfsDot(name, 'gitmodules'));
}
