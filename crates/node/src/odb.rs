//! The object database for the TypeScript shell (docs/ARCHITECTURE.md, "The native object
//! database surface"): reading objects, checkout with the index, the connectivity check.
//! Reads are synchronous (one object is microseconds of work); checkout and the connectivity
//! walk run on libuv's pool and return promises.

use crate::napi::{Args, Env, JsError, JsResult, Value};
use crate::pack::{js, threads_option};
use mpgit_core::odb::checkout::{self, Progress, Summary};
use mpgit_core::odb::connect::check_connected;
use mpgit_core::odb::Odb;
use mpgit_core::oid::{hex, parse_oid};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn register(env: Env, exports: Value) -> JsResult<()> {
    env.export(exports, "odbOpen", odb_open)?;
    env.export(exports, "odbAddPack", odb_add_pack)?;
    env.export(exports, "odbClose", odb_close)?;
    env.export(exports, "odbHas", odb_has)?;
    env.export(exports, "odbRead", odb_read)?;
    env.export(exports, "odbReadCommit", odb_read_commit)?;
    env.export(exports, "checkoutNew", checkout_new)?;
    env.export(exports, "checkoutRun", checkout_run)?;
    env.export(exports, "checkoutProgress", checkout_progress)?;
    env.export(exports, "connectivityCheck", connectivity_check)?;
    Ok(())
}

fn handle(args: &Args, i: usize) -> JsResult<&Arc<Odb>> {
    args.external::<Arc<Odb>>(i)
}

fn oid_arg(args: &Args, i: usize) -> JsResult<[u8; 20]> {
    let s = args.string(i)?;
    oid_of(&s)
}

fn oid_of(s: &str) -> JsResult<[u8; 20]> {
    parse_oid(s).ok_or_else(|| JsError::type_error(format!("{:?} is not a 40-digit hex object id", s)))
}

/// odbOpen(gitDir, { cacheBytes? }) -> handle
fn odb_open(env: Env, args: &Args) -> JsResult<Value> {
    let git_dir = PathBuf::from(args.string(0)?);
    let mut cache = mpgit_core::odb::DEFAULT_CACHE_BYTES;
    if !args.is_nullish(1) {
        let v = env.get_property(args.value(1)?, "cacheBytes")?;
        if !env.is_nullish(v) {
            let n = env.get_number(v)?;
            if !(0.0..=9.0e15).contains(&n) || n.fract() != 0.0 {
                return Err(JsError::new("ERR_OUT_OF_RANGE", format!("cacheBytes must be a non-negative integer, not {}", n)));
            }
            cache = n as usize;
        }
    }
    let odb = Odb::open_with(&git_dir, cache).map_err(js)?;
    env.external(Arc::new(odb))
}

/// odbAddPack(h, packPath, idxPath)
fn odb_add_pack(env: Env, args: &Args) -> JsResult<Value> {
    handle(args, 0)?.add_pack(&PathBuf::from(args.string(1)?), &PathBuf::from(args.string(2)?)).map_err(js)?;
    env.undefined()
}

/// odbClose(h): lets go of the packs now rather than when the handle is collected.
fn odb_close(env: Env, args: &Args) -> JsResult<Value> {
    handle(args, 0)?.close();
    env.undefined()
}

/// odbHas(h, oid) -> boolean
fn odb_has(env: Env, args: &Args) -> JsResult<Value> {
    let has = handle(args, 0)?.has(&oid_arg(args, 1)?).map_err(js)?;
    env.boolean(has)
}

/// odbRead(h, oid) -> { type: 1..4, data: Buffer } | null
fn odb_read(env: Env, args: &Args) -> JsResult<Value> {
    match handle(args, 0)?.read(&oid_arg(args, 1)?).map_err(js)? {
        None => env.null(),
        Some(o) => {
            let r = env.object()?;
            r.set_number("type", o.kind as f64)?;
            r.set("data", env.buffer(&o.data)?)?;
            Ok(r.value())
        }
    }
}

