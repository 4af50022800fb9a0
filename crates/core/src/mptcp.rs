//! Multipath TCP sockets: listening and connecting sockets made with IPPROTO_MPTCP (falling
//! back to TCP where the kernel refuses it), and the per-connection MPTCP / TCP counters.
//!
//! The sockets are handed to node as raw descriptors (`server.listen({ fd })`,
//! `new net.Socket({ fd })`); nothing here keeps them. So the module is Unix's (node adopts no
//! Windows socket handle that way); MPTCP and the counters are Linux's: on other Unix systems
//! a socket asked to be MPTCP is TCP with the fallback reason `NOT_LINUX`, and the counters
//! are an `Unsupported` error.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{IntoRawFd, RawFd};
use std::time::Duration;

pub const IPPROTO_MPTCP: i32 = 262;
#[cfg(target_os = "linux")]
const SOL_MPTCP: i32 = 284;
#[cfg(target_os = "linux")]
const MPTCP_INFO: i32 = 1;
#[cfg(target_os = "linux")]
const MPTCP_TCPINFO: i32 = 2;
#[cfg(target_os = "linux")]
const TCP_IS_MPTCP: i32 = 43;

/// The fallback reason (and `kernel_supports_mptcp`'s answer) on a system other than Linux.
#[cfg(not(target_os = "linux"))]
fn not_linux() -> String {
    format!("MPTCP sockets need Linux (this system is {})", std::env::consts::OS)
}

/// A socket made for the caller: its descriptor and whether it is an MPTCP socket.
/// `fallback` names the errno that made us fall back to TCP, when MPTCP was asked for.
#[derive(Debug)]
pub struct Made {
    pub fd: RawFd,
    pub mptcp: bool,
    pub fallback: Option<String>,
}

/// errno values with which a kernel says "no MPTCP here": the cue to fall back to TCP.
#[cfg(target_os = "linux")]
fn is_mptcp_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPROTONOSUPPORT) | Some(libc::EINVAL) | Some(libc::ENOPROTOOPT) | Some(libc::EAFNOSUPPORT)
    )
}

/// The symbolic errno of an error ("EADDRINUSE"), or its text when it has none we name.
pub fn error_code(e: &io::Error) -> String {
    crate::error::errno_name(e).map_or_else(|| e.to_string(), String::from)
}

fn new_socket(addr: &SocketAddr, mptcp: bool) -> io::Result<(Socket, bool, Option<String>)> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    #[cfg(not(target_os = "linux"))]
    if mptcp {
        return Ok((Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?, false, Some(not_linux())));
    }
    #[cfg(target_os = "linux")]
    if mptcp {
        match Socket::new(domain, Type::STREAM, Some(Protocol::from(IPPROTO_MPTCP))) {
            Ok(s) => return Ok((s, true, None)),
            Err(e) if is_mptcp_refusal(&e) => {
                let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
                return Ok((s, false, Some(error_code(&e))));
            }
            Err(e) => return Err(e),
        }
    }
    Ok((Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?, false, None))
}

/// A bound, listening, non-blocking socket. SO_REUSEADDR is always set so that a restarted
/// daemon binds while old connections sit in TIME-WAIT; IPv6 sockets are IPV6_V6ONLY so that
/// IPv4 and IPv6 each get a socket of their own.
pub fn listen(addr: SocketAddr, mptcp: bool, backlog: i32) -> io::Result<Made> {
    let (sock, is_mptcp, fallback) = new_socket(&addr, mptcp)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::from(addr))?;
    sock.listen(backlog)?;
    Ok(Made { fd: sock.into_raw_fd(), mptcp: is_mptcp, fallback })
}

/// A connected, non-blocking socket, or the error of the connect (ECONNREFUSED, ETIMEDOUT...).
/// Blocks the calling thread for at most `timeout`: call it off the event loop.
pub fn connect(addr: SocketAddr, mptcp: bool, timeout: Duration) -> io::Result<Made> {
    let (sock, is_mptcp, fallback) = new_socket(&addr, mptcp)?;
    sock.set_nodelay(true)?;
    sock.connect_timeout(&SockAddr::from(addr), timeout)?;
    sock.set_nonblocking(true)?;
    Ok(Made { fd: sock.into_raw_fd(), mptcp: is_mptcp, fallback })
}

