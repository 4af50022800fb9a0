//! The N-API surface we use, declared by hand and wrapped safely.
//!
//! The `napi` crates are not packaged for Debian, and we use only a few dozen functions of
//! node's stable C ABI (N-API version 8), so we declare them ourselves, once, in `napi/sys.rs`:
//! bound by the dynamic loader on Unix, looked up in the host executable on Windows.
//!
//! Everything unsafe stays in this module (this file and napi/sys.rs). The rest of the addon
//! sees `Env`, `Value`, `JsError` and `Args`, and registers plain Rust functions with
//! `Env::export`; panics are caught at the boundary and turned into JavaScript exceptions.

mod sys;

use self::sys::*;
use std::ffi::{c_void, CString};
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

const NAPI_AUTO_LENGTH: usize = usize::MAX;
// napi_valuetype
const NAPI_UNDEFINED: i32 = 0;
const NAPI_NULL: i32 = 1;

/// An error to throw in JavaScript: `code` becomes `err.code` (e.g. "EADDRINUSE",
/// "MPGIT_BAD_PACK"), so TypeScript can tell errors apart without parsing messages.
#[derive(Debug, Clone)]
pub struct JsError {
    pub code: String,
    pub message: String,
}

impl JsError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        JsError { code: code.to_string(), message: message.into() }
    }
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("ERR_INVALID_ARG_TYPE", message)
    }
}

pub type JsResult<T> = Result<T, JsError>;

#[derive(Clone, Copy)]
pub struct Env(napi_env);

#[derive(Clone, Copy)]
pub struct Value(napi_value);

fn check(status: napi_status, what: &str) -> JsResult<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(JsError::new("ERR_NAPI", format!("N-API call {} failed with status {}", what, status)))
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).expect("NUL bytes were replaced")
}

/// A plain Rust function callable from JavaScript.
pub type Function = fn(Env, &Args) -> JsResult<Value>;

/// The arguments of a call.
pub struct Args {
    env: Env,
    values: Vec<napi_value>,
}

impl Args {
    fn get(&self, i: usize) -> JsResult<Value> {
        self.values
            .get(i)
            .map(|v| Value(*v))
            .ok_or_else(|| JsError::type_error(format!("argument {} is missing", i)))
    }
    /// Argument `i` as is (an options object, say).
    pub fn value(&self, i: usize) -> JsResult<Value> {
        self.get(i)
    }
    pub fn is_nullish(&self, i: usize) -> bool {
        match self.values.get(i) {
            None => true,
            Some(v) => {
                let mut t = 0;
                // SAFETY: v is a live handle of this callback scope.
                unsafe { napi_typeof(self.env.0, *v, &mut t) };
                t == NAPI_UNDEFINED || t == NAPI_NULL
            }
        }
    }
    pub fn string(&self, i: usize) -> JsResult<String> {
        self.env.get_string(self.get(i)?)
    }
    pub fn number(&self, i: usize) -> JsResult<f64> {
        self.env.get_number(self.get(i)?)
    }
    // Only the net area (Unix) takes a boolean argument.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub fn bool(&self, i: usize) -> JsResult<bool> {
        let mut b = false;
        // SAFETY: handle from this scope; napi reports a non-boolean as an error status.
        check(unsafe { napi_get_value_bool(self.env.0, self.get(i)?.0, &mut b) }, "get_value_bool")
            .map_err(|_| JsError::type_error(format!("argument {} must be a boolean", i)))?;
        Ok(b)
    }
    /// The bytes of a Buffer / Uint8Array argument, borrowed for the duration of the call.
    pub fn bytes(&self, i: usize) -> JsResult<&[u8]> {
        let mut data: *mut c_void = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: the buffer stays alive for the callback scope, which outlives the borrow of self.
        check(unsafe { napi_get_buffer_info(self.env.0, self.get(i)?.0, &mut data, &mut len) }, "get_buffer_info")
            .map_err(|_| JsError::type_error(format!("argument {} must be a Buffer", i)))?;
        if len == 0 {
            return Ok(&[]);
        }
        Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) })
    }
    /// The Rust value behind an external made with `Env::external::<T>`.
    pub fn external<T: 'static>(&self, i: usize) -> JsResult<&T> {
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: externals given to JS are only ever made by Env::external, which boxes an
        // `External<T>` tagged with T's type id; the tag is checked before the cast.
        check(unsafe { napi_get_value_external(self.env.0, self.get(i)?.0, &mut data) }, "get_value_external")
            .map_err(|_| JsError::type_error(format!("argument {} must be a handle from the addon", i)))?;
        let tagged = unsafe { &*(data as *const External<()>) };
        if tagged.type_id != std::any::TypeId::of::<T>() {
            return Err(JsError::type_error(format!("argument {} is a handle of another kind", i)));
        }
        Ok(unsafe { &(*(data as *const External<T>)).value })
    }
}