/// odbReadCommit(h, oid) -> { tree, parents, time } | null (missing, or not a commit)
fn odb_read_commit(env: Env, args: &Args) -> JsResult<Value> {
    match handle(args, 0)?.read_commit(&oid_arg(args, 1)?).map_err(js)? {
        None => env.null(),
        Some(c) => {
            let r = env.object()?;
            r.set_string("tree", &hex(&c.tree))?;
            let parents: Vec<Value> = c.parents.iter().map(|p| env.string(&hex(p))).collect::<JsResult<_>>()?;
            r.set("parents", env.array(&parents)?)?;
            r.set_number("time", c.time as f64)?;
            Ok(r.value())
        }
    }
}

/// A checkout, set up by checkoutNew and run (once) by checkoutRun.
struct CheckoutJob {
    odb: Arc<Odb>,
    tree: [u8; 20],
    work_tree: PathBuf,
    index: Option<PathBuf>,
    threads: usize,
    progress: Progress,
    started: AtomicBool,
}

/// checkoutNew(h, treeOrCommit, workTree, { threads, indexPath: string | null }) -> handle
fn checkout_new(env: Env, args: &Args) -> JsResult<Value> {
    let odb = handle(args, 0)?.clone();
    let tree = oid_arg(args, 1)?;
    let work_tree = PathBuf::from(args.string(2)?);
    let o = args.value(3)?;
    let threads = threads_option(env, o)?;
    let iv = env.get_property(o, "indexPath")?;
    let index = if env.is_nullish(iv) { None } else { Some(PathBuf::from(env.get_string(iv)?)) };
    let job = CheckoutJob { odb, tree, work_tree, index, threads, progress: Progress::default(), started: AtomicBool::new(false) };
    env.external(Arc::new(job))
}

/// checkoutRun(c) -> Promise<{ entries, directories, bytes }>
fn checkout_run(env: Env, args: &Args) -> JsResult<Value> {
    let job = args.external::<Arc<CheckoutJob>>(0)?.clone();
    if job.started.swap(true, Ordering::AcqRel) {
        return Err(JsError::new("ERR_INVALID_STATE", "this checkout has already run"));
    }
    env.promise(
        "mpgit.checkout",
        move || checkout::checkout(&job.odb, &job.tree, &job.work_tree, job.index.as_deref(), job.threads, &job.progress).map_err(js),
        |env, s: Summary| {
            let r = env.object()?;
            r.set_number("entries", s.entries as f64)?;
            r.set_number("directories", s.directories as f64)?;
            r.set_number("bytes", s.bytes as f64)?;
            Ok(r.value())
        },
    )
}

/// checkoutProgress(c) -> { done, total }
fn checkout_progress(env: Env, args: &Args) -> JsResult<Value> {
    let job = args.external::<Arc<CheckoutJob>>(0)?;
    let r = env.object()?;
    r.set_number("done", job.progress.done.load(Ordering::Relaxed) as f64)?;
    r.set_number("total", job.progress.total.load(Ordering::Relaxed) as f64)?;
    Ok(r.value())
}

/// connectivityCheck(h, tips, shallow, before: handle | null) -> Promise<{ objects }>
fn connectivity_check(env: Env, args: &Args) -> JsResult<Value> {
    let odb = handle(args, 0)?.clone();
    let tips: Vec<[u8; 20]> = env.get_string_array(args.value(1)?)?.iter().map(|s| oid_of(s)).collect::<JsResult<_>>()?;
    let shallow: HashSet<[u8; 20]> = env.get_string_array(args.value(2)?)?.iter().map(|s| oid_of(s)).collect::<JsResult<_>>()?;
    let before = if args.is_nullish(3) { None } else { Some(handle(args, 3)?.clone()) };
    env.promise(
        "mpgit.connectivity",
        move || check_connected(&odb, &tips, &shallow, before.as_deref()).map_err(js),
        |env, n: u64| {
            let r = env.object()?;
            r.set_number("objects", n as f64)?;
            Ok(r.value())
        },
    )
}
