// --user and ~user paths read the user database through the name service (getent), so users
// that nsswitch.conf adds beyond /etc/passwd (LDAP, sssd, systemd's) are found as git finds them.

import test from 'ava';
import { join } from 'node:path';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { git, run, runOk, tempDir, MPGIT } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { lookupUser } from '../ts/daemon/users.js';

test('the user lookup gives what getent gives, by name and by id; an unknown user is null', async (t) => {
  for (const who of ['root', '0', 'nobody']) {
    const line = (await runOk('getent', ['passwd', who])).stdout.split('\n')[0]!.split(':');
    t.deepEqual(await lookupUser(who), { name: line[0], uid: Number(line[2]), gid: Number(line[3]), home: line[5] });
  }
  t.is(await lookupUser('mpgit-no-such-user'), null);
  t.is(await lookupUser('--help'), null);
});

test('--user finds a user the name service knows but /etc/passwd does not list', async (t) => {
  if (process.getuid?.() !== 0) return t.fail('this test needs root (it switches user and bind-mounts over /etc/passwd in a mount namespace)');
  // nss-systemd (passwd: files systemd) answers for "nobody" when /etc/passwd has no such line.
  const base = await tempDir(t, 'mpgit-user-');
  await chmod(base, 0o755);
  const passwd = join(base, 'passwd');
  await writeFile(passwd, (await readFile('/etc/passwd', 'utf8')).split('\n').filter((l) => !l.startsWith('nobody:')).join('\n'));
  const inNamespace = await run('unshare', ['--mount', 'sh', '-c', `mount --bind ${passwd} /etc/passwd && ! grep -q '^nobody:' /etc/passwd && getent passwd nobody`]);
  t.is(inNamespace.code, 0, `nobody must come from the name service, not /etc/passwd (needs libnss-systemd): ${inNamespace.stderr}`);

  const repo = join(base, 'repo.git');
  const head = await makeRepo(repo);
  await writeFile(join(repo, 'git-daemon-export-ok'), '');
  // git refuses to serve a repository owned by another user (safe.directory): give it to nobody.
  await runOk('chown', ['-R', 'nobody', repo]);
  const out = join(base, 'who');
  await mkdir(out, { mode: 0o777 });
  await chmod(out, 0o777);
  const hook = join(base, 'hook.sh');
  await writeFile(hook, `#!/bin/sh\nid -un > "${out}/user"\nexit 0\n`);
  await chmod(hook, 0o755);
  const log = join(base, 'daemon.log');
  const proxy = join(base, 'proxy.sh');
  const daemon = `"${process.execPath}" "${MPGIT}" daemon --inetd --user=nobody --base-path="${base}" --access-hook="${hook}"`;
  await writeFile(proxy, `#!/bin/sh\nexec unshare --mount sh -c 'mount --bind "${passwd}" /etc/passwd && exec ${daemon.replace(/'/g, "'\\''")}' 2>>"${log}"\n`);
  await chmod(proxy, 0o755);
  const r = await git(['ls-remote', 'git://user.invalid/repo.git'], { env: { GIT_PROXY_COMMAND: proxy } });
  t.regex(r.stdout, new RegExp(`^${head}\\tHEAD$`, 'm'), await readFile(log, 'utf8').catch(() => ''));
  t.is((await readFile(join(out, 'user'), 'utf8')).trim(), 'nobody');
});
