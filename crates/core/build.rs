//! Builds the C parts of mpgit-core: sha1dc (vendored under src/pack/sha1dc, as git vendors
//! it) and links libdeflate (Debian's libdeflate-dev), the whole-buffer inflater used where an
//! entry's inflated size is known.

fn main() {
    avx512_cfg();
    // The C parts belong to the native build only (the WebAssembly core is pure Rust).
    if std::env::var_os("CARGO_FEATURE_NATIVE").is_none() {
        return;
    }
    native();
}

#[cfg(not(feature = "native"))]
fn native() {}

#[cfg(feature = "native")]
fn native() {
    let dir = "src/pack/sha1dc";
    cc::Build::new()
        .file(format!("{}/glue.c", dir))
        .file(format!("{}/ubc_check.c", dir))
        .include(dir)
        .opt_level(3)
        .warnings(false)
        .compile("mpgit_sha1dc");
    for f in ["glue.c", "sha1.c", "sha1.h", "ubc_check.c", "ubc_check.h"] {
        println!("cargo:rerun-if-changed={}/{}", dir, f);
    }
    // Statically: the addon then needs nothing beyond libc (and the zlib every system has), so
    // the prebuilt package runs where libdeflate is not installed. Debian's libdeflate.a is PIC.
    match static_libdeflate() {
        Some(dir) => {
            println!("cargo:rustc-link-search=native={}", dir);
            println!("cargo:rustc-link-lib=static=deflate");
        }
        None => println!("cargo:rustc-link-lib=deflate"),
    }
    // libdeflate has no run-time version call: reports name the headers it was built against.
    let header = ["/usr/include/libdeflate.h", "/usr/local/include/libdeflate.h", "/opt/homebrew/include/libdeflate.h"].into_iter().find_map(|p| std::fs::read_to_string(p).ok());
    let version = header
        .as_deref()
        .and_then(|h| h.lines().find_map(|l| l.strip_prefix("#define LIBDEFLATE_VERSION_STRING")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "(version unknown)".into());
    println!("cargo:rustc-env=MPGIT_LIBDEFLATE_VERSION={}", version);
}

#[cfg(feature = "native")]
/// The directory holding libdeflate.a (MPGIT_LIBDEFLATE_DIR, else the usual library dirs of a
/// Unix target: a Windows target's library is never in them, even when checked from Linux).
fn static_libdeflate() -> Option<String> {
    println!("cargo:rerun-if-env-changed=MPGIT_LIBDEFLATE_DIR");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let unix = std::env::var_os("CARGO_CFG_UNIX").is_some();
    let multiarch = format!("/usr/lib/{}-linux-gnu", arch);
    let mut dirs = vec![std::env::var("MPGIT_LIBDEFLATE_DIR").ok()];
    if unix {
        // Homebrew's on Apple silicon is /opt/homebrew (release.yml's darwin-arm64 runner).
        dirs.extend([Some(multiarch), Some("/usr/lib".into()), Some("/usr/local/lib".into()), Some("/opt/homebrew/lib".into())]);
    }
    dirs.into_iter().flatten().find(|d| std::path::Path::new(d).join("libdeflate.a").exists())
}

/// `mpgit_avx512` where rustc has the AVX-512 intrinsics (stable since 1.89): the SHA-1
/// backend that checks sha1dc's bit conditions with them (pack/sha1dc/ni.rs). Older compilers,
/// down to the MSRV (1.63), build everything else; the backend then reports itself missing.
fn avx512_cfg() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc).arg("--version").output().ok();
    let version = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    // "rustc 1.89.0 (29483883e 2025-08-04)": the minor version.
    let minor = version.split_whitespace().nth(1).and_then(|v| v.split('.').nth(1)).and_then(|m| m.parse::<u32>().ok());
    // Declared for rustc's cfg check (cargo 1.80 on; older cargo warns about the line).
    if minor.map_or(false, |m| m >= 80) {
        println!("cargo:rustc-check-cfg=cfg(mpgit_avx512)");
    }
    if minor.map_or(false, |m| m >= 89) {
        println!("cargo:rustc-cfg=mpgit_avx512");
    }
}
