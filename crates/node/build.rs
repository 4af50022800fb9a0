//! Links zlib into the addon (Debian's libz.a) where it can, so that the prebuilt package needs
//! nothing beyond the C library: libz-sys (Debian's) links it dynamically, and with the linker's
//! --as-needed the shared one then goes unused.

fn main() {
    println!("cargo:rerun-if-env-changed=MPGIT_LIBZ_DIR");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // Elsewhere zlib is linked as libz-sys links it. On Windows (MSVC) that is statically too:
    // crates.io's libz-sys takes vcpkg's zlib (release.yml sets VCPKG_ROOT and +crt-static, so
    // the vcpkg crate picks the x64-windows-static triplet the workflow installs), else it
    // compiles its bundled copy. macOS has a system libz in every install.
    if os != "linux" {
        return;
    }
    let dirs = [std::env::var("MPGIT_LIBZ_DIR").ok(), Some(format!("/usr/lib/{}-linux-gnu", arch)), Some("/usr/lib".into())];
    if let Some(dir) = dirs.into_iter().flatten().find(|d| std::path::Path::new(d).join("libz.a").exists()) {
        // Whole: the archive comes before the crates that call it; libz-sys's -lz then goes
        // unused, and the linker's --as-needed (rustc's default) leaves it out.
        println!("cargo:rustc-link-search=native={}", dir);
        println!("cargo:rustc-link-lib=static:+whole-archive=z");
        // Its symbols stay local: node exports a zlib of its own (a fork whose deflate output
        // differs from git's), and exported ones would bind to node's at load time.
        println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,libz.a");
    }
}
