// The git config file format (git-config "CONFIGURATION FILE"): enough to read what fetch
// needs (remote.<name>.url/fetch/tagopt, branch.<name>.merge) from configs git or mpgit
// wrote, and to write the config of a new clone.

import { readFileSync, existsSync } from 'node:fs';
import { MpgitError } from '../errors.js';

export interface ConfigEntry {
  key: string;
  /** null: the key alone ("[x] flag", `-c x.flag`), which git reads as true. */
  value: string | null;
}

/** The entries of one config file in order (keys canonical: section and name lower-cased). */
export function parseConfigText(text: string, file = 'config'): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  let section: string | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const where = `${file}:${i + 1}`;
    // A value may continue on the next line after a backslash.
    while (/(^|[^\\])(\\\\)*\\\r?$/.test(line) && i + 1 < lines.length) line = line.replace(/\\\r?$/, '') + lines[++i]!;
    let t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';')) continue;
    if (t.startsWith('[')) {
      const m = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$/.exec(t);
      if (!m) throw bad(`bad section header in ${where}: ${t}`);
      const [name, sub] = [m[1]!, m[2]];
      // [section.subsection] (old syntax): the subsection is lower-cased too.
      section = sub !== undefined ? `${name.toLowerCase()}.${sub.replace(/\\(.)/g, '$1')}` : name.toLowerCase();
      // A key may follow the header on the same line: "[core] bare = true".
      t = m[3]!.trim();
      if (!t || /^[#;]/.test(t)) continue;
    }
    if (section === null) throw bad(`key outside any section in ${where}`);
    const m = /^([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$/.exec(t);
    if (!m) throw bad(`bad config line ${where}: ${t}`);
    out.push({ key: `${section}.${m[1]!.toLowerCase()}`, value: m[2] === undefined ? null : parseValue(m[2], where) });
  }
  return out;
}

const bad = (message: string) => new MpgitError('MPGIT_BAD_CONFIG', message, 'fix the file (git config --edit), or remove the line');

/** Key as "section.subsection.name" (section and name lower-cased) -> values in order. */
export class GitConfig {
  private values = new Map<string, string[]>();

  /** Entries from files and the command line, later ones winning; a key alone reads as "true". */
  static fromEntries(entries: Iterable<ConfigEntry>): GitConfig {
    const cfg = new GitConfig();
    for (const e of entries) {
      const list = cfg.values.get(e.key) ?? [];
      list.push(e.value ?? 'true');
      cfg.values.set(e.key, list);
    }
    return cfg;
  }

  static parse(text: string, file = 'config'): GitConfig {
    return GitConfig.fromEntries(parseConfigText(text, file));
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

  /** Every key under a section (and subsection): "url" -> url.<base>.insteadof... */
  keys(): IterableIterator<string> {
    return this.values.keys();
  }

  /** git's boolean: true/yes/on/1 (or the key alone), false/no/off/0/empty; undefined if unset. */
  getBool(key: string): boolean | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    const l = v.toLowerCase();
    if (['true', 'yes', 'on'].includes(l)) return true;
    if (['false', 'no', 'off', ''].includes(l)) return false;
    if (/^-?\d+$/.test(l)) return Number(l) !== 0;
    throw new MpgitError('MPGIT_BAD_CONFIG', `bad boolean config value '${v}' for '${key}'`, 'use true or false');
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
      if (n === undefined || !(n in esc)) throw bad(`bad escape in config value at ${where}`);
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
  if (quoted) throw bad(`unterminated quote in config value at ${where}`);
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
