//! Fuzz targets for every parser of the core that reads bytes from the network or the disk:
//! pack entry headers, inflate, delta application, .idx reading (with the pack entries it
//! points at), loose objects, tree / commit / tag parsing, the index file, and the pack
//! scanner. A seeded, mutation-based driver (`harness`) runs each over seed inputs and their
//! mutations, every input bounded in size, and checks for each one:
//! - no panic, crash or abort (a signal handler saves the input of a crash);
//! - no hang (a watchdog saves the input and aborts past the per-input time bound);
//! - memory bounded by the target's stated multiple of the input (large blocks reserved, even
//!   untouched, and the resident peak);
//! - a typed error, or a result that re-encodes to the same bytes where an encoder exists (or
//!   that equals a reference implementation's).
//!
//! `cargo test --release -p mpgit-core fuzz::` runs a short pass (2,000 inputs per target,
//! seed 1). `npm run fuzz` runs longer ones through the environment (see `harness::Config`).
//! Inputs that failed are saved as corpus files; files under test/fuzz/corpus/rust/<target>/
//! are replayed first on every run, which makes each a regression test.

mod harness;
mod mutate;
mod targets;
mod targets_odb;

#[test]
fn run() {
    let cfg = harness::Config::from_env();
    let mut failed = Vec::new();
    for t in targets::all() {
        if !cfg.selected(t.name) {
            continue;
        }
        let report = harness::fuzz(&cfg, &t);
        println!("FUZZ-RESULT {}", report.json());
        if report.crashes + report.hangs + report.memory > 0 {
            failed.push(t.name);
        }
    }
    assert!(failed.is_empty(), "fuzz targets with failing inputs: {:?} (saved under {})", failed, cfg.crash_dir.display());
}