/// What a connection carried, read from the kernel.
#[derive(Debug, Default, Clone)]
pub struct ConnInfo {
    /// MPTCP is in use on this connection (TCP_IS_MPTCP): false for plain TCP and for an MPTCP
    /// socket that fell back to TCP because the peer does not speak it.
    pub mptcp: bool,
    /// Subflows of the connection (1 for TCP).
    pub subflows: u32,
    /// Subflows that carried data either way.
    pub subflows_used: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Bytes the peer acknowledged: unlike bytes_sent, retransmissions to a peer that is gone
    /// or that reads nothing do not move it.
    pub bytes_acked: u64,
    /// Per-subflow bytes sent and received (one entry for TCP).
    pub per_subflow: Vec<(u64, u64)>,
}

#[cfg(target_os = "linux")]
fn getsockopt_buf(fd: RawFd, level: i32, name: i32, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf is valid for len bytes; the kernel writes at most len and updates it.
    let rc = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr() as *mut libc::c_void, &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len as usize)
}

#[cfg(target_os = "linux")]
fn u64_at(b: &[u8], off: usize) -> u64 {
    if off + 8 > b.len() {
        return 0;
    }
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

#[cfg(target_os = "linux")]
fn u32_at(b: &[u8], off: usize) -> u32 {
    if off + 4 > b.len() {
        return 0;
    }
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

#[cfg(target_os = "linux")]
/// Where a struct the kernel fills keeps its byte counters (offsets, each a u64).
struct ByteCounters {
    sent: usize,
    received: usize,
    acked: usize,
}

#[cfg(target_os = "linux")]
impl ByteCounters {
    /// (sent, received, acked); fields past the length the kernel returned read as 0.
    fn read(&self, info: &[u8]) -> (u64, u64, u64) {
        (u64_at(info, self.sent), u64_at(info, self.received), u64_at(info, self.acked))
    }
}

#[cfg(target_os = "linux")]
/// struct tcp_info (linux/tcp.h): tcpi_bytes_sent, tcpi_bytes_received, tcpi_bytes_acked.
const TCPI: ByteCounters = ByteCounters { sent: 200, received: 128, acked: 120 };
#[cfg(target_os = "linux")]
const TCP_INFO_LEN: usize = 232;
#[cfg(target_os = "linux")]
/// struct mptcp_info (linux/mptcp.h): mptcpi_bytes_sent, _received, _acked; and the subflows.
const MPTCPI: ByteCounters = ByteCounters { sent: 56, received: 64, acked: 72 };
#[cfg(target_os = "linux")]
const MPTCPI_SUBFLOWS: usize = 0;
#[cfg(target_os = "linux")]
const MPTCPI_SUBFLOWS_TOTAL: usize = 80;

#[cfg(target_os = "linux")]
fn tcp_bytes(info: &[u8]) -> (u64, u64) {
    let (sent, received, _) = TCPI.read(info);
    (sent, received)
}

/// The counters need Linux's TCP_INFO and MPTCP_INFO.
#[cfg(not(target_os = "linux"))]
pub fn conn_info(_fd: RawFd) -> io::Result<ConnInfo> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "connection counters need Linux (TCP_INFO, MPTCP_INFO)"))
}

/// The connection's counters. Works on TCP and MPTCP sockets, connected or accepted.
#[cfg(target_os = "linux")]
pub fn conn_info(fd: RawFd) -> io::Result<ConnInfo> {
    let mut flag = [0u8; 4];
    let is_mptcp = match getsockopt_buf(fd, libc::IPPROTO_TCP, TCP_IS_MPTCP, &mut flag) {
        Ok(n) if n >= 4 => u32::from_ne_bytes(flag) != 0,
        Ok(_) => false,
        // Kernels before 5.16 do not know TCP_IS_MPTCP: try MPTCP_INFO below.
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => true,
        Err(e) => return Err(e),
    };
    if is_mptcp {
        let mut mi = [0u8; 128];
        if let Ok(n) = getsockopt_buf(fd, SOL_MPTCP, MPTCP_INFO, &mut mi) {
            if n > 0 {
                return Ok(mptcp_conn_info(fd, &mi[..n]));
            }
        }
    }
    let mut ti = [0u8; TCP_INFO_LEN];
    let n = getsockopt_buf(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut ti)?;
    let (sent, received, acked) = TCPI.read(&ti[..n]);
    Ok(ConnInfo {
        mptcp: false,
        subflows: 1,
        subflows_used: 1,
        bytes_sent: sent,
        bytes_received: received,
        bytes_acked: acked,
        per_subflow: vec![(sent, received)],
    })
}

