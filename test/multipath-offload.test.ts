import test, { type ExecutionContext } from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NetBed } from './netbed/bed.js';
import { git, mpgit, MPGIT, start, tempDir } from './helpers/proc.js';
import { bigRepo } from './helpers/offload.js';
import { nginxConfig, type AccessEntry } from './helpers/nginx.js';

// Packfile URIs over the two-link bed: a clone asked to use MPTCP gets the offloaded packs from
// an MPTCP-capable HTTP server (nginx under mptcpize) over MPTCP too, on both links.

const DAEMON_PORT = 9418;
const HTTP_PORT = 8080;

/** nginx serving `root` on every address of the server namespace, its sockets made MPTCP. */
async function mptcpNginx(t: ExecutionContext, bed: NetBed, root: string): Promise<{ accessLog(): Promise<AccessEntry[]> }> {
  const dir = await tempDir(t, 'mpgit-bed-nginx-');
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const log = join(dir, 'access.log');
  await writeFile(log, '');
  await writeFile(join(dir, 'nginx.conf'), nginxConfig(dir, { listen: `0.0.0.0:${HTTP_PORT}`, root, log }));
  const [cmd, args] = bed.argv('server', 'mptcpize', ['run', 'nginx', '-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);
  const nginx = start(t, cmd, args);
  // Listening (as MPTCP) once ss in the namespace shows the socket.
  const deadline = Date.now() + 10_000;
  while (!(await bed.run('server', 'ss', ['-Mlnt'])).stdout.includes(`:${HTTP_PORT}`)) {
    if (nginx.child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not listen as MPTCP on ${HTTP_PORT}: ${nginx.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { accessLog: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AccessEntry) };
}

test('with --mptcp the packfile-URI download also goes over MPTCP, on both links', async (t) => {
  const bed = await NetBed.create({ rateMbit: 100 });
  t.teardown(() => bed.destroy());
  const root = await tempDir(t, 'mpgit-bed-offload-');
  const base = join(root, 'srv');
  const pub = join(root, 'pub');
  await mkdir(base, { recursive: true });
  await mkdir(pub, { recursive: true });
  const repo = join(base, 'repo.git');
  await bigRepo(repo, { big: 12, bigBytes: 1_000_000 });
  const off = await mpgit(['offload', repo, '--publish', pub, '--base-url', `http://${bed.serverAddr}:${HTTP_PORT}/`, '--min-size', '100k']);
  t.is(off.code, 0, off.stderr);
  const nginx = await mptcpNginx(t, bed, pub);
  const [cmd, args] = bed.argv('server', process.execPath, [MPGIT, 'daemon', '--mptcp', '--export-all', `--base-path=${base}`, '--listen=0.0.0.0', `--port=${DAEMON_PORT}`]);
  const daemon = start(t, cmd, args);
  await daemon.waitFor(/Ready to rumble/);

  const http = bed.monitor('client', HTTP_PORT);
  const dir = join(root, 'clone');
  const r = await bed.run('client', process.execPath, [MPGIT, 'clone', '--mptcp', '-v', `git://${bed.serverAddr}:${DAEMON_PORT}/repo.git`, dir], { timeoutMs: 120_000 });
  const seen = await http.stop();
  t.is(r.code, 0, r.stderr);
  const fsck = await git(['fsck', '--strict'], { cwd: dir });
  t.is(fsck.stdout, '');
  // The packs came by URI...
  const gets = (await nginx.accessLog()).filter((e) => e.method === 'GET' && e.uri.endsWith('.pack'));
  t.true(gets.length > 0, 'no pack was downloaded from nginx: the clone did not use packfile URIs');
  // ...over MPTCP (the kernel's view from the client namespace), with a subflow on each link.
  t.false(seen.fallback, 'an HTTP download fell back to TCP although nginx speaks MPTCP');
  t.true(seen.mptcp, 'the packfile-URI download went over plain TCP although --mptcp was given');
  t.is(seen.maxSubflows, 2);
});
