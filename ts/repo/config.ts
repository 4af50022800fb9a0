// The git config file format (git-config "CONFIGURATION FILE"): enough to read what fetch
// needs (remote.<name>.url/fetch/tagopt, branch.<name>.merge) from configs git or mpgit
// wrote, and to write the config of a new clone.

import { readFileSync, existsSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/** Key as "section.subsection.name" (section and name lower-cased) -> values in file order. */
export class GitConfig {
  private values = new Map<string, string[]>();

  static parse(text: string, file = 'config'): GitConfig {
    const cfg = new GitConfig();
    let section: string | null = null;
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i]!;
      const where = `${file}:${i + 1}`;
      // A value may continue on the next line after a backslash.
      while (/(^|[^\\])(\\\\)*\\\r?$/.test(line) && i + 1 < lines.length) line = line.replace(/\\\r?$/, '') + lines[++i]!;
      const t = line.trim();
      if (!t || t.startsWith('#') || t.startsWith(';')) continue;
      if (t.startsWith('[')) {
        const m = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$/.exec(t);
        if (!m || (m[3] && !/^[#;]/.test(m[3]))) throw new ConfigError(`bad section header in ${where}: ${t}`);
        const [name, sub] = [m[1]!, m[2]];
        if (sub !== undefined) section = `${name.toLowerCase()}.${sub.replace(/\\(.)/g, '$1')}`;
        else {
          // [section.subsection] (old syntax): the subsection is lower-cased too.
          section = name.toLowerCase();
        }
        continue;
      }
      if (section === null) throw new ConfigError(`key outside any section in ${where}`);
      const m = /^([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$/.exec(t);
      if (!m) throw new ConfigError(`bad config line ${where}: ${t}`);
      const key = `${section}.${m[1]!.toLowerCase()}`;
      const value = m[2] === undefined ? 'true' : parseValue(m[2], where);
      const list = cfg.values.get(key) ?? [];
      list.push(value);
      cfg.values.set(key, list);
    }
    return cfg;
  }

  static load(path: string): GitConfig {
    return existsSync(path) ? GitConfig.parse(readFileSync(path, 'utf8'), path) : new GitConfig();
  }

  private static norm(key: string): string {
    const first = key.indexOf('.');
    const last = key.lastIndexOf('.');
    if (first < 0) return key.toLowerCase();
    // section and variable names are case-insensitive, subsections are not
    return `${key.slice(0, first).toLowerCase()}${key.slice(first, last)}.${key.slice(last + 1).toLowerCase()}`;
  }

  get(key: string): string | undefined {
    const v = this.values.get(GitConfig.norm(key));
    return v?.[v.length - 1];
  }

  getAll(key: string): string[] {
    return this.values.get(GitConfig.norm(key)) ?? [];
  }

  /** Every key ("section.subsection.name", as get() takes it) with its values in file order. */
  entries(): [string, string[]][] {
    return [...this.values];
  }
}

function parseValue(raw: string, where: string): string {
  let out = '';
  let quoted = false;
  let pendingSpace = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (!quoted && (c === '#' || c === ';')) break;
    if (c === '"') {
      quoted = !quoted;
      continue;
    }
    if (c === '\\') {
      const n = raw[++i];
      const esc: Record<string, string> = { n: '\n', t: '\t', b: '\b', '\\': '\\', '"': '"' };
      if (n === undefined || !(n in esc)) throw new ConfigError(`bad escape in config value at ${where}`);
      out += pendingSpace + esc[n];
      pendingSpace = '';
      continue;
    }
    if (!quoted && (c === ' ' || c === '\t')) {
      pendingSpace += c;
      continue;
    }
    out += pendingSpace + c;
    pendingSpace = '';
  }
  if (quoted) throw new ConfigError(`unterminated quote in config value at ${where}`);
  return out;
}

/** Quotes a value for writing when it needs it. */
function quote(v: string): string {
  const escaped = v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  return /^\s|\s$|[#;]/.test(v) ? `"${escaped}"` : escaped;
}

/** A config file from sections: [["core", null, [["bare","false"]]], ["remote", "origin", ...]]. */
export function formatConfig(sections: [string, string | null, [string, string][]][]): string {
  let text = '';
  for (const [name, sub, entries] of sections) {
    text += sub === null ? `[${name}]\n` : `[${name} "${sub.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"]\n`;
    for (const [k, v] of entries) text += `\t${k} = ${quote(v)}\n`;
  }
  return text;
}
