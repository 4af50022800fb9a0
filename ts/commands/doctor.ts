// mpgit doctor [--role client|server] [--peer ADDR] [--json]: is this host's kernel ready for
// Multipath TCP, and what exactly to set if it is not (then what mpgit's core runs on: the
// `mpgit version` report). Exit status 1 when something must change.

import { release } from 'node:os';
import { isIP } from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import { probeHost } from '../doctor/probe.js';
import { assess, formatAssessment, type Role } from '../doctor/assess.js';
import { formatVersionReport, versionReport } from '../version.js';

function role(v: string): Role {
  if (v !== 'client' && v !== 'server') throw new InvalidArgumentError('expected "client" or "server"');
  return v;
}

function address(v: string): string {
  if (!isIP(v)) throw new InvalidArgumentError('expected an IPv4 or IPv6 address');
  return v;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description("check this host's Multipath TCP support and say what to set (ip mptcp, sysctl)")
    .option('--role <role>', 'client (clones over several interfaces) or server (announces extra addresses)', role, 'client' as Role)
    .option('--peer <address>', 'the server (client role) to check routes towards; default: any Internet address', address)
    .option('--json', 'print the checks as JSON')
    .action(async (o: { role: Role; peer?: string; json?: boolean }) => {
      const state = await probeHost({ peer: o.peer, release: release() });
      const result = assess(state, o.role);
      // What mpgit itself runs on (addon, SHA-1 backend) belongs to the host's check too.
      const mpgit = versionReport();
      const text = `${formatAssessment(result)}\nmpgit on this host:\n${formatVersionReport(mpgit).replace(/^/gm, '  ')}`;
      process.stdout.write(o.json ? `${JSON.stringify({ ...result, mpgit }, null, 2)}\n` : text);
      if (!result.ok) process.exitCode = 1;
    });
}
