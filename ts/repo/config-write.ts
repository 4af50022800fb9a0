// Setting one value in a git config file, as `git config <key> <value>` does for the keys a
// clone or fetch records (fetch.bundleURI, fetch.bundleCreationToken): the last existing entry
// is replaced in place, else the value goes into the section's last header, else a new section
// is appended. Everything else in the file is kept byte for byte.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/** Quotes a value where git's parser would otherwise change it. */
function quote(value: string): string {
  const escaped = value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  return /[#;"\\\n\t]|^\s|\s$/.test(value) ? `"${escaped}"` : escaped;
}

/** Sets `section.name` (no subsection) in the config file at `path`. */
export function setConfigValue(path: string, key: string, value: string): void {
  const dot = key.indexOf('.');
  if (dot <= 0 || key.indexOf('.', dot + 1) >= 0) throw new Error(`setConfigValue: ${key} is not section.name`);
  const section = key.slice(0, dot).toLowerCase();
  const name = key.slice(dot + 1);
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let inSection = false;
  let lastHeader = -1;
  let lastEntry = -1;
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.trim();
    const h = /^\[\s*([A-Za-z0-9.-]+)\s*(?:"[^"]*")?\s*\]/.exec(t);
    if (h) {
      inSection = h[1]!.toLowerCase() === section && !/"/.test(t);
      if (inSection) lastHeader = i;
      continue;
    }
    const m = /^([A-Za-z][A-Za-z0-9-]*)\s*(=|$)/.exec(t);
    if (inSection && m && m[1]!.toLowerCase() === name.toLowerCase()) lastEntry = i;
  }
  const line = `\t${name} = ${quote(value)}`;
  if (lastEntry >= 0) lines[lastEntry] = line;
  else if (lastHeader >= 0) lines.splice(lastHeader + 1, 0, line);
  else lines.push(`[${section}]`, line);
  const tmp = `${path}.lock`;
  writeFileSync(tmp, lines.join('\n') + '\n', { flag: 'wx' });
  renameSync(tmp, path);
}
