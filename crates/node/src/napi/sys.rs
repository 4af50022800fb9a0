//! The N-API C functions the addon calls (js_native_api.h / node_api.h), each declared once in
//! `napi_functions!` below, which makes them callable the way the platform allows:
//!
//! - Unix: a plain `extern "C"` block. The symbols are not linked: the dynamic loader resolves
//!   them from the node binary when it loads the addon (`--unresolved-symbols=ignore-all` on
//!   Linux, `-undefined dynamic_lookup` on macOS). A call is a direct call.
//! - Windows: a DLL cannot leave symbols unresolved, and linking node.lib would tie the addon to
//!   a host named node.exe. As napi-rs does there, the functions are looked up at run time in
//!   the host process's executable (node.exe exports them): `load` fills a table of function
//!   pointers once, when the module registers and before any call, and fails naming the first
//!   function missing. A call goes through the table (one atomic load).
//!
//! So the two platforms cannot disagree about which functions exist or their signatures.

#![allow(non_camel_case_types)]

use std::ffi::c_void;
use std::os::raw::c_char;

pub type napi_env = *mut c_void;
pub type napi_value = *mut c_void;
pub type napi_callback_info = *mut c_void;
pub type napi_deferred = *mut c_void;
pub type napi_async_work = *mut c_void;
pub type napi_status = i32;
pub type napi_callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;
pub type napi_finalize = unsafe extern "C" fn(napi_env, *mut c_void, *mut c_void);
pub type napi_async_execute_callback = unsafe extern "C" fn(napi_env, *mut c_void);
pub type napi_async_complete_callback = unsafe extern "C" fn(napi_env, napi_status, *mut c_void);

pub const NAPI_OK: napi_status = 0;

/// What a host must offer: every function below is in N-API version 8's stable ABI, which
/// node has exported since 12.22 / 14.17 / 16.0 (mpgit itself needs node >= 20.19).
#[cfg(windows)]
const NEEDED: &str = "N-API version 8: node 12.22, 14.17, 16.0 or newer; mpgit needs node >= 20.19";

macro_rules! napi_functions {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {
        #[cfg(not(windows))]
        extern "C" {
            $(pub fn $name($($arg: $ty),*) -> napi_status;)*
        }

        /// The host's function addresses, 0 until `load` has run.
        #[cfg(windows)]
        struct Table {
            $($name: std::sync::atomic::AtomicUsize,)*
        }

        #[cfg(windows)]
        static TABLE: Table = Table { $($name: std::sync::atomic::AtomicUsize::new(0),)* };

        $(
            #[cfg(windows)]
            #[inline]
            pub unsafe fn $name($($arg: $ty),*) -> napi_status {
                let f = TABLE.$name.load(std::sync::atomic::Ordering::Acquire);
                if f == 0 {
                    // Unreachable once registered (load runs first); never a call through null.
                    return NAPI_GENERIC_FAILURE;
                }
                // SAFETY: f is the address GetProcAddress gave for this very name, whose C
                // signature is the one declared here.
                let f = std::mem::transmute::<usize, unsafe extern "C" fn($($ty),*) -> napi_status>(f);
                f($($arg),*)
            }
        )*

        /// Looks every function up in the host executable and fills the table.
        #[cfg(windows)]
        fn load_table() -> Result<(), String> {
            let host = windows::host()?;
            $(
                let f = windows::symbol(host, concat!(stringify!($name), "\0"))?;
                TABLE.$name.store(f, std::sync::atomic::Ordering::Release);
            )*
            Ok(())
        }
    };
}

