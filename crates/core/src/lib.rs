//! mpgit's core, in plain Rust: what must be fast or needs system calls.
//! `mptcp`: MPTCP/TCP sockets and their counters. `pack`: pack parsing, delta resolution,
//! object ids and index writing.

pub mod mptcp;
