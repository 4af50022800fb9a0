//! The pack indexer for the TypeScript shell (docs/ARCHITECTURE.md, "The native pack indexer
//! surface"): a streaming indexer behind an external handle, and one call for a pack on disk.
//! Long work (resolving, finishing, indexing a file) runs on libuv's pool and returns promises.

use crate::napi::{Args, Env, JsError, JsResult, Value};
use mpgit_core::pack::{self, inflate::GIT_APPEND_LEVEL, Indexer, Options, Error, Summary};
use std::path::PathBuf;
use std::sync::Arc;

/// Most threads a caller may ask for (a typo such as 1e9 must not spawn a billion threads).
const MAX_THREADS: f64 = mpgit_core::MAX_THREADS as f64;

pub fn register(env: Env, exports: Value) -> JsResult<()> {
    env.export(exports, "packIndexerNew", indexer_new)?;
    env.export(exports, "packIndexerWrite", indexer_write)?;
    env.export(exports, "packIndexerProgress", indexer_progress)?;
    env.export(exports, "packIndexerResolve", indexer_resolve)?;
    env.export(exports, "packIndexerAddBase", indexer_add_base)?;
    env.export(exports, "packIndexerFinish", indexer_finish)?;
    env.export(exports, "indexPackFile", index_pack_file)?;
    Ok(())
}

pub(crate) fn js(e: Error) -> JsError {
    JsError::new(&e.code(), e.message)
}

fn handle(args: &Args, i: usize) -> JsResult<&Arc<Indexer>> {
    args.external::<Arc<Indexer>>(i)
}

/// `obj[name]` as a string, or None when absent (undefined / null).
fn opt_string(env: Env, obj: Value, name: &str) -> JsResult<Option<String>> {
    let v = env.get_property(obj, name)?;
    if env.is_nullish(v) {
        return Ok(None);
    }
    env.get_string(v).map(Some).map_err(|_| JsError::type_error(format!("{} must be a string", name)))
}

fn opt_number(env: Env, obj: Value, name: &str) -> JsResult<Option<f64>> {
    let v = env.get_property(obj, name)?;
    if env.is_nullish(v) {
        return Ok(None);
    }
    env.get_number(v).map(Some).map_err(|_| JsError::type_error(format!("{} must be a number", name)))
}

/// `obj.threads`: required, a whole number from 1 to the core's MAX_THREADS (the indexer's and
/// the checkout's threads alike).
pub(crate) fn threads_option(env: Env, obj: Value) -> JsResult<usize> {
    let threads = opt_number(env, obj, "threads")?.ok_or_else(|| JsError::type_error("threads is required"))?;
    if !(1.0..=MAX_THREADS).contains(&threads) || threads.fract() != 0.0 {
        return Err(JsError::new("ERR_OUT_OF_RANGE", format!("threads must be an integer 1..{}, not {}", MAX_THREADS, threads)));
    }
    Ok(threads as usize)
}

fn options(env: Env, obj: Value) -> JsResult<Options> {
    let threads = threads_option(env, obj)?;
    let max_cache_bytes = match opt_number(env, obj, "maxCacheBytes")? {
        None => None,
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9.0e15 => Some(n as usize),
        Some(n) => return Err(JsError::new("ERR_OUT_OF_RANGE", format!("maxCacheBytes must be a non-negative integer, not {}", n))),
    };
    Ok(Options { threads, max_cache_bytes })
}

fn summary(env: Env, s: Summary) -> JsResult<Value> {
    let o = env.object()?;
    o.set_string("packChecksum", &mpgit_core::oid::hex(&s.pack_checksum))?;
    o.set_number("objectCount", s.object_count as f64)?;
    o.set_number("deltaCount", s.delta_count as f64)?;
    o.set_number("appendedBases", s.appended_bases as f64)?;
    Ok(o.value())
}

/// packIndexerNew(packPath, { threads, maxCacheBytes? }) -> handle
fn indexer_new(env: Env, args: &Args) -> JsResult<Value> {
    let path = PathBuf::from(args.string(0)?);
    let opts = options(env, args.value(1)?)?;
    let ix = Indexer::create(&path, opts).map_err(js)?;
    env.external(Arc::new(ix))
}

