// `mpgit daemon` serving stock git 2.39: clone / ls-remote / fetch over protocol v0 and v2,
// shallow clones, archive, push; refusals (not exported, escaping paths, malformed and oversize
// requests, too many connections) as ERR lines git prints; --inetd, the access hook, the config
// file and the JSON log.

import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { git, mpgit, run, runOk, tempDir, MPGIT } from './helpers/proc.js';
import { makeRepo } from './helpers/repo.js';
import { holdConnection, logLines, rawExchange, startDaemon } from './helpers/daemon.js';
import { encodeRequest } from '../ts/protocol/request.js';
import { pkt } from '../ts/pktline.js';

interface Served {
  base: string;
  repo: string;
  head: string;
}

/** A base directory holding repo.git (exported with git-daemon-export-ok unless told). */
async function served(t: ExecutionContext, opts: { exported?: boolean } = {}): Promise<Served> {
  const base = await tempDir(t, 'mpgit-daemon-');
  const repo = join(base, 'repo.git');
  const head = await makeRepo(repo);
  if (opts.exported ?? true) await writeFile(join(repo, 'git-daemon-export-ok'), '');
  return { base, repo, head };
}

/** Adds a commit on main in a bare repository; returns its id. */
async function commitUpstream(repo: string, message: string): Promise<string> {
  const tree = (await git(['rev-parse', 'main^{tree}'], { cwd: repo })).stdout.trim();
  const c = (await git(['commit-tree', tree, '-p', 'main', '-m', message], { cwd: repo })).stdout.trim();
  await git(['update-ref', 'refs/heads/main', c], { cwd: repo });
  return c;
}

const request = (path: string, extra: string[] = []) => encodeRequest({ service: 'git-upload-pack', path, host: '127.0.0.1', extra });

for (const v of [0, 2]) {
  test(`clone, ls-remote and fetch with protocol.version=${v}`, async (t) => {
    const s = await served(t);
    const d = await startDaemon(t, [`--base-path=${s.base}`]);
    const cfg = ['-c', `protocol.version=${v}`];

    const traced = await git([...cfg, 'ls-remote', d.url('repo.git')], { env: { GIT_TRACE_PACKET: '1' } });
    t.is(traced.stdout, (await git(['ls-remote', s.repo])).stdout, 'same refs as the repository has');
    // The server really spoke the version asked for: GIT_PROTOCOL reached upload-pack.
    if (v === 2) t.regex(traced.stderr, /< version 2/);
    else t.notRegex(traced.stderr, /< version 2/);

    const work = join(s.base, 'work');
    await git([...cfg, 'clone', '-q', d.url('repo'), work]); // "repo" finds repo.git, as git daemon does
    t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), s.head);

    const next = await commitUpstream(s.repo, 'next');
    await git([...cfg, 'fetch', '-q', 'origin'], { cwd: work });
    t.is((await git(['rev-parse', 'origin/main'], { cwd: work })).stdout.trim(), next);
    await git(['fsck', '--strict'], { cwd: work });

    const protoLines = logLines(d, /Extended attribute "protocol": version=2/);
    t.is(protoLines.length, v === 2 ? 3 : 0, d.proc.output());
    t.is(logLines(d, /Request upload-pack for '\/repo(\.git)?'/).length, 3);
    t.is(logLines(d, /Disconnected: upload-pack exited 0; mptcp no, 1 subflow carried it .* [1-9]\d* bytes sent/).length, 3, d.proc.output());
  });
}

test('shallow clone (and --timeout reaches upload-pack)', async (t) => {
  const s = await served(t);
  const d = await startDaemon(t, [`--base-path=${s.base}`, '--timeout=77']);
  for (const v of [0, 2]) {
    const work = join(s.base, `shallow${v}`);
    await git(['-c', `protocol.version=${v}`, 'clone', '-q', '--depth=1', d.url('repo.git'), work]);
    t.is((await git(['rev-parse', '--is-shallow-repository'], { cwd: work })).stdout.trim(), 'true');
    t.is((await git(['rev-list', '--count', 'HEAD'], { cwd: work })).stdout.trim(), '1');
    t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), s.head);
  }
  // v0 runs upload-pack on the socket; v2's fetch runs it once per request (--stateless-rpc).
  t.is(logLines(d, /Serving '.*repo\.git' with git upload-pack (--stateless-rpc )?--strict --timeout=77 \. \(pid \d+\)/).length, 2, d.proc.output());
});

