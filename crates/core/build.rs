//! Builds the C parts of mpgit-core: sha1dc (vendored under src/pack/sha1dc, as git vendors
//! it) and links libdeflate (Debian's libdeflate-dev), the whole-buffer inflater used where an
//! entry's inflated size is known.

fn main() {
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
    println!("cargo:rustc-link-lib=deflate");
    // libdeflate has no run-time version call: reports name the headers it was built against.
    let header = ["/usr/include/libdeflate.h", "/usr/local/include/libdeflate.h"].into_iter().find_map(|p| std::fs::read_to_string(p).ok());
    let version = header
        .as_deref()
        .and_then(|h| h.lines().find_map(|l| l.strip_prefix("#define LIBDEFLATE_VERSION_STRING")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "(version unknown)".into());
    println!("cargo:rustc-env=MPGIT_LIBDEFLATE_VERSION={}", version);
}
