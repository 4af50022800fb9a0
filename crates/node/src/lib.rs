//! The addon node loads (mpgit.<platform>.node): registers each module's exports.
//! N-API types stay in `napi`; the modules below translate between it and mpgit-core.

mod info;
mod napi;
// Sockets are handed to node as descriptors, which node adopts on Unix only: on Windows the
// addon has no `net` area (node's own TCP serves, without MPTCP, which needs Linux anyway).
#[cfg(unix)]
mod net;
mod odb;
mod pack;

use napi::{Env, JsResult, RawEnv, RawValue, Value};

fn register(env: Env, exports: Value) -> JsResult<()> {
    #[cfg(unix)]
    net::register(env, exports)?;
    pack::register(env, exports)?;
    odb::register(env, exports)?;
    info::register(env, exports)?;
    Ok(())
}

/// The entry point node looks up in every addon (N-API's NAPI_MODULE_INIT).
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: RawEnv, exports: RawValue) -> RawValue {
    napi::module_init(env, exports, register)
}
