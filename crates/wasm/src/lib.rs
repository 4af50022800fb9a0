//! The WebAssembly core's ABI (no wasm-bindgen: plain functions over linear memory). Handles
//! are pointers to boxed state. A call that fails returns -1 (or null) and leaves the error in
//! `mp_err_*`; variable-length results go to one output buffer (`mp_out_ptr`, the length is the
//! return value), valid until the next call. ts/core/wasm*.ts is the other side.

mod abi;
mod odb_abi;

pub use abi::*;
pub use odb_abi::*;
