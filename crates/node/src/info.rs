//! What the core runs on this machine, for `mpgit version` and the benches: the SHA-1 backend
//! chosen (and each candidate's measured speed), the CPU flags the core sees, the inflaters;
//! and one call that hashes a buffer on a named backend (bench:hash).

use crate::napi::{Args, Env, JsError, JsResult, Value};
use mpgit_core::pack::inflate;
use mpgit_core::pack::sha1dc::select::{self, ALL, FLAGS};
use mpgit_core::pack::sha1dc::{Backend, Sha1Dc};
use sha1::{Digest, Sha1};

pub fn register(env: Env, exports: Value) -> JsResult<()> {
    env.export(exports, "coreInfo", core_info)?;
    env.export(exports, "sha1Hash", sha1_hash)?;
    Ok(())
}

/// coreInfo() -> { sha1: { backend, forced, error, sampleBytes, backends: [{ name, supported,
///   missingFlags, mbPerSec }] }, cpuFlags: { sha_ni, ... }, inflate: { whole, streaming } }
/// The first call in a process makes the SHA-1 selection (a few ms) if nothing hashed yet.
fn core_info(env: Env, _args: &Args) -> JsResult<Value> {
    let sel = select::selection();
    let sha1 = env.object()?;
    match sel {
        Ok(s) => {
            sha1.set_string("backend", s.chosen.name())?;
            sha1.set_bool("forced", s.forced)?;
            sha1.set("error", env.null()?)?;
            sha1.set_number("sampleBytes", s.sample_bytes as f64)?;
        }
        Err(e) => {
            sha1.set("backend", env.null()?)?;
            sha1.set_bool("forced", true)?;
            sha1.set_string("error", &e.to_string())?;
            sha1.set("sampleBytes", env.null()?)?;
        }
    }
    let mut rows = Vec::new();
    for b in ALL {
        let row = env.object()?;
        row.set_string("name", b.name())?;
        let missing = b.missing_flags();
        row.set_bool("supported", missing.is_empty())?;
        let flags: Vec<Value> = missing.iter().map(|f| env.string(f)).collect::<JsResult<_>>()?;
        row.set("missingFlags", env.array(&flags)?)?;
        let speed = sel.as_ref().ok().and_then(|s| s.measured.iter().find(|m| m.0 == b)).map(|m| m.1);
        row.set("mbPerSec", match speed {
            Some(v) => env.number((v * 10.0).round() / 10.0)?,
            None => env.null()?,
        })?;
        rows.push(row.value());
    }
    sha1.set("backends", env.array(&rows)?)?;
    let flags = env.object()?;
    for f in FLAGS {
        flags.set_bool(f, select::cpu_flag(f))?;
    }
    let (whole, streaming) = inflate::libraries();
    let infl = env.object()?;
    infl.set_string("whole", &whole)?;
    infl.set_string("streaming", &streaming)?;
    let o = env.object()?;
    o.set("sha1", sha1.value())?;
    o.set("cpuFlags", flags.value())?;
    o.set("inflate", infl.value())?;
    Ok(o.value())
}

/// sha1Hash(data, backend, objectBytes) -> hex id of the last object: `data` hashed as
/// consecutive objects of `objectBytes` (0: one object), with a sha1dc backend by name, or
/// "plain" for plain SHA-1 (the pack checksum's). Collisions are MPGIT_BAD_PACK errors.
fn sha1_hash(env: Env, args: &Args) -> JsResult<Value> {
    let data = args.bytes(0)?;
    let name = args.string(1)?;
    let object = args.number(2)?;
    if !(object >= 0.0 && object.fract() == 0.0) {
        return Err(JsError::new("ERR_OUT_OF_RANGE", format!("objectBytes must be a non-negative integer, not {}", object)));
    }
    let size = if object == 0.0 { data.len().max(1) } else { object as usize };
    let mut last = [0u8; 20];
    if name == "plain" {
        for chunk in data.chunks(size) {
            last = Sha1::digest(chunk).into();
        }
        return env.string(&mpgit_core::oid::hex(&last));
    }
    let backend = Backend::from_name(&name).ok_or_else(|| JsError::new("ERR_INVALID_ARG_VALUE", format!("no SHA-1 backend {:?}", name)))?;
    let missing = backend.missing_flags();
    if !missing.is_empty() {
        return Err(JsError::new("MPGIT_SHA1_BACKEND", format!("SHA-1 backend {} needs CPU flags this CPU lacks: {}", name, missing.join(", "))));
    }
    for chunk in data.chunks(size) {
        let mut h = Sha1Dc::with_backend(backend);
        h.update(chunk);
        last = h.finalize().map_err(|_| JsError::new("MPGIT_BAD_PACK", "SHA-1 collision attack detected in the data"))?;
    }
    env.string(&mpgit_core::oid::hex(&last))
}
