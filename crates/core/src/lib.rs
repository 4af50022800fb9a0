//! mpgit's core, in plain Rust: what must be fast or needs system calls.
//! `mptcp`: MPTCP/TCP sockets and their counters. `pack`: pack parsing, delta resolution,
//! object ids and index writing. `odb`: reading a repository's objects, checkout and the
//! index, the connectivity check.

#[cfg(feature = "native")]
pub mod mptcp;
#[cfg(feature = "native")]
pub mod odb;
pub mod pack;

#[cfg(all(test, feature = "native"))]
mod fuzz;
#[cfg(test)]
mod testutil;