#[repr(C)]
struct External<T> {
    type_id: std::any::TypeId,
    value: T,
}

unsafe extern "C" fn finalize_external<T: 'static>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    drop(Box::from_raw(data as *mut External<T>));
}

impl Env {
    pub fn undefined(self) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        check(unsafe { napi_get_undefined(self.0, &mut r) }, "get_undefined")?;
        Ok(Value(r))
    }
    pub fn null(self) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        check(unsafe { napi_get_null(self.0, &mut r) }, "get_null")?;
        Ok(Value(r))
    }
    pub fn string(self, s: &str) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        check(unsafe { napi_create_string_utf8(self.0, s.as_ptr() as *const c_char, s.len(), &mut r) }, "create_string")?;
        Ok(Value(r))
    }
    pub fn number(self, n: f64) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        check(unsafe { napi_create_double(self.0, n, &mut r) }, "create_double")?;
        Ok(Value(r))
    }
    pub fn boolean(self, b: bool) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        check(unsafe { napi_get_boolean(self.0, b, &mut r) }, "get_boolean")?;
        Ok(Value(r))
    }
    pub fn buffer(self, bytes: &[u8]) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        let mut out = ptr::null_mut();
        check(
            unsafe { napi_create_buffer_copy(self.0, bytes.len(), bytes.as_ptr() as *const c_void, &mut out, &mut r) },
            "create_buffer_copy",
        )?;
        Ok(Value(r))
    }
    pub fn object(self) -> JsResult<Object> {
        let mut r = ptr::null_mut();
        check(unsafe { napi_create_object(self.0, &mut r) }, "create_object")?;
        Ok(Object { env: self, value: Value(r) })
    }
    pub fn array(self, items: &[Value]) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        check(unsafe { napi_create_array_with_length(self.0, items.len(), &mut r) }, "create_array")?;
        for (i, v) in items.iter().enumerate() {
            check(unsafe { napi_set_element(self.0, r, i as u32, v.0) }, "set_element")?;
        }
        Ok(Value(r))
    }
    /// Moves `value` into a JavaScript external; it is dropped when the external is collected.
    pub fn external<T: 'static>(self, value: T) -> JsResult<Value> {
        let boxed = Box::new(External { type_id: std::any::TypeId::of::<T>(), value });
        let data = Box::into_raw(boxed) as *mut c_void;
        let mut r = ptr::null_mut();
        let status = unsafe { napi_create_external(self.0, data, finalize_external::<T>, ptr::null_mut(), &mut r) };
        if status != NAPI_OK {
            drop(unsafe { Box::from_raw(data as *mut External<T>) });
        }
        check(status, "create_external")?;
        Ok(Value(r))
    }
    pub fn get_string(self, v: Value) -> JsResult<String> {
        let mut len = 0usize;
        check(unsafe { napi_get_value_string_utf8(self.0, v.0, ptr::null_mut(), 0, &mut len) }, "get_value_string")
            .map_err(|_| JsError::type_error("expected a string"))?;
        let mut buf = vec![0u8; len + 1];
        check(
            unsafe { napi_get_value_string_utf8(self.0, v.0, buf.as_mut_ptr() as *mut c_char, len + 1, &mut len) },
            "get_value_string",
        )?;
        buf.truncate(len);
        String::from_utf8(buf).map_err(|_| JsError::type_error("string is not UTF-8"))
    }
    pub fn get_number(self, v: Value) -> JsResult<f64> {
        let mut n = 0f64;
        check(unsafe { napi_get_value_double(self.0, v.0, &mut n) }, "get_value_double")
            .map_err(|_| JsError::type_error("expected a number"))?;
        Ok(n)
    }
    pub fn get_bool(self, v: Value) -> JsResult<bool> {
        let mut b = false;
        check(unsafe { napi_get_value_bool(self.0, v.0, &mut b) }, "get_value_bool")
            .map_err(|_| JsError::type_error("expected a boolean"))?;
        Ok(b)
    }
    /// The strings of an array of strings.
    pub fn get_string_array(self, v: Value) -> JsResult<Vec<String>> {
        let mut is = false;
        check(unsafe { napi_is_array(self.0, v.0, &mut is) }, "is_array")?;
        if !is {
            return Err(JsError::type_error("expected an array of strings"));
        }
        let mut len = 0u32;
        check(unsafe { napi_get_array_length(self.0, v.0, &mut len) }, "get_array_length")?;
        let mut out = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut e = ptr::null_mut();
            check(unsafe { napi_get_element(self.0, v.0, i, &mut e) }, "get_element")?;
            out.push(self.get_string(Value(e)).map_err(|_| JsError::type_error("expected an array of strings"))?);
        }
        Ok(out)
    }
    /// Whether `v` is undefined or null (an absent optional property).
    pub fn is_nullish(self, v: Value) -> bool {
        let mut t = 0;
        // SAFETY: v is a live handle of the current scope.
        unsafe { napi_typeof(self.0, v.0, &mut t) };
        t == NAPI_UNDEFINED || t == NAPI_NULL
    }
    pub fn get_property(self, obj: Value, name: &str) -> JsResult<Value> {
        let mut r = ptr::null_mut();
        let n = cstring(name);
        check(unsafe { napi_get_named_property(self.0, obj.0, n.as_ptr(), &mut r) }, "get_named_property")?;
        Ok(Value(r))
    }

    fn error_value(self, e: &JsError) -> napi_value {
        let mut code = ptr::null_mut();
        let mut msg = ptr::null_mut();
        let mut err = ptr::null_mut();
        unsafe {
            napi_create_string_utf8(self.0, e.code.as_ptr() as *const c_char, e.code.len(), &mut code);
            napi_create_string_utf8(self.0, e.message.as_ptr() as *const c_char, e.message.len(), &mut msg);
            napi_create_error(self.0, code, msg, &mut err);
        }
        err
    }

    fn throw(self, e: &JsError) {
        let mut pending = false;
        unsafe { napi_is_exception_pending(self.0, &mut pending) };
        if !pending {
            let err = self.error_value(e);
            unsafe { napi_throw(self.0, err) };
        }
    }

    /// Registers `f` as `exports[name]`.
    pub fn export(self, exports: Value, name: &str, f: Function) -> JsResult<()> {
        let mut func = ptr::null_mut();
        let cname = cstring(name);
        check(
            unsafe { napi_create_function(self.0, cname.as_ptr(), NAPI_AUTO_LENGTH, trampoline, f as *mut c_void, &mut func) },
            "create_function",
        )?;
        check(unsafe { napi_set_named_property(self.0, exports.0, cname.as_ptr(), func) }, "set_named_property")
    }

    /// Runs `work` on libuv's thread pool and returns a promise. `work` must not touch
    /// JavaScript; its result is turned into a value by `finish` on the main thread.
    pub fn promise<T: Send + 'static>(
        self,
        name: &str,
        work: impl FnOnce() -> JsResult<T> + Send + 'static,
        finish: fn(Env, T) -> JsResult<Value>,
    ) -> JsResult<Value> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        check(unsafe { napi_create_promise(self.0, &mut deferred, &mut promise) }, "create_promise")?;
        let task: Box<Task<T>> = Box::new(Task {
            work: Some(Box::new(work)),
            result: None,
            finish,
            deferred,
            handle: ptr::null_mut(),
        });
        let data = Box::into_raw(task);
        let resource_name = self.string(name)?;
        let mut handle = ptr::null_mut();
        check(
            unsafe {
                napi_create_async_work(self.0, ptr::null_mut(), resource_name.0, execute::<T>, complete::<T>, data as *mut c_void, &mut handle)
            },
            "create_async_work",
        )?;
        unsafe { (*data).handle = handle };
        check(unsafe { napi_queue_async_work(self.0, handle) }, "queue_async_work")?;
        Ok(Value(promise))
    }
}

