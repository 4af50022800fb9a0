// Configuration given on the command line: `mpgit -c key=value <command>` goes into
// GIT_CONFIG_PARAMETERS exactly as git puts it there, so every git process mpgit runs sees it
// too; and the reading of GIT_CONFIG_PARAMETERS / GIT_CONFIG_COUNT for the parser without git.

import { MpgitError, UsageError } from '../errors.js';

import type { ConfigEntry } from '../repo/config.js';

/** git's sq_quote: 'it'\''s' */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** section.name or section.sub.name: section and name lower-cased (the subsection is kept). */
export function canonicalKey(key: string): string {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  if (first <= 0 || last === key.length - 1) throw new MpgitError('MPGIT_BAD_CONFIG', `key does not contain a section: ${key}`, 'write it as section.name=value');
  return `${key.slice(0, first).toLowerCase()}${key.slice(first, last)}.${key.slice(last + 1).toLowerCase()}`;
}

/**
 * Takes the leading `-c key=value` options off `argv` (before the command name), appends them
 * to env.GIT_CONFIG_PARAMETERS as git does, and returns the rest of argv.
 */
export function takeConfigArgs(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const params: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    let spec: string | undefined;
    if (a === '-c') {
      spec = argv[++i];
      if (spec === undefined) throw new UsageError('-c expects a configuration string');
    } else if (a.startsWith('-c') && !a.startsWith('--')) spec = a.slice(2);
    else if (a.startsWith('--config-env=')) {
      // --config-env=name=ENVVAR: the value from the environment (keeps secrets out of ps).
      const rest = a.slice('--config-env='.length);
      const eq = rest.lastIndexOf('=');
      if (eq <= 0) throw new UsageError(`invalid config format: ${rest}`);
      const v = env[rest.slice(eq + 1)];
      if (v === undefined) throw new MpgitError('MPGIT_BAD_CONFIG', `missing environment variable '${rest.slice(eq + 1)}' for configuration '${rest.slice(0, eq)}'`);
      spec = `${rest.slice(0, eq)}=${v}`;
    } else break;
    const eq = spec.indexOf('=');
    const key = canonicalKey(eq < 0 ? spec : spec.slice(0, eq));
    params.push(eq < 0 ? sq(key) : `${sq(key)}=${sq(spec.slice(eq + 1))}`);
  }
  if (params.length) env.GIT_CONFIG_PARAMETERS = [env.GIT_CONFIG_PARAMETERS, ...params].filter(Boolean).join(' ');
  return argv.slice(i);
}

/** The command scope as git builds it: GIT_CONFIG_COUNT's pairs, then GIT_CONFIG_PARAMETERS. */
export function commandScopeEntries(env: NodeJS.ProcessEnv): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  const count = env.GIT_CONFIG_COUNT;
  if (count !== undefined && count !== '') {
    const n = Number(count);
    if (!Number.isInteger(n) || n < 0) throw new MpgitError('MPGIT_BAD_CONFIG', 'bogus count in GIT_CONFIG_COUNT');
    for (let k = 0; k < n; k++) {
      const key = env[`GIT_CONFIG_KEY_${k}`];
      const value = env[`GIT_CONFIG_VALUE_${k}`];
      if (key === undefined) throw new MpgitError('MPGIT_BAD_CONFIG', `missing config key GIT_CONFIG_KEY_${k}`);
      if (value === undefined) throw new MpgitError('MPGIT_BAD_CONFIG', `missing config value GIT_CONFIG_VALUE_${k}`);
      out.push({ key: canonicalKey(key), value });
    }
  }
  const text = env.GIT_CONFIG_PARAMETERS ?? '';
  let i = 0;
  const bad = () => new MpgitError('MPGIT_BAD_CONFIG', 'bogus format in GIT_CONFIG_PARAMETERS', 'unset GIT_CONFIG_PARAMETERS or fix its quoting');
  // A run of '...' pieces (with \' between them for quotes) is one word.
  const word = (): string => {
    let s = '';
    while (text[i] === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw bad();
      s += text.slice(i + 1, end);
      i = end + 1;
      if (text.startsWith("\\'", i)) {
        s += "'";
        i += 2;
      }
    }
    return s;
  };
  while (i < text.length) {
    if (/\s/.test(text[i]!)) {
      i++;
      continue;
    }
    if (text[i] !== "'") throw bad();
    const first = word();
    if (text[i] === '=') {
      i++;
      const value = text[i] === "'" ? word() : '';
      out.push({ key: canonicalKey(first), value });
    } else {
      // The older form 'key=value' (or 'key' alone).
      const eq = first.indexOf('=');
      out.push(eq < 0 ? { key: canonicalKey(first), value: null } : { key: canonicalKey(first.slice(0, eq)), value: first.slice(eq + 1) });
    }
  }
  return out;
}
