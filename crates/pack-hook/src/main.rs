//! `uploadpack.packObjectsHook` for mpgit daemon's pack cache.
//!
//! git upload-pack runs `<hook> git pack-objects <args>` with the request (wants, haves,
//! shallow lines) on stdin and relays our stdout to the client. We pass the request to the
//! daemon over its unix socket (`MPGIT_PACK_CACHE_SOCKET`, authenticated by the per-connection
//! `MPGIT_PACK_CACHE_TOKEN`); the daemon answers with the path of a cache entry (complete or
//! being written) and then how many of its bytes are final. We copy those bytes from the file
//! ourselves (the kernel's copy, not the daemon's), so a complete entry keeps streaming even if
//! the daemon dies. Protocol (lines from the daemon):
//!   `P <path>`  open this file, answer `O` (or `E <error>`)
//!   `W <pid>`   the file is being written by this pack-objects process
//!   `S <n>`     the first n bytes are written
//!   `D <n>`     the entry is complete at n bytes: copy up to n, then exit 0
//!   `F <text>`  the producer failed: print text, exit 1
//!   `G`         not cached: run pack-objects yourself (a request the cache does not take)
//! Without the daemon (socket unset or refused) we run `git pack-objects` ourselves and say so.
//! If the daemon dies while its pack-objects still writes the file, we follow the file until
//! that process is gone and send it only if it then holds a whole pack (its SHA-1 trailer).
//! This is a separate small program because git runs it for every fetch: node's startup alone
//! would cost more CPU than serving a cached pack.
//!
//! `--v2-packfile <key> [--sideband-all] [--progress <text>]` is the daemon's own use: with a
//! protocol v2 client's socket as stdout, follow the cache entry `key` (complete, or being
//! written) as above, but send it as the `packfile` section of a fetch response (side-band-64k
//! framing, then flush), so that a cache hit costs neither upload-pack nor a copy through the
//! daemon, and the transfer outlives a daemon restart. Exit 3, having written nothing, when the
//! daemon has no such entry (`G`): it then runs upload-pack.
//!
//! Linux only (sendfile(2) from a file to a socket, /proc for the producer's liveness): the
//! release builds it for the Linux packages alone, and the daemon's pack cache says it needs
//! Linux elsewhere (ts/cache/hook-path.ts).

#[cfg(not(target_os = "linux"))]
compile_error!("mpgit-pack-hook is Linux-only (sendfile, /proc); build it for Linux targets only");

use std::env;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::fs::FileExt;
use std::process::{exit, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use sha1::{Digest, Sha1};

/** Largest request read from stdin (a fetch with many haves is a few MB). */
const MAX_REQUEST: u64 = 256 << 20;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--v2-packfile") {
        match send_packfile(&args[1..]) {
            Ok(true) => exit(0),
            Ok(false) => exit(3),
            Err(e) => fail(&e),
        }
    }
    let mut request = Vec::new();
    if let Err(e) = io::stdin().take(MAX_REQUEST + 1).read_to_end(&mut request) {
        fail(&format!("cannot read the pack request: {e}"));
    }
    if request.len() as u64 > MAX_REQUEST {
        fail("pack request over 256 MiB");
    }
    let socket = env::var("MPGIT_PACK_CACHE_SOCKET").ok();
    let token = env::var("MPGIT_PACK_CACHE_TOKEN").unwrap_or_default();
    let stream = match socket.as_deref().map(UnixStream::connect) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("mpgit pack cache unavailable ({e}): packing without it");
            direct(&args, &request)
        }
        None => direct(&args, &request),
    };
    match serve(stream, &token, &args, &request) {
        Ok(Some(())) => exit(0),
        Ok(None) => direct(&args, &request),
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("fatal: mpgit pack cache: {msg}");
    exit(1)
}

/** Runs the real pack-objects with the request; never returns. */
fn direct(args: &[String], request: &[u8]) -> ! {
    // args[0] is "git" (git's convention for the hook); run what git would have run.
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => fail("no command given"),
    };
    let mut child = Command::new(cmd)
        .args(rest)
        .env_remove("MPGIT_PACK_CACHE_SOCKET")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run {cmd}: {e}")));
    let mut stdin = child.stdin.take().unwrap();
    let w = stdin.write_all(request);
    drop(stdin);
    let status = child.wait().unwrap_or_else(|e| fail(&format!("waiting for {cmd}: {e}")));
    if let Err(e) = w {
        if status.success() {
            fail(&format!("writing the request to {cmd}: {e}"));
        }
    }
    exit(status.code().unwrap_or(128))
}

/** Ok(Some) served, Ok(None) the daemon declined the request. */
fn serve(mut stream: UnixStream, token: &str, args: &[String], request: &[u8]) -> Result<Option<()>, String> {
    let gone = |e: io::Error| format!("lost the daemon: {e}");
    let mut head = format!("mpgit-pack-hook 1 {} {} {}\n", token, args.len(), request.len()).into_bytes();
    for a in args {
        head.extend_from_slice(a.as_bytes());
        head.push(0);
    }
    stream.write_all(&head).map_err(gone)?;
    stream.write_all(request).map_err(gone)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    follow(stream, &mut out)
}