struct Task<T> {
    work: Option<Box<dyn FnOnce() -> JsResult<T> + Send>>,
    result: Option<JsResult<T>>,
    finish: fn(Env, T) -> JsResult<Value>,
    deferred: napi_deferred,
    handle: napi_async_work,
}

unsafe extern "C" fn execute<T: Send + 'static>(_env: napi_env, data: *mut c_void) {
    let task = &mut *(data as *mut Task<T>);
    if let Some(work) = task.work.take() {
        task.result = Some(guarded(work));
    }
}

unsafe extern "C" fn complete<T: Send + 'static>(env: napi_env, status: napi_status, data: *mut c_void) {
    let task = Box::from_raw(data as *mut Task<T>);
    let env = Env(env);
    let outcome = match task.result {
        Some(Ok(v)) => guarded(|| (task.finish)(env, v)),
        Some(Err(e)) => Err(e),
        None => Err(JsError::new("ERR_NAPI", format!("async work did not run (status {})", status))),
    };
    match outcome {
        Ok(v) => napi_resolve_deferred(env.0, task.deferred, v.0),
        Err(e) => napi_reject_deferred(env.0, task.deferred, env.error_value(&e)),
    };
    napi_delete_async_work(env.0, task.handle);
}

fn panic_error(p: Box<dyn std::any::Any + Send>) -> JsError {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    JsError::new("ERR_MPGIT_PANIC", format!("internal error in the native addon: {}", what))
}

unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let env = Env(env);
    let mut argc: usize = 8;
    let mut argv = [ptr::null_mut(); 8];
    let mut data: *mut c_void = ptr::null_mut();
    if napi_get_cb_info(env.0, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) != NAPI_OK {
        env.throw(&JsError::new("ERR_NAPI", "napi_get_cb_info failed"));
        return ptr::null_mut();
    }
    // SAFETY: `data` is the fn pointer given to napi_create_function in Env::export.
    let f: Function = std::mem::transmute::<*mut c_void, Function>(data);
    let args = Args { env, values: argv[..argc.min(8)].to_vec() };
    value_or_throw(env, guarded(|| f(env, &args)).map(|v| v.0))
}

/// Runs `f`; a panic becomes an error (ERR_MPGIT_PANIC) rather than unwinding into node.
fn guarded<T>(f: impl FnOnce() -> JsResult<T>) -> JsResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_error(p)))
}

/// What node gets back from a call: the value, or null with the error thrown.
fn value_or_throw(env: Env, r: JsResult<napi_value>) -> napi_value {
    match r {
        Ok(v) => v,
        Err(e) => {
            env.throw(&e);
            ptr::null_mut()
        }
    }
}

/// A JavaScript object under construction.
pub struct Object {
    env: Env,
    value: Value,
}

impl Object {
    pub fn set(&self, name: &str, v: Value) -> JsResult<()> {
        let n = cstring(name);
        check(unsafe { napi_set_named_property(self.env.0, self.value.0, n.as_ptr(), v.0) }, "set_named_property")
    }
    pub fn set_number(&self, name: &str, n: f64) -> JsResult<()> {
        self.set(name, self.env.number(n)?)
    }
    pub fn set_string(&self, name: &str, s: &str) -> JsResult<()> {
        self.set(name, self.env.string(s)?)
    }
    pub fn set_bool(&self, name: &str, b: bool) -> JsResult<()> {
        self.set(name, self.env.boolean(b)?)
    }
    pub fn value(&self) -> Value {
        self.value
    }
}

/// Node calls this when it loads the addon; `register` fills in the exports.
pub fn module_init(env: napi_env, exports: napi_value, register: fn(Env, Value) -> JsResult<()>) -> napi_value {
    // Before any N-API call: on Windows the functions are found now (a no-op elsewhere).
    if let Err(message) = sys::load() {
        #[cfg(windows)]
        sys::throw_load_error(env, &message);
        #[cfg(not(windows))]
        let _ = message;
        return ptr::null_mut();
    }
    let env = Env(env);
    value_or_throw(env, guarded(|| register(env, Value(exports))).map(|()| exports))
}

pub type RawEnv = napi_env;
pub type RawValue = napi_value;
