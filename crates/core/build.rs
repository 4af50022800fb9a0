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
}