/** Where followed pack bytes go: raw to upload-pack, or framed for a v2 client. */
trait Sink: Write {
    /** Before the first byte of the pack. */
    fn start(&mut self) -> io::Result<()>;
    /** The next `n` bytes of the file, from its position (the kernel's copy where it can). */
    fn copy_from(&mut self, f: &mut File, n: u64) -> io::Result<u64>;
    /** After its last byte. */
    fn finish(&mut self) -> io::Result<()>;
}

impl Sink for io::StdoutLock<'_> {
    fn start(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn copy_from(&mut self, f: &mut File, n: u64) -> io::Result<u64> {
        // io::copy uses copy_file_range/sendfile/splice where it can.
        io::copy(&mut Read::by_ref(f).take(n), self)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/** Follows the daemon's answer (`P`, `W`, `S`, `D`, `F`, `G`) into `out`. Ok(None): `G`. */
fn follow<S: Sink>(stream: UnixStream, out: &mut S) -> Result<Option<()>, String> {
    let gone = |e: io::Error| format!("lost the daemon: {e}");
    let mut stream = stream;
    let mut reader = BufReader::new(stream.try_clone().map_err(gone)?);
    let mut file: Option<File> = None;
    let mut copied: u64 = 0;
    let mut started = false;
    let mut producer: Option<u32> = None;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(gone)?;
        if n == 0 {
            if let (Some(pid), Some(f)) = (producer, file.as_mut()) {
                eprintln!("mpgit daemon went away; following its pack-objects (pid {pid}) to the end");
                if !started {
                    out.start().map_err(|e| format!("writing the pack: {e}"))?;
                }
                return orphan(f, copied, pid, out).map(Some);
            }
            return Err(if file.is_some() {
                "the daemon went away while the pack was being produced".into()
            } else {
                "the daemon closed the connection".into()
            });
        }
        let line = line.trim_end_matches('\n');
        let (op, arg) = line.split_at(1);
        let arg = arg.trim_start();
        match op {
            "P" => match File::open(arg) {
                Ok(f) => {
                    file = Some(f);
                    stream.write_all(b"O\n").map_err(gone)?;
                }
                Err(e) => {
                    stream.write_all(format!("E {e}\n").as_bytes()).map_err(gone)?;
                }
            },
            "S" | "D" => {
                let upto: u64 = arg.parse().map_err(|_| format!("bad size from the daemon: {arg}"))?;
                let f = file.as_mut().ok_or("size before a file")?;
                if !started {
                    out.start().map_err(|e| format!("writing the pack: {e}"))?;
                    started = true;
                }
                if upto > copied {
                    let n = out.copy_from(f, upto - copied).map_err(|e| format!("copying the pack: {e}"))?;
                    copied += n;
                    if copied < upto {
                        return Err(format!("cache entry ended at {copied} bytes, expected {upto}"));
                    }
                }
                if op == "D" {
                    out.finish().map_err(|e| format!("writing the pack: {e}"))?;
                    return Ok(Some(()));
                }
            }
            "W" => producer = arg.parse().ok(),
            "F" => return Err(arg.to_string()),
            "G" => return Ok(None),
            _ => return Err(format!("unexpected answer from the daemon: {line}")),
        }
    }
}

/** Largest side-band payload: a pkt-line of 65520 bytes less its header and band byte. */
const BAND_DATA_MAX: usize = 65520 - 5;

/** A pkt-line header and band byte in front of `len` payload bytes. */
fn band_header(band: u8, len: usize) -> [u8; 5] {
    let h = format!("{:04x}", len + 5);
    let b = h.as_bytes();
    [b[0], b[1], b[2], b[3], band]
}

/** A v2 `packfile` section on fd 1: side-band-64k packets of the pack, then flush. */
struct Framed {
    out: std::mem::ManuallyDrop<File>,
    buf: Vec<u8>,
    sideband_all: bool,
    progress: Option<String>,
}

impl Framed {
    fn packet(&mut self) -> io::Result<()> {
        let n = self.buf.len() - 5;
        if n > 0 {
            let h = band_header(1, n);
            self.buf[..5].copy_from_slice(&h);
            self.out.write_all(&self.buf)?;
            self.buf.truncate(5);
        }
        Ok(())
    }
}

impl Write for Framed {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = 5 + BAND_DATA_MAX - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == 5 + BAND_DATA_MAX {
            self.packet()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for Framed {
    fn copy_from(&mut self, f: &mut File, n: u64) -> io::Result<u64> {
        // A header of our own per packet, its payload by sendfile: the pack never enters our memory.
        self.packet()?;
        let mut done = 0u64;
        while done < n {
            let chunk = (n - done).min(BAND_DATA_MAX as u64);
            self.out.write_all(&band_header(1, chunk as usize))?;
            let got = send_file(f, &mut self.out, chunk)?;
            if got < chunk {
                // The header promised `chunk` bytes: nothing sensible can follow it.
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("cache entry ended {} bytes early", chunk - got)));
            }
            done += got;
        }
        Ok(done)
    }
    fn start(&mut self) -> io::Result<()> {
        // The section header: "packfile" as a plain pkt-line, or in band 1 under sideband-all.
        let head = b"packfile\n";
        let mut pre = Vec::new();
        if self.sideband_all {
            pre.extend_from_slice(&band_header(1, head.len()));
        } else {
            pre.extend_from_slice(format!("{:04x}", head.len() + 4).as_bytes());
        }
        pre.extend_from_slice(head);
        if let Some(text) = &self.progress {
            pre.extend_from_slice(&band_header(2, text.len()));
            pre.extend_from_slice(text.as_bytes());
        }
        self.out.write_all(&pre)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.packet()?;
        self.out.write_all(b"0000")
    }
}

/**
 * Copies `n` bytes from the file's position to fd 1 by sendfile(2); where the kernel refuses
 * that pairing, through a buffer. Returns fewer than `n` only at the file's end.
 */
fn send_file(f: &mut File, out: &mut File, n: u64) -> io::Result<u64> {
    use std::os::unix::io::AsRawFd;
    let mut done = 0u64;
    while done < n {
        let want = (n - done).min(1 << 30) as usize;
        // SAFETY: both descriptors are open; a null offset uses (and moves) the file's position.
        let sent = unsafe { libc::sendfile(out.as_raw_fd(), f.as_raw_fd(), std::ptr::null_mut(), want) };
        if sent > 0 {
            done += sent as u64;
            continue;
        }
        if sent == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => {
                // A non-blocking socket: wait until it takes more.
                let mut p = libc::pollfd { fd: out.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, -1) };
            }
            Some(libc::EINVAL) | Some(libc::ENOSYS) => return Ok(done + io::copy(&mut Read::by_ref(f).take(n - done), out)?),
            _ => return Err(e),
        }
    }
    Ok(done)
}

