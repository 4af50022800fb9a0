//! Sockets for the TypeScript shell: MPTCP-or-TCP listeners and connections as raw
//! descriptors, and the kernel's counters for a connection.

use crate::napi::{Args, Env, JsError, JsResult, Value};
use mpgit_core::mptcp;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub fn register(env: Env, exports: Value) -> JsResult<()> {
    env.export(exports, "listenSocket", listen_socket)?;
    env.export(exports, "connectSocket", connect_socket)?;
    env.export(exports, "connInfo", conn_info)?;
    env.export(exports, "kernelMptcp", kernel_mptcp)?;
    Ok(())
}

fn io_error(e: std::io::Error, what: String) -> JsError {
    JsError::new(&mptcp::error_code(&e), format!("{}: {}", what, e))
}

fn socket_addr(args: &Args) -> JsResult<SocketAddr> {
    let host = args.string(0)?;
    let port = args.number(1)?;
    if !(0.0..=65535.0).contains(&port) || port.fract() != 0.0 {
        return Err(JsError::new("ERR_OUT_OF_RANGE", format!("port {} is not 0..65535", port)));
    }
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| JsError::new("ERR_INVALID_IP", format!("{} is not an IP address", host)))?;
    Ok(SocketAddr::new(ip, port as u16))
}

fn made(env: Env, m: mptcp::Made) -> JsResult<Value> {
    let o = env.object()?;
    o.set_number("fd", m.fd as f64)?;
    o.set_bool("mptcp", m.mptcp)?;
    match m.fallback {
        Some(f) => o.set_string("fallback", &f)?,
        None => o.set("fallback", env.null()?)?,
    }
    Ok(o.value())
}

/// listenSocket(ip, port, mptcp, backlog) -> { fd, mptcp, fallback }
fn listen_socket(env: Env, args: &Args) -> JsResult<Value> {
    let addr = socket_addr(args)?;
    let want_mptcp = args.bool(2)?;
    let backlog = if args.is_nullish(3) { 511 } else { args.number(3)? as i32 };
    let m = mptcp::listen(addr, want_mptcp, backlog).map_err(|e| io_error(e, format!("bind {}", addr)))?;
    made(env, m)
}

/// connectSocket(ip, port, mptcp, timeoutMs) -> Promise<{ fd, mptcp, fallback }>
fn connect_socket(env: Env, args: &Args) -> JsResult<Value> {
    let addr = socket_addr(args)?;
    let want_mptcp = args.bool(2)?;
    let timeout = Duration::from_millis(args.number(3)?.max(1.0) as u64);
    env.promise(
        "mpgit.connect",
        move || mptcp::connect(addr, want_mptcp, timeout).map_err(|e| io_error(e, format!("connect {}", addr))),
        made,
    )
}

/// connInfo(fd) -> { mptcp, subflows, subflowsUsed, bytesSent, bytesReceived, bytesAcked, perSubflow }
fn conn_info(env: Env, args: &Args) -> JsResult<Value> {
    let fd = args.number(0)? as i32;
    let info = mptcp::conn_info(fd).map_err(|e| io_error(e, format!("socket info of fd {}", fd)))?;
    let o = env.object()?;
    o.set_bool("mptcp", info.mptcp)?;
    o.set_number("subflows", info.subflows as f64)?;
    o.set_number("subflowsUsed", info.subflows_used as f64)?;
    o.set_number("bytesSent", info.bytes_sent as f64)?;
    o.set_number("bytesReceived", info.bytes_received as f64)?;
    o.set_number("bytesAcked", info.bytes_acked as f64)?;
    let mut per = Vec::new();
    for (s, r) in &info.per_subflow {
        let p = env.object()?;
        p.set_number("bytesSent", *s as f64)?;
        p.set_number("bytesReceived", *r as f64)?;
        per.push(p.value());
    }
    o.set("perSubflow", env.array(&per)?)?;
    Ok(o.value())
}

/// kernelMptcp() -> null when the kernel makes MPTCP sockets, else the errno it refused with.
fn kernel_mptcp(env: Env, _args: &Args) -> JsResult<Value> {
    match mptcp::kernel_supports_mptcp() {
        Ok(()) => env.null(),
        Err(e) => env.string(&e),
    }
}