test('git archive --remote: served with --enable=upload-archive or daemon.uploadarch, refused otherwise', async (t) => {
  const s = await served(t);
  const off = await startDaemon(t, [`--base-path=${s.base}`]);
  const refused = await run('git', ['archive', `--remote=${off.url('repo.git')}`, '--format=tar', 'main']);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /remote error: access denied or repository not exported: \/repo\.git/);
  t.regex(off.proc.output(), /'upload-archive': service not enabled for '.*repo\.git'/);

  const on = await startDaemon(t, [`--base-path=${s.base}`, '--enable=upload-archive']);
  const tar = join(s.base, 'out.tar');
  await git(['archive', `--remote=${on.url('repo.git')}`, '--format=tar', '-o', tar, 'main']);
  const list = (await runOk('tar', ['tf', tar])).stdout.split('\n');
  t.true(list.includes('README.md') && list.includes('src/dir0/file0.txt'), list.join(' '));

  // A repository may switch it on for itself (git daemon's "overridable" services) ...
  await git(['config', 'daemon.uploadarch', 'true'], { cwd: s.repo });
  await git(['archive', `--remote=${off.url('repo.git')}`, '--format=tar', '-o', tar, 'main']);
  // ... unless the daemon forbids overriding.
  const strict = await startDaemon(t, [`--base-path=${s.base}`, '--forbid-override=upload-archive']);
  t.not((await run('git', ['archive', `--remote=${strict.url('repo.git')}`, '--format=tar', 'main'])).code, 0);
});