napi_functions! {
    fn napi_create_function(env: napi_env, name: *const c_char, len: usize, cb: napi_callback, data: *mut c_void, result: *mut napi_value);
    fn napi_get_cb_info(env: napi_env, info: napi_callback_info, argc: *mut usize, argv: *mut napi_value, this: *mut napi_value, data: *mut *mut c_void);
    fn napi_set_named_property(env: napi_env, obj: napi_value, name: *const c_char, v: napi_value);
    fn napi_get_named_property(env: napi_env, obj: napi_value, name: *const c_char, r: *mut napi_value);
    fn napi_typeof(env: napi_env, v: napi_value, r: *mut i32);
    fn napi_get_value_string_utf8(env: napi_env, v: napi_value, buf: *mut c_char, size: usize, r: *mut usize);
    fn napi_get_value_double(env: napi_env, v: napi_value, r: *mut f64);
    fn napi_get_value_bool(env: napi_env, v: napi_value, r: *mut bool);
    fn napi_get_buffer_info(env: napi_env, v: napi_value, data: *mut *mut c_void, len: *mut usize);
    fn napi_create_string_utf8(env: napi_env, s: *const c_char, len: usize, r: *mut napi_value);
    fn napi_create_double(env: napi_env, v: f64, r: *mut napi_value);
    fn napi_get_boolean(env: napi_env, v: bool, r: *mut napi_value);
    fn napi_get_undefined(env: napi_env, r: *mut napi_value);
    fn napi_get_null(env: napi_env, r: *mut napi_value);
    fn napi_create_object(env: napi_env, r: *mut napi_value);
    fn napi_create_array_with_length(env: napi_env, len: usize, r: *mut napi_value);
    fn napi_set_element(env: napi_env, arr: napi_value, i: u32, v: napi_value);
    fn napi_is_array(env: napi_env, v: napi_value, r: *mut bool);
    fn napi_get_array_length(env: napi_env, arr: napi_value, r: *mut u32);
    fn napi_get_element(env: napi_env, arr: napi_value, i: u32, r: *mut napi_value);
    fn napi_create_buffer_copy(env: napi_env, len: usize, data: *const c_void, out: *mut *mut c_void, r: *mut napi_value);
    fn napi_create_error(env: napi_env, code: napi_value, msg: napi_value, r: *mut napi_value);
    fn napi_throw(env: napi_env, err: napi_value);
    fn napi_is_exception_pending(env: napi_env, r: *mut bool);
    fn napi_create_external(env: napi_env, data: *mut c_void, fin: napi_finalize, hint: *mut c_void, r: *mut napi_value);
    fn napi_get_value_external(env: napi_env, v: napi_value, r: *mut *mut c_void);
    fn napi_create_promise(env: napi_env, d: *mut napi_deferred, p: *mut napi_value);
    fn napi_resolve_deferred(env: napi_env, d: napi_deferred, v: napi_value);
    fn napi_reject_deferred(env: napi_env, d: napi_deferred, v: napi_value);
    fn napi_create_async_work(env: napi_env, resource: napi_value, name: napi_value, exec: napi_async_execute_callback, complete: napi_async_complete_callback, data: *mut c_void, r: *mut napi_async_work);
    fn napi_queue_async_work(env: napi_env, w: napi_async_work);
    fn napi_delete_async_work(env: napi_env, w: napi_async_work);
}

/// napi_generic_failure: what a call answers if the table were somehow not filled.
#[cfg(windows)]
const NAPI_GENERIC_FAILURE: napi_status = 9;

/// Makes the functions callable: nothing to do on Unix (the loader bound them); on Windows the
/// table is filled on the first registration (later ones, e.g. in worker threads, reuse it).
/// The error names the missing function and the node version that has it.
#[cfg(not(windows))]
pub fn load() -> Result<(), String> {
    Ok(())
}

#[cfg(windows)]
pub fn load() -> Result<(), String> {
    static LOADED: mpgit_core::once::OnceLock<Result<(), String>> = mpgit_core::once::OnceLock::new();
    LOADED.get_or_init(load_table).clone()
}

/// Throws `message` when `load` failed, through the one function that needs nothing else
/// (napi_throw_error), looked up on its own; failing that (a host that is not node), stderr.
#[cfg(windows)]
pub fn throw_load_error(env: napi_env, message: &str) {
    let text = std::ffi::CString::new(message.replace('\0', " ")).expect("NUL bytes were replaced");
    let throw = windows::host().and_then(|h| windows::symbol(h, "napi_throw_error\0"));
    match throw {
        Ok(f) => {
            // SAFETY: napi_throw_error(env, const char* code, const char* msg), exported by node.
            let f = unsafe { std::mem::transmute::<usize, unsafe extern "C" fn(napi_env, *const c_char, *const c_char) -> napi_status>(f) };
            unsafe { f(env, b"ERR_NAPI\0".as_ptr() as *const c_char, text.as_ptr()) };
        }
        Err(_) => eprintln!("mpgit: {}", message),
    }
}

#[cfg(windows)]
mod windows {
    use std::ffi::c_void;
    use std::os::raw::c_char;

    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleW(name: *const u16) -> *mut c_void;
        fn GetProcAddress(module: *mut c_void, name: *const c_char) -> *mut c_void;
    }

    /// The host process's executable (node.exe), whose exports are N-API.
    pub fn host() -> Result<usize, String> {
        // SAFETY: NULL asks for the executable's handle, which lives as long as the process.
        let h = unsafe { GetModuleHandleW(std::ptr::null()) };
        if h.is_null() {
            return Err("the native addon cannot find its host executable (GetModuleHandleW failed)".into());
        }
        Ok(h as usize)
    }

    /// The address of `name` (NUL-terminated) among the host's exports.
    pub fn symbol(host: usize, name: &str) -> Result<usize, String> {
        // SAFETY: host is a module handle and name a NUL-terminated C string.
        let f = unsafe { GetProcAddress(host as *mut c_void, name.as_ptr() as *const c_char) };
        if f.is_null() {
            let name = name.trim_end_matches('\0');
            return Err(format!(
                "the native addon cannot load: the host process does not export the N-API function {} ({}); run mpgit with such a node, or MPGIT_CORE=wasm",
                name,
                super::NEEDED
            ));
        }
        Ok(f as usize)
    }
}
