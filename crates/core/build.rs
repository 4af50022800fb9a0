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
    let vcpkg = vcpkg_dirs();
    match static_libdeflate(&vcpkg) {
        Some((dir, name)) => {
            println!("cargo:rustc-link-search=native={}", dir);
            println!("cargo:rustc-link-lib=static={}", name);
        }
        // MSVC finds libraries only where it is told: no system copy to fall back on.
        None if std::env::var("CARGO_CFG_TARGET_ENV").map_or(false, |e| e == "msvc") => panic!(
            "mpgit-core: no static libdeflate for this MSVC target: searched {} for {}. Install it with `vcpkg install libdeflate:{}` (and set VCPKG_ROOT), or set MPGIT_LIBDEFLATE_DIR",
            searched(&vcpkg),
            MSVC_NAMES.iter().map(|n| format!("{}.lib", n)).collect::<Vec<_>>().join(", "),
            vcpkg_triplet()
        ),
        None => println!("cargo:rustc-link-lib=deflate"),
    }
    // libdeflate has no run-time version call: reports name the headers it was built against.
    let mut headers: Vec<String> = vcpkg.iter().map(|lib| format!("{}/../include", lib)).collect();
    headers.extend(["/usr/include", "/usr/local/include", "/opt/homebrew/include"].iter().map(|d| d.to_string()));
    let header = headers.iter().find_map(|d| std::fs::read_to_string(format!("{}/libdeflate.h", d)).ok());
    let version = header
        .as_deref()
        .and_then(|h| h.lines().find_map(|l| l.strip_prefix("#define LIBDEFLATE_VERSION_STRING")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "(version unknown)".into());
    println!("cargo:rustc-env=MPGIT_LIBDEFLATE_VERSION={}", version);
}

/// libdeflate's static library as vcpkg installs it for MSVC, by libdeflate version: CMake
/// builds (1.15 on) name it deflatestatic.lib or deflate.lib, the older Makefile.msc
/// libdeflatestatic.lib. libdeflate.lib comes last: there it is a DLL's import library, but a
/// static triplet's lib dir holds no DLL's.
#[cfg(feature = "native")]
const MSVC_NAMES: [&str; 4] = ["deflatestatic", "deflate", "libdeflatestatic", "libdeflate"];

#[cfg(feature = "native")]
/// The directory holding a static libdeflate and its link name: MPGIT_LIBDEFLATE_DIR first, then
/// for a Unix target the usual library dirs (libdeflate.a; a Windows target's library is never
/// in them, even when checked from Linux), for MSVC vcpkg's static triplet (`vcpkg_dirs`).
fn static_libdeflate(vcpkg: &[String]) -> Option<(String, &'static str)> {
    println!("cargo:rerun-if-env-changed=MPGIT_LIBDEFLATE_DIR");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let unix = std::env::var_os("CARGO_CFG_UNIX").is_some();
    let msvc = std::env::var("CARGO_CFG_TARGET_ENV").map_or(false, |e| e == "msvc");
    let mut dirs = vec![std::env::var("MPGIT_LIBDEFLATE_DIR").ok()];
    if unix {
        // Homebrew's on Apple silicon is /opt/homebrew (release.yml's darwin-arm64 runner).
        let multiarch = format!("/usr/lib/{}-linux-gnu", arch);
        dirs.extend([Some(multiarch), Some("/usr/lib".into()), Some("/usr/local/lib".into()), Some("/opt/homebrew/lib".into())]);
    }
    if msvc {
        dirs.extend(vcpkg.iter().cloned().map(Some));
    }
    let names: Vec<(String, &'static str)> = if msvc {
        MSVC_NAMES.iter().map(|n| (format!("{}.lib", n), *n)).collect()
    } else {
        vec![("libdeflate.a".to_string(), "deflate")]
    };
    dirs.into_iter().flatten().find_map(|d| {
        let found = names.iter().find(|(file, _)| std::path::Path::new(&d).join(file).exists());
        found.map(|(_, name)| (d.clone(), *name))
    })
}

#[cfg(feature = "native")]
/// vcpkg's static triplet for the target: x64-windows-static (release.yml installs it).
fn vcpkg_triplet() -> String {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    format!("{}-windows-static", if arch == "aarch64" { "arm64" } else { "x64" })
}

#[cfg(feature = "native")]
/// The library dirs of vcpkg's static triplet, under $VCPKG_ROOT and $VCPKG_INSTALLATION_ROOT
/// (what GitHub's Windows images set), for an MSVC target only.
fn vcpkg_dirs() -> Vec<String> {
    println!("cargo:rerun-if-env-changed=VCPKG_ROOT");
    println!("cargo:rerun-if-env-changed=VCPKG_INSTALLATION_ROOT");
    if std::env::var("CARGO_CFG_TARGET_ENV").map_or(true, |e| e != "msvc") {
        return Vec::new();
    }
    let roots = ["VCPKG_ROOT", "VCPKG_INSTALLATION_ROOT"].iter().filter_map(|v| std::env::var(v).ok()).filter(|r| !r.is_empty());
    roots.map(|r| format!("{}/installed/{}/lib", r, vcpkg_triplet())).collect()
}

#[cfg(feature = "native")]
/// What was searched, for the error: MPGIT_LIBDEFLATE_DIR and vcpkg's dirs (or their absence).
fn searched(vcpkg: &[String]) -> String {
    let mut dirs: Vec<String> = std::env::var("MPGIT_LIBDEFLATE_DIR").ok().into_iter().collect();
    dirs.extend(vcpkg.iter().cloned());
    if vcpkg.is_empty() {
        dirs.push("$VCPKG_ROOT/$VCPKG_INSTALLATION_ROOT (neither is set)".into());
    }
    dirs.join(", ")
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