test('push works with --enable=receive-pack and is refused without it', async (t) => {
  const s = await served(t);
  const ro = await startDaemon(t, [`--base-path=${s.base}`]);
  const rw = await startDaemon(t, [`--base-path=${s.base}`, '--enable=receive-pack']);
  const work = join(s.base, 'work');
  await git(['clone', '-q', ro.url('repo.git'), work]);
  await writeFile(join(work, 'pushed.txt'), 'pushed\n');
  await git(['add', 'pushed.txt'], { cwd: work });
  await git(['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-qm', 'pushed'], { cwd: work });
  const mine = (await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();

  const refused = await run('git', ['push', ro.url('repo.git'), 'HEAD:refs/heads/pushed'], { cwd: work });
  t.not(refused.code, 0);
  t.regex(refused.stderr, /remote error: access denied or repository not exported: \/repo\.git/);
  t.regex(ro.proc.output(), /Request receive-pack for '\/repo\.git'/);
  t.is((await run('git', ['rev-parse', '--verify', '-q', 'refs/heads/pushed'], { cwd: s.repo })).code, 1, 'nothing was pushed');

  await git(['push', '-q', rw.url('repo.git'), 'HEAD:refs/heads/pushed'], { cwd: work });
  t.is((await git(['rev-parse', 'refs/heads/pushed'], { cwd: s.repo })).stdout.trim(), mine);
  await git(['fsck', '--strict'], { cwd: s.repo });
});

test('a repository without git-daemon-export-ok is refused unless --export-all', async (t) => {
  const s = await served(t, { exported: false });
  const d = await startDaemon(t, [`--base-path=${s.base}`]);
  const r = await run('git', ['ls-remote', d.url('repo.git')]);
  t.not(r.code, 0);
  t.regex(r.stderr, /fatal: remote error: access denied or repository not exported: \/repo\.git/);
  t.regex(d.proc.output(), /'.*repo\.git': repository not exported\./);

  const informative = await startDaemon(t, [`--base-path=${s.base}`, '--informative-errors']);
  t.regex((await run('git', ['ls-remote', informative.url('repo.git')])).stderr, /remote error: repository not exported: \/repo\.git/);
  t.regex((await run('git', ['ls-remote', informative.url('nothing.git')])).stderr, /remote error: no such repository: \/nothing\.git/);

  const all = await startDaemon(t, [`--base-path=${s.base}`, '--export-all']);
  t.regex((await git(['ls-remote', all.url('repo.git')])).stdout, /refs\/heads\/main/);
  await writeFile(join(s.repo, 'git-daemon-export-ok'), '');
  t.regex((await git(['ls-remote', d.url('repo.git')])).stdout, /refs\/heads\/main/);
});

test('paths that escape the base path are refused', async (t) => {
  const s = await served(t);
  const root = join(s.base, '..', `outside-${process.pid}-${Date.now()}`);
  await mkdir(root);
  t.teardown(() => runOk('rm', ['-rf', root]));
  await makeRepo(join(root, 'secret.git'));
  await writeFile(join(root, 'secret.git', 'git-daemon-export-ok'), '');
  await symlink(join(root, 'secret.git'), join(s.base, 'link.git')); // symlink out of the base
  await symlink(s.repo, join(s.base, 'alias.git')); // symlink within the base: fine
  const d = await startDaemon(t, [`--base-path=${s.base}`, '--export-all']);

  const name = root.split('/').pop()!;
  for (const path of [`/../${name}/secret.git`, '/link.git', `//${name}/secret.git`, '/./repo.git', '/repo.git/..', '~root/repo.git', 'repo.git']) {
    const r = await rawExchange(d.port, request(path));
    t.is(r.text, `ERR access denied or repository not exported: ${path}`, `request for ${path}`);
  }
  t.regex(d.proc.output(), /'\/\.\.\/.*': aliased/);
  t.regex(d.proc.output(), /link\.git': resolves to .*secret\.git, outside /);
  t.regex(d.proc.output(), /'~root\/repo\.git': User-path not allowed/);
  t.regex(d.proc.output(), /'repo\.git': aliased/); // relative: refused before any lookup, as git does

  // Stock git shows the refusal as the remote's error.
  const viaGit = await run('git', ['ls-remote', d.url('link.git')]);
  t.regex(viaGit.stderr, /fatal: remote error: access denied or repository not exported: \/link\.git/);
  // Controls: the repository itself, and a symlink that stays inside the base.
  t.regex((await rawExchange(d.port, request('/repo.git'))).text, /^[0-9a-f]{40} HEAD\0/);
  t.regex((await git(['ls-remote', d.url('alias.git')])).stdout, /refs\/heads\/main/);
});

test('--base-path-relaxed: a path not under the base is looked up as it is, with every check still applied', async (t) => {
  const s = await served(t);
  const old = await tempDir(t, 'mpgit-relaxed-');
  const head = await makeRepo(join(old, 'allowed', 'old.git'));
  await writeFile(join(old, 'allowed', 'old.git', 'git-daemon-export-ok'), '');
  await makeRepo(join(old, 'allowed', 'private.git')); // not exported
  await makeRepo(join(old, 'other', 'stray.git'));
  await writeFile(join(old, 'other', 'stray.git', 'git-daemon-export-ok'), '');
  await symlink(join(old, 'other', 'stray.git'), join(old, 'allowed', 'link.git')); // leaves the allow-list
  const oldPath = join(old, 'allowed', 'old.git');

  // Without the flag the old absolute path is looked up under the base only.
  const plain = await startDaemon(t, [`--base-path=${s.base}`]);
  t.regex((await run('git', ['ls-remote', plain.url(oldPath)])).stderr, /remote error: access denied or repository not exported/);
  t.regex(plain.proc.output(), new RegExp(`'${s.base}${oldPath}' does not appear to be a git repository`));

  const d = await startDaemon(t, [`--base-path=${s.base}`, '--base-path-relaxed', '--informative-errors', s.base, join(old, 'allowed')]);
  const work = join(s.base, 'work');
  await git(['clone', '-q', d.url(oldPath), work]);
  t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), head);
  t.regex(d.proc.output(), new RegExp(`'${oldPath}' is not under the base path: found as it is \\(--base-path-relaxed\\)`));
  // The new paths still come first, and still work.
  t.regex((await git(['ls-remote', d.url('repo.git')])).stdout, /refs\/heads\/main/);

  const refusals: [string, RegExp, RegExp][] = [
    [join(old, 'allowed', 'private.git'), /remote error: repository not exported/, /private\.git': repository not exported\./],
    [join(old, 'other', 'stray.git'), /remote error: no such repository/, /stray\.git': not in directory list/],
    [join(old, 'allowed', 'link.git'), /remote error: no such repository/, /link\.git': not in directory list/],
    [`${join(old, 'allowed')}/../other/stray.git`, /remote error: no such repository/, /\/\.\.\/other\/stray\.git': aliased/],
    ['/nowhere/x.git', /remote error: no such repository/, new RegExp(`'${s.base}/nowhere/x\\.git' does not appear to be a git repository \\(nor does '/nowhere/x\\.git'\\)`)],
  ];
  for (const [path, client, logged] of refusals) {
    const r = await rawExchange(d.port, request(path));
    t.regex(`remote error: ${r.text.replace(/^ERR /, '')}`, client, path);
    t.regex(d.proc.output(), logged, path);
  }

  // --export-all lifts the export check for relaxed paths as for any other.
  const all = await startDaemon(t, [`--base-path=${s.base}`, '--base-path-relaxed', '--export-all', s.base, join(old, 'allowed')]);
  t.regex((await git(['ls-remote', all.url(join(old, 'allowed', 'private.git'))])).stdout, /refs\/heads\/main/);

  // --strict-paths: the relaxed path must be exact, and the allow-list must name it.
  const strict = await startDaemon(t, [`--base-path=${s.base}`, '--base-path-relaxed', '--strict-paths', oldPath]);
  t.regex((await git(['ls-remote', strict.url(oldPath)])).stdout, /refs\/heads\/main/);
  t.regex((await run('git', ['ls-remote', strict.url(oldPath.replace(/\.git$/, ''))])).stderr, /remote error: access denied/);
  t.regex((await run('git', ['ls-remote', strict.url(join(old, 'allowed', 'private.git'))])).stderr, /remote error: access denied/);
  t.regex(strict.proc.output(), /private\.git': not in directory list/);
});

test('the directory allow-list limits what is served', async (t) => {
  const base = await tempDir(t, 'mpgit-daemon-');
  await makeRepo(join(base, 'allowed', 'a.git'));
  await makeRepo(join(base, 'other', 'b.git'));
  const d = await startDaemon(t, ['--export-all', join(base, 'allowed')]);
  t.regex((await git(['ls-remote', d.url(join(base, 'allowed', 'a.git'))])).stdout, /refs\/heads\/main/);
  const r = await run('git', ['ls-remote', d.url(join(base, 'other', 'b.git'))]);
  t.regex(r.stderr, /remote error: access denied or repository not exported/);
  t.regex(d.proc.output(), /b\.git': not in directory list/);
});

test('oversize and malformed request lines get an ERR, and the daemon carries on', async (t) => {
  const s = await served(t);
  const d = await startDaemon(t, [`--base-path=${s.base}`, '--export-all']);
  const cases: [string, Buffer, RegExp][] = [
    ['oversize', pkt(`git-upload-pack /${'x'.repeat(9000)}\0host=127.0.0.1\0`), /^ERR protocol error: request line of 9\d{3} bytes exceeds the limit of 8192$/],
    ['bad header', Buffer.from('zzzzgit-upload-pack /repo.git\0'), /^ERR protocol error: bad pkt-line header "zzzz"/],
    ['reserved length', Buffer.from('0003'), /^ERR protocol error: bad pkt-line length 3/],
    ['flush instead of a request', Buffer.from('0000'), /^ERR protocol error: request line is a special packet/],
    ['no path', pkt('git-upload-pack\0host=127.0.0.1\0'), /^ERR protocol error: malformed request line: no space/],
    ['unknown service', pkt('git-frobnicate /repo.git\0'), /^ERR protocol error: unknown service "git-frobnicate"/],
    ['bad host', pkt('git-upload-pack /repo.git\0host=bad host!\0'), /^ERR protocol error: malformed host parameter/],
    ['unterminated parameters', pkt('git-upload-pack /repo.git\0host=127.0.0.1'), /^ERR protocol error: malformed request line: parameters must end in NUL/],
  ];
  for (const [what, bytes, re] of cases) {
    const r = await rawExchange(d.port, bytes);
    t.regex(r.text, re, what);
    t.true(r.closed, `${what}: the daemon hung up`);
  }
  t.is(logLines(d, /Protocol error: /).length, cases.length, d.proc.output());
  t.regex((await git(['ls-remote', d.url('repo.git')])).stdout, /refs\/heads\/main/);

  // A request that stops halfway gets the init timeout.
  const slow = await startDaemon(t, [`--base-path=${s.base}`, '--export-all', '--init-timeout=1']);
  const r = await rawExchange(slow.port, Buffer.from('0100git-upload-pack /re'));
  t.is(r.text, 'ERR timed out waiting for the request line (1 s)');
  t.true(r.closed);
  t.is(logLines(slow, /Timeout: no request line within 1 s/).length, 1);
});

test('--max-connections: the connection over the limit gets an ERR', async (t) => {
  const s = await served(t);
  const d = await startDaemon(t, [`--base-path=${s.base}`, '--max-connections=1']);
  // A transfer in progress (a v2 session waiting for its command): connections that have not
  // sent their request line yet do not count (they have --max-pending).
  const held = await holdConnection(t, d.port);
  held.write(request('/repo.git', ['version=2']));
  await d.proc.waitFor(/\[\d+:1\] Serving/);
  const r = await run('git', ['ls-remote', d.url('repo.git')]);
  t.not(r.code, 0);
  t.regex(r.stderr, /fatal: remote error: too many connections: the server allows 1; try again later/);
  t.regex(d.proc.output(), /Too many connections \(limit 1\)/);
  held.destroy();
  await d.proc.waitFor(/\[\d+:1\] Disconnected/);
  t.regex((await git(['ls-remote', d.url('repo.git')])).stdout, /refs\/heads\/main/);
});

test('--inetd serves one connection on stdin/stdout (as a git proxy command)', async (t) => {
  const s = await served(t);
  const log = join(s.base, 'inetd.log');
  const proxy = join(s.base, 'proxy.sh');
  await writeFile(proxy, `#!/bin/sh\nexec "${process.execPath}" "${MPGIT}" daemon --inetd --verbose --enable=upload-archive --base-path="${s.base}" 2>>"${log}"\n`);
  await chmod(proxy, 0o755);
  const env = { GIT_PROXY_COMMAND: proxy };
  for (const v of [0, 2]) {
    const work = join(s.base, `inetd${v}`);
    await git(['-c', `protocol.version=${v}`, 'clone', '-q', 'git://inetd.invalid/repo.git', work], { env });
    t.is((await git(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim(), s.head);
  }
  // git archive sends its arguments right after the request: whatever the daemon read of them
  // is relayed to upload-archive, not lost.
  const tar = join(s.base, 'inetd.tar');
  await git(['archive', '--remote=git://inetd.invalid/repo.git', '--format=tar', '-o', tar, 'main'], { env });
  t.true((await runOk('tar', ['tf', tar])).stdout.split('\n').includes('README.md'));
  const r = await run('git', ['ls-remote', 'git://inetd.invalid/missing.git'], { env });
  t.regex(r.stderr, /remote error: access denied or repository not exported: \/missing\.git/);
  const text = await readFile(log, 'utf8');
  t.is(text.match(/Request upload-pack for '\/repo\.git'/g)?.length, 2, text);
  t.regex(text, /Extended attribute "host": inetd\.invalid/);
  t.regex(text, /'.*missing\.git' does not appear to be a git repository/);
});

test('the access hook sees each request and can refuse it with its message', async (t) => {
  const s = await served(t);
  await makeRepo(join(s.base, 'private.git'));
  await writeFile(join(s.base, 'private.git', 'git-daemon-export-ok'), '');
  const seen = join(s.base, 'hook.log');
  const hook = join(s.base, 'hook.sh');
  await writeFile(
    hook,
    `#!/bin/sh\necho "$1 $2 host=$3 port=$6 proto=$GIT_PROTOCOL addr=$REMOTE_ADDR" >> "${seen}"\ncase "$2" in *private*) echo "private repositories need a login"; exit 1;; esac\nexit 0\n`,
  );
  await chmod(hook, 0o755);
  const d = await startDaemon(t, [`--base-path=${s.base}`, `--access-hook=${hook}`]);
  await git(['-c', 'protocol.version=2', 'ls-remote', d.url('repo.git')]);
  const r = await run('git', ['ls-remote', d.url('private.git')]);
  t.regex(r.stderr, /fatal: remote error: private repositories need a login: \/private\.git/);
  const lines = (await readFile(seen, 'utf8')).trim().split('\n');
  t.regex(lines[0]!, new RegExp(`^upload-pack ${s.repo}.* host=127\\.0\\.0\\.1 port=${d.port} proto=version=2 addr=127\\.0\\.0\\.1$`));
  t.regex(lines[1]!, /^upload-pack .*private\.git/);
  t.regex(d.proc.output(), /access hook refused: private repositories need a login/);
});

test('a bad config file fails naming the key, the value and what is expected', async (t) => {
  const dir = await tempDir(t);
  const cases: [unknown, RegExp][] = [
    [{ port: 'abc' }, /key "port": value "abc" is not valid: expected an integer from 0 to 65535/],
    [{ listen: ['127.0.0.1', 5] }, /key "listen\[1\]": value 5 is not valid: expected a list of host names or IP addresses/],
    [{ basepath: '/srv' }, /key "basepath" is not a setting; known keys: basePath, /],
    [{ enable: ['upload-pack', 'ssh'] }, /key "enable\[1\]": value "ssh" is not valid: expected a list of services \(upload-pack, upload-archive, receive-pack\)/],
    [{ initTimeout: 0 }, /key "initTimeout": value 0 is not valid: expected a number of seconds above 0/],
  ];
  for (const [content, re] of cases) {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify(content));
    const r = await mpgit(['daemon', '--config', file]);
    t.is(r.code, 129, r.stderr);
    t.regex(r.stderr, re);
    t.regex(r.stderr, new RegExp(`config file ${file}`));
  }
  await writeFile(join(dir, 'broken.json'), '{"port": 9418,');
  t.regex((await mpgit(['daemon', '--config', join(dir, 'broken.json')])).stderr, /is not valid JSON/);
  t.regex((await mpgit(['daemon', '--port', 'abc'])).stderr, /option --port: value "abc" is not valid: expected an integer from 0 to 65535/);
  t.regex((await mpgit(['daemon', '--config', join(dir, 'missing.json')])).stderr, /cannot read config file/);
});

test('a config file configures the daemon and flags override it', async (t) => {
  const s = await served(t, { exported: false });
  const file = join(s.base, 'daemon.json');
  // The file says port 1 and no export-all; the flags override the port and turn export-all on.
  await writeFile(file, JSON.stringify({ basePath: s.base, listen: ['127.0.0.1'], port: 1, exportAll: false, informativeErrors: true }));
  const d = await startDaemon(t, ['--config', file, '--export-all'], { listen: false });
  t.regex(d.proc.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${d.port}`));
  t.regex((await git(['ls-remote', d.url('repo.git')])).stdout, /refs\/heads\/main/);
  t.regex((await run('git', ['ls-remote', d.url('nope.git')])).stderr, /remote error: no such repository: \/nope\.git/, 'informativeErrors from the file');
});

test('--log-format=json writes one JSON object per event', async (t) => {
  const s = await served(t);
  const d = await startDaemon(t, [`--base-path=${s.base}`, '--log-format=json']);
  await git(['ls-remote', d.url('repo.git')]);
  await run('git', ['ls-remote', d.url('nope.git')]);
  await d.proc.waitFor(/"event":"disconnected".*\n.*"event":"disconnected"/s);
  const events = d.proc
    .output()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const of = (e: string) => events.filter((x) => x.event === e);
  t.is(of('ready').length, 1);
  t.deepEqual((of('ready')[0]!.listeners as { port: number }[]).map((l) => l.port), [d.port]);
  t.is(of('connection').length, 2);
  t.is(of('connection')[0]!.mptcp, false);
  t.deepEqual(of('request').map((e) => e.path), ['/repo.git', '/nope.git']);
  const refused = of('refused')[0]!;
  t.is(refused.reason, 'no such repository');
  // The two connections may end in either order: each disconnect names its request's path.
  const done = (path: string) => of('disconnected').find((e) => e.path === path)!;
  t.is(done('/repo.git').exitCode, 0);
  t.true((done('/repo.git').bytesSent as number) > 0);
  t.is(done('/nope.git').exitCode, 1);
  for (const e of events) t.true(typeof e.time === 'string' && typeof e.pid === 'number' && typeof e.msg === 'string');
});

test('--help lists every option', async (t) => {
  const r = await mpgit(['daemon', '--help']);
  t.is(r.code, 0);
  for (const flag of ['--base-path', '--base-path-relaxed', '--export-all', '--listen', '--port', '--mptcp', '--reuseaddr', '--enable', '--disable', '--max-connections', '--timeout', '--init-timeout', '--bind-timeout', '--grace-period', '--inetd', '--detach', '--syslog', '--log-destination', 'MPGIT_SYSLOG_SOCKET', '--config', '--log-format', '--verbose', '--user-path', '--strict-paths', '--pid-file']) {
    t.regex(r.stdout, new RegExp(`${flag}\\b`), flag);
  }
});

test('--interpolated-path serves virtual hosts; --strict-paths wants exact names', async (t) => {
  const base = await tempDir(t, 'mpgit-daemon-');
  const head = await makeRepo(join(base, 'vhost.example', 'repo.git'));
  await makeRepo(join(base, 'other.example', 'repo.git'));
  const d = await startDaemon(t, ['--export-all', `--interpolated-path=${base}/%H%D`]);
  const ask = (host: string, path: string) => rawExchange(d.port, encodeRequest({ service: 'git-upload-pack', path, host, extra: [] }));
  t.regex((await ask('VHost.Example', '/repo.git')).text, new RegExp(`^${head} HEAD\\0`));
  // A client-supplied host cannot climb out: ".." is stripped to nothing.
  t.regex((await ask('..', '/repo.git')).text, /^ERR access denied/);
  t.regex(d.proc.output(), new RegExp(`'${base}/+repo\\.git' does not appear to be a git repository`));

  const repo = join(base, 'vhost.example', 'repo.git');
  const strict = await startDaemon(t, ['--export-all', '--strict-paths', repo]);
  t.regex((await git(['ls-remote', strict.url(repo)])).stdout, /refs\/heads\/main/);
  t.regex((await run('git', ['ls-remote', strict.url(repo.replace(/\.git$/, ''))])).stderr, /remote error: access denied/);
  t.regex((await run('git', ['ls-remote', strict.url(join(base, 'other.example', 'repo.git'))])).stderr, /remote error: access denied/);
  t.regex(strict.proc.output(), /other\.example\/repo\.git': not in directory list/);
});

test('--user drops root after binding: requests are served as that user', async (t) => {
  if (process.getuid?.() !== 0) return t.fail('this test needs root (it switches to the user nobody)');
  const s = await served(t);
  await chmod(s.base, 0o755);
  // git refuses to serve a repository owned by another user (safe.directory): give it to nobody.
  await runOk('chown', ['-R', 'nobody', s.repo]);
  const out = join(s.base, 'who');
  await mkdir(out, { mode: 0o777 });
  await chmod(out, 0o777);
  const hook = join(s.base, 'hook.sh');
  await writeFile(hook, `#!/bin/sh\nid -un > "${out}/user"\nexit 0\n`);
  await chmod(hook, 0o755);
  const d = await startDaemon(t, [`--base-path=${s.base}`, '--user=nobody', `--access-hook=${hook}`]);
  t.regex((await git(['ls-remote', d.url('repo.git')])).stdout, /refs\/heads\/main/);
  t.is((await readFile(join(out, 'user'), 'utf8')).trim(), 'nobody');
  t.regex((await run('ps', ['-o', 'user=', '-p', String(d.proc.child.pid)])).stdout, /nobody/);
});
