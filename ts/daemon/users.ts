// The user database as the system's name service gives it (`getent passwd`: /etc/passwd, and
// whatever nsswitch.conf adds: LDAP, sssd, systemd's users), for --user and ~user paths alike.

// Not git (ts/git.ts runs that): getent, the name service's own client.
import { execFile } from 'node:child_process';
import { MpgitError } from '../errors.js';

/** Longest wait for the name service (a remote directory may be slow). */
const GETENT_TIMEOUT_MS = 5000;

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One passwd line (name:password:uid:gid:gecos:home:shell), or null when it is not one. */
export function parsePasswdLine(line: string): UserEntry | null {
  const f = line.split(':');
  if (f.length < 7 || !f[0] || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return null;
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

/** The user named `user` (a name or a numeric id), or null when the name service knows none. */
export function lookupUser(user: string): Promise<UserEntry | null> {
  return new Promise((resolve, reject) => {
    // `--` keeps a name starting with "-" from being read as an option.
    execFile('getent', ['passwd', '--', user], { timeout: GETENT_TIMEOUT_MS, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (!err) return resolve(parsePasswdLine(stdout.split('\n')[0]!));
      // getent exits 2 for "no such entry"; anything else means the lookup itself failed.
      if ((err as { code?: unknown }).code === 2) return resolve(null);
      reject(new MpgitError('MPGIT_USER_LOOKUP', `cannot look up user ${JSON.stringify(user)}: ${err.killed ? `no answer from the name service within ${GETENT_TIMEOUT_MS} ms` : err.message}`, 'check that getent (libc-bin) is installed and the name service (nsswitch.conf) answers'));
    });
  });
}