#[cfg(target_os = "linux")]
fn mptcp_conn_info(fd: RawFd, mi: &[u8]) -> ConnInfo {
    let extra = mi[MPTCPI_SUBFLOWS] as u32;
    let total = mi.get(MPTCPI_SUBFLOWS_TOTAL).copied().unwrap_or(0) as u32;
    let per_subflow = subflow_bytes(fd).unwrap_or_default();
    // mptcpi_subflows counts the subflows beyond the first; subflows_total (6.10+) counts all.
    let subflows = if total > 0 { total } else { extra + 1 }.max(per_subflow.len() as u32);
    let subflows_used = per_subflow.iter().filter(|(s, r)| *s > 0 || *r > 0).count() as u32;
    let (bytes_sent, bytes_received, bytes_acked) = MPTCPI.read(mi);
    ConnInfo { mptcp: true, subflows, subflows_used, bytes_sent, bytes_received, bytes_acked, per_subflow }
}

#[cfg(target_os = "linux")]
/// MPTCP_TCPINFO: a struct mptcp_subflow_data header, then one tcp_info per live subflow.
fn subflow_bytes(fd: RawFd) -> io::Result<Vec<(u64, u64)>> {
    const HDR: usize = 16;
    const MAX_SUBFLOWS: usize = 16;
    let mut buf = vec![0u8; HDR + MAX_SUBFLOWS * TCP_INFO_LEN];
    buf[0..4].copy_from_slice(&(HDR as u32).to_ne_bytes());
    buf[12..16].copy_from_slice(&(TCP_INFO_LEN as u32).to_ne_bytes());
    let n = getsockopt_buf(fd, SOL_MPTCP, MPTCP_TCPINFO, &mut buf)?;
    let count = u32_at(&buf, 4) as usize;
    let size_user = (u32_at(&buf, 12) as usize).max(1);
    let mut out = Vec::new();
    for i in 0..count.min(MAX_SUBFLOWS) {
        let off = HDR + i * size_user;
        if off >= n {
            break;
        }
        let end = (off + size_user).min(n);
        out.push(tcp_bytes(&buf[off..end]));
    }
    Ok(out)
}

/// Whether this host's kernel creates MPTCP sockets at all (the daemon logs it once).
#[cfg(not(target_os = "linux"))]
pub fn kernel_supports_mptcp() -> Result<(), String> {
    Err(not_linux())
}

/// Whether this host's kernel creates MPTCP sockets at all (the daemon logs it once).
#[cfg(target_os = "linux")]
pub fn kernel_supports_mptcp() -> Result<(), String> {
    match Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::from(IPPROTO_MPTCP))) {
        Ok(_) => Ok(()),
        Err(e) => Err(error_code(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::io::FromRawFd;

    #[test]
    fn loopback_mptcp_connection_reports_mptcp() {
        if kernel_supports_mptcp().is_err() {
            return; // covered by the ava tests, which fail loudly without MPTCP
        }
        let l = listen("127.0.0.1:0".parse().unwrap(), true, 8).unwrap();
        let listener = unsafe { std::net::TcpListener::from_raw_fd(l.fd) };
        listener.set_nonblocking(false).unwrap();
        let addr = listener.local_addr().unwrap();
        let c = connect(addr, true, Duration::from_secs(5)).unwrap();
        let (mut srv, _) = listener.accept().unwrap();
        let mut cli = unsafe { std::net::TcpStream::from_raw_fd(c.fd) };
        cli.set_nonblocking(false).unwrap();
        cli.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        srv.read_exact(&mut buf).unwrap();
        let info = conn_info(c.fd).unwrap();
        assert!(info.mptcp);
        assert!(info.subflows >= 1);
        assert!(info.bytes_sent >= 5);
    }

    #[test]
    fn bind_conflict_is_eaddrinuse() {
        let a = listen("127.0.0.1:0".parse().unwrap(), false, 8).unwrap();
        let l = unsafe { std::net::TcpListener::from_raw_fd(a.fd) };
        let addr = l.local_addr().unwrap();
        let err = listen(addr, false, 8).unwrap_err();
        assert_eq!(error_code(&err), "EADDRINUSE");
    }
}