/** `--v2-packfile <key> [--sideband-all] [--progress <text>]` (see the top); Ok(false): `G`. */
fn send_packfile(args: &[String]) -> Result<bool, String> {
    let key = match args.first() {
        Some(k) if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) => k,
        _ => return Err("usage: --v2-packfile <key> [--sideband-all] [--progress <text>]".into()),
    };
    let mut sideband_all = false;
    let mut progress = None;
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--sideband-all" => sideband_all = true,
            "--progress" => progress = Some(rest.next().ok_or("--progress needs a text")?.clone()),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let socket = env::var("MPGIT_PACK_CACHE_SOCKET").map_err(|_| "MPGIT_PACK_CACHE_SOCKET is not set")?;
    let token = env::var("MPGIT_PACK_CACHE_TOKEN").unwrap_or_default();
    let mut stream = UnixStream::connect(&socket).map_err(|e| format!("cannot reach the daemon: {e}"))?;
    stream.write_all(format!("mpgit-pack-follow 1 {token} {key}\n").as_bytes()).map_err(|e| format!("lost the daemon: {e}"))?;
    // fd 1 unbuffered: stdout's line buffering would split packets at every newline byte.
    // SAFETY: fd 1 is open for the life of the process and is not closed here (ManuallyDrop).
    let out = std::mem::ManuallyDrop::new(unsafe { <File as std::os::unix::io::FromRawFd>::from_raw_fd(1) });
    let mut sink = Framed { out, buf: Vec::with_capacity(5 + BAND_DATA_MAX), sideband_all, progress };
    sink.buf.resize(5, 0);
    Ok(follow(stream, &mut sink)?.is_some())
}

/** Whether a pack-objects process still runs (not gone, not a zombie). */
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !stat[i + 1..].trim_start().starts_with('Z'),
            None => false,
        },
        Err(_) => false,
    }
}

/**
 * The daemon is gone but its pack-objects may still be writing: copy the file as it grows
 * until that process is gone, then check the whole file is one pack before ending well.
 */
fn orphan<S: Sink>(f: &mut File, mut copied: u64, pid: u32, out: &mut S) -> Result<(), String> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let alive = running(pid);
        loop {
            let n = f.read_at(&mut buf, copied).map_err(|e| format!("reading the pack: {e}"))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(|e| format!("writing the pack: {e}"))?;
            copied += n as u64;
        }
        if !alive {
            break;
        }
        sleep(Duration::from_millis(20));
    }
    if copied < 32 {
        return Err(format!("pack-objects ended after {copied} bytes"));
    }
    let mut h = Sha1::new();
    let mut at = 0u64;
    let body = copied - 20;
    while at < body {
        let want = ((body - at) as usize).min(buf.len());
        let n = f.read_at(&mut buf[..want], at).map_err(|e| format!("reading the pack: {e}"))?;
        if n == 0 {
            return Err("the pack shrank while being checked".into());
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    let mut trailer = [0u8; 20];
    f.read_exact_at(&mut trailer, body).map_err(|e| format!("reading the pack: {e}"))?;
    if h.finalize().as_slice() != trailer {
        return Err("pack-objects did not finish the pack (it was killed, or failed)".into());
    }
    out.finish().map_err(|e| format!("writing the pack: {e}"))
}