/// packIndexerWrite(h, chunk) -> bytes queued, not yet parsed
fn indexer_write(env: Env, args: &Args) -> JsResult<Value> {
    let ix = handle(args, 0)?;
    let queued = ix.write(args.bytes(1)?).map_err(js)?;
    env.number(queued as f64)
}

/// packIndexerProgress(h) -> { bytes, objectsTotal, objectsReceived, deltasTotal, deltasResolved }
fn indexer_progress(env: Env, args: &Args) -> JsResult<Value> {
    let p = handle(args, 0)?.progress();
    let o = env.object()?;
    o.set_number("bytes", p.bytes as f64)?;
    o.set_number("objectsTotal", p.objects_total as f64)?;
    o.set_number("objectsReceived", p.objects_received as f64)?;
    o.set_number("deltasTotal", p.deltas_total as f64)?;
    o.set_number("deltasResolved", p.deltas_resolved as f64)?;
    Ok(o.value())
}

/// packIndexerResolve(h) -> Promise<{ missing: string[] }>
fn indexer_resolve(env: Env, args: &Args) -> JsResult<Value> {
    let ix = handle(args, 0)?.clone();
    env.promise("mpgit.packResolve", move || ix.resolve().map_err(js), |env, missing| {
        let ids: Vec<Value> = missing.iter().map(|id| env.string(&mpgit_core::oid::hex(id))).collect::<JsResult<_>>()?;
        let o = env.object()?;
        o.set("missing", env.array(&ids)?)?;
        Ok(o.value())
    })
}

/// packIndexerAddBase(h, oid, type, data)
fn indexer_add_base(env: Env, args: &Args) -> JsResult<Value> {
    let ix = handle(args, 0)?;
    let oid_hex = args.string(1)?;
    let oid = mpgit_core::oid::parse_oid(&oid_hex).ok_or_else(|| JsError::type_error(format!("{:?} is not a 40-digit hex object id", oid_hex)))?;
    let kind = args.number(2)?;
    if !(1.0..=4.0).contains(&kind) || kind.fract() != 0.0 {
        return Err(JsError::new("ERR_OUT_OF_RANGE", format!("type must be 1 (commit) .. 4 (tag), not {}", kind)));
    }
    ix.add_base(oid, kind as u8, args.bytes(3)?).map_err(js)?;
    env.undefined()
}

/// packIndexerFinish(h, { idxPath, revPath, fixThin, compressionLevel? }) -> Promise<summary>
fn indexer_finish(env: Env, args: &Args) -> JsResult<Value> {
    let ix = handle(args, 0)?.clone();
    let o = args.value(1)?;
    let idx = PathBuf::from(opt_string(env, o, "idxPath")?.ok_or_else(|| JsError::type_error("idxPath is required"))?);
    let rev = opt_string(env, o, "revPath")?.map(PathBuf::from);
    let fix_thin = env.get_bool(env.get_property(o, "fixThin")?).map_err(|_| JsError::type_error("fixThin must be a boolean"))?;
    let level = match opt_number(env, o, "compressionLevel")? {
        None => GIT_APPEND_LEVEL,
        Some(n) if (0.0..=9.0).contains(&n) && n.fract() == 0.0 => n as u32,
        // git's -1 (Z_DEFAULT_COMPRESSION) is zlib's 6.
        Some(n) if n == -1.0 => 6,
        Some(n) => return Err(JsError::new("ERR_OUT_OF_RANGE", format!("compressionLevel must be -1..9, not {}", n))),
    };
    env.promise("mpgit.packFinish", move || ix.finish(&idx, rev.as_deref(), fix_thin, level).map_err(js), summary)
}

/// indexPackFile(packPath, { threads, idxPath, revPath, maxCacheBytes? }) -> Promise<summary>
fn index_pack_file(env: Env, args: &Args) -> JsResult<Value> {
    let path = PathBuf::from(args.string(0)?);
    let o = args.value(1)?;
    let opts = options(env, o)?;
    let idx = PathBuf::from(opt_string(env, o, "idxPath")?.ok_or_else(|| JsError::type_error("idxPath is required"))?);
    let rev = opt_string(env, o, "revPath")?.map(PathBuf::from);
    env.promise("mpgit.indexPackFile", move || pack::index_pack_file(&path, opts, &idx, rev.as_deref()).map_err(js), summary)
}
