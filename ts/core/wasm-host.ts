// The host imports of the WebAssembly core (`mpgit_host`): the file operations its object
// database and checkout make (crates/core/src/odb/sys/host.rs declares them and documents the
// ABI), done with node's synchronous fs calls. Paths arrive as bytes and go to fs as Buffers,
// so a tree's non-UTF-8 names are written as they are. A failing call returns -1 and keeps the
// error, which `host_error` hands over as "<errno name> <message>"; results of variable length
// (a listing, a real path, an error) wait in `pending` until `host_result` copies them in.

import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, realpathSync, renameSync, statSync, symlinkSync, unlinkSync, writeSync, type BigIntStats } from 'node:fs';

/** Exclusive creation that never follows a link (the core's checkout and the index's .lock). */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
const NS = 1_000_000_000n;
const LOW32 = 0xffffffffn;

export interface WasmHost {
  /** The import object's `mpgit_host` member. */
  readonly imports: Record<string, (...args: number[]) => number | void>;
  /** The instance's memory, once it exists. */
  attach(memory: WebAssembly.Memory): void;
}

export function wasmHost(): WasmHost {
  let memory: WebAssembly.Memory | null = null;
  let pending: Buffer = Buffer.alloc(0);
  let failure = 'EIO no error';
  const mem = (p: number, n: number) => new Uint8Array(memory!.buffer, p >>> 0, n >>> 0);
  // A copy: fs may keep the path past the call, and memory growth detaches views.
  const path = (p: number, n: number) => Buffer.from(mem(p, n));
  const fail = (e: unknown): -1 => {
    const err = e as NodeJS.ErrnoException;
    failure = `${err.code ?? 'EIO'} ${err.message}`;
    return -1;
  };
  const give = (b: Buffer): number => {
    pending = b;
    return b.length;
  };
  const record = (out: number, s: BigIntStats): void => {
    const kind = s.isFile() ? 1 : s.isDirectory() ? 2 : s.isSymbolicLink() ? 3 : 4;
    const v = new DataView(memory!.buffer, out >>> 0, 80);
    const fields = [kind, Number(s.ctimeNs / NS), Number(s.ctimeNs % NS), Number(s.mtimeNs / NS), Number(s.mtimeNs % NS), Number(s.dev & LOW32), Number(s.ino & LOW32), Number(s.uid), Number(s.gid), Number(s.size)];
    fields.forEach((f, i) => v.setFloat64(i * 8, f, true));
  };
  const attempt = (f: () => number | void): number => {
    try {
      return f() ?? 0;
    } catch (e) {
      return fail(e);
    }
  };
  const imports = {
    host_open: (p: number, n: number) => attempt(() => openSync(path(p, n), 'r')),
    host_fsize: (fd: number) => attempt(() => fstatSync(fd).size),
    host_pread: (fd: number, buf: number, n: number, at: number) => attempt(() => readSync(fd, mem(buf, n), 0, n >>> 0, at)),
    host_close: (fd: number) => {
      attempt(() => closeSync(fd));
    },
    // A missing file is common (is this object loose?): asked without the cost of an exception.
    host_stat: (p: number, n: number, follow: number, out: number) =>
      attempt(() => {
        const at = path(p, n);
        const s = (follow ? statSync : lstatSync)(at, { bigint: true, throwIfNoEntry: false });
        if (!s) return fail({ code: 'ENOENT', message: `ENOENT: no such file or directory, stat '${at.toString()}'` });
        record(out, s);
      }),
    host_fstat: (fd: number, out: number) => attempt(() => record(out, fstatSync(fd, { bigint: true }))),
    host_readdir: (p: number, n: number) => attempt(() => give(Buffer.concat(readdirSync(path(p, n), { encoding: 'buffer' }).flatMap((name) => [name, Buffer.alloc(1)])))),
    host_realpath: (p: number, n: number) => attempt(() => give(realpathSync(path(p, n), { encoding: 'buffer' }))),
    host_result: (buf: number) => {
      mem(buf, pending.length).set(pending);
      pending = Buffer.alloc(0);
    },
    host_error: () => give(Buffer.from(failure)),
    host_mkdir: (p: number, n: number, mode: number) => attempt(() => void mkdirSync(path(p, n), { mode })),
    host_create: (p: number, n: number, mode: number) => attempt(() => openSync(path(p, n), CREATE_FLAGS, mode)),
    host_write: (fd: number, buf: number, n: number) =>
      attempt(() => {
        for (let at = 0; at < n >>> 0; ) at += writeSync(fd, mem(buf + at, (n >>> 0) - at));
      }),
    host_symlink: (t: number, tn: number, p: number, pn: number) => attempt(() => symlinkSync(path(t, tn), path(p, pn))),
    host_rename: (f: number, fnl: number, t: number, tn: number) => attempt(() => renameSync(path(f, fnl), path(t, tn))),
    host_unlink: (p: number, n: number) => attempt(() => unlinkSync(path(p, n))),
  };
  return {
    imports,
    attach(m) {
      memory = m;
    },
  };
}
