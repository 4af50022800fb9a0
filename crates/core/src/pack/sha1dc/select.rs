//! Which SHA-1 backend runs: chosen by measurement, once per process.
//!
//! A CPU-specific path can be slower than the portable one (AVX-512 state left dirty before
//! legacy-SSE SHA instructions once made it 25x slower), so having the instructions is not
//! enough: at first use every backend the CPU supports hashes the same few hundred KB of
//! object-sized inputs, and the fastest is used from then on. `MPGIT_SHA1_BACKEND` forces one;
//! asking for one the CPU lacks is an error naming the missing flags. `MPGIT_HIDE_CPU_FLAGS`
//! (comma-separated /proc/cpuinfo names) makes the core act as if the CPU lacked those flags:
//! it only ever takes paths away, so it is safe, and it lets tests reach the other CPUs' paths.

use super::{Backend, Sha1Dc};
use std::fmt;
use crate::once::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable that forces a backend.
pub const FORCE_VAR: &str = "MPGIT_SHA1_BACKEND";
/// The environment variable that hides CPU flags from the core.
pub const HIDE_VAR: &str = "MPGIT_HIDE_CPU_FLAGS";

/// Every backend, portable first: on equal timings the earlier one wins.
pub const ALL: [Backend; 3] = [Backend::Portable, Backend::ShaNi, Backend::ShaNiAvx512];

/// The CPU flags the core looks at, as /proc/cpuinfo names them.
pub const FLAGS: [&str; 5] = ["sha_ni", "ssse3", "sse4_1", "avx2", "avx512f"];

/// What `missing_flags` adds for the AVX-512 backend in a build without it (its intrinsics
/// need rustc 1.89; the MSRV build, 1.63, leaves it out: build.rs).
const NOT_BUILT: &str = "the AVX-512 code (this build's rustc predates 1.89)";

impl Backend {
    /// The name `MPGIT_SHA1_BACKEND` and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::ShaNi => "shani",
            Backend::ShaNiAvx512 => "shani-avx512",
        }
    }

    pub fn from_name(name: &str) -> Option<Backend> {
        ALL.into_iter().find(|b| b.name() == name)
    }

    /// The CPU flags the backend's code needs.
    pub fn required_flags(self) -> &'static [&'static str] {
        match self {
            Backend::Portable => &[],
            Backend::ShaNi => &["sha_ni", "ssse3", "sse4_1"],
            Backend::ShaNiAvx512 => &["sha_ni", "ssse3", "sse4_1", "avx512f"],
        }
    }

    /// The required flags this CPU lacks (or that `MPGIT_HIDE_CPU_FLAGS` hides).
    pub fn missing_flags(self) -> Vec<&'static str> {
        let mut missing: Vec<&'static str> = self.required_flags().iter().copied().filter(|f| !cpu_flag(f)).collect();
        if self == Backend::ShaNiAvx512 && !cfg!(mpgit_avx512) {
            missing.push(NOT_BUILT);
        }
        missing
    }

    /// Whether this CPU runs the backend.
    pub fn supported(self) -> bool {
        self.missing_flags().is_empty()
    }
}

fn hidden_flags() -> &'static [String] {
    static HIDDEN: OnceLock<Vec<String>> = OnceLock::new();
    HIDDEN.get_or_init(|| {
        std::env::var(HIDE_VAR).unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    })
}

/// Whether the CPU has `flag` (a /proc/cpuinfo name from `FLAGS`) and it is not hidden.
pub fn cpu_flag(flag: &str) -> bool {
    if hidden_flags().iter().any(|h| h == flag) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        match flag {
            "sha_ni" => is_x86_feature_detected!("sha"),
            "ssse3" => is_x86_feature_detected!("ssse3"),
            "sse4_1" => is_x86_feature_detected!("sse4.1"),
            "avx2" => is_x86_feature_detected!("avx2"),
            "avx512f" => is_x86_feature_detected!("avx512f"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The outcome: the backend used, whether it was forced, and each supported backend's speed.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub chosen: Backend,
    pub forced: bool,
    /// (backend, MB/s) for every backend this CPU supports, in `ALL`'s order.
    pub measured: Vec<(Backend, f64)>,
    /// Bytes each backend hashed per measurement round.
    pub sample_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// `MPGIT_SHA1_BACKEND` names no backend.
    Unknown(String),
    /// The forced backend needs CPU flags this CPU lacks.
    Missing { backend: Backend, flags: Vec<&'static str> },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::Unknown(name) => {
                let names: Vec<&str> = ALL.iter().map(|b| b.name()).collect();
                write!(f, "{}={:?} is no SHA-1 backend: use one of {}", FORCE_VAR, name, names.join(", "))
            }
            SelectError::Missing { backend, flags } => write!(
                f,
                "{}={} needs CPU flags this CPU lacks: {} (unset it to let mpgit choose)",
                FORCE_VAR,
                backend.name(),
                flags.join(", ")
            ),
        }
    }
}

impl std::error::Error for SelectError {}

/// The fastest of the measured candidates (the first of equals: candidates come portable
/// first, so a specialised path must be strictly faster to be chosen).
pub fn fastest(timings: &[(Backend, Duration)]) -> Option<Backend> {
    let mut best: Option<(Backend, Duration)> = None;
    for &(b, t) in timings {
        if best.map_or(true, |(_, bt)| t < bt) {
            best = Some((b, t));
        }
    }
    best.map(|(b, _)| b)
}

/// The whole decision, with the CPU and the clock injected: `forced` is the environment's
/// request (empty = none), `missing` a backend's missing flags, `measure` the time one
/// backend takes to hash `sample_bytes`.
pub fn select(
    forced: Option<&str>,
    missing: &dyn Fn(Backend) -> Vec<&'static str>,
    measure: &mut dyn FnMut(&[Backend]) -> Vec<Duration>,
    sample_bytes: usize,
) -> Result<Selection, SelectError> {
    let forced = match forced.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(name) => {
            let b = Backend::from_name(name).ok_or_else(|| SelectError::Unknown(name.to_string()))?;
            let flags = missing(b);
            if !flags.is_empty() {
                return Err(SelectError::Missing { backend: b, flags });
            }
            Some(b)
        }
    };
    let candidates: Vec<Backend> = ALL.into_iter().filter(|b| missing(*b).is_empty()).collect();
    let times = measure(&candidates);
    let timings: Vec<(Backend, Duration)> = candidates.iter().copied().zip(times).collect();
    let measured = timings.iter().map(|&(b, t)| (b, mb_per_s(sample_bytes, t))).collect();
    let chosen = forced.or_else(|| fastest(&timings)).unwrap_or(Backend::Portable);
    Ok(Selection { chosen, forced: forced.is_some(), measured, sample_bytes })
}

fn mb_per_s(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9)
}

/// Per backend and round, this many bytes, as objects of 100 B to 16 KiB (what packs hold).
const SAMPLE_BYTES: usize = 96 * 1024;
const ROUNDS: usize = 6;

fn sample() -> (Vec<u8>, Vec<usize>) {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let data: Vec<u8> = (0..SAMPLE_BYTES).map(|_| (next() >> 24) as u8).collect();
    let mut sizes = Vec::new();
    let mut left = SAMPLE_BYTES;
    while left > 0 {
        let n = (100 + (next() % 16_284) as usize).min(left);
        sizes.push(n);
        left -= n;
    }
    (data, sizes)
}

/// This thread's CPU time: unlike the wall clock, it does not count the time other processes
/// hold the CPU, so a busy machine does not skew which backend looks fastest. Zero where
/// there is no such clock (Windows): the wall clock is used then.
#[cfg(not(unix))]
fn thread_cpu() -> Duration {
    Duration::ZERO
}

#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to write to.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Times each backend on the sample (in thread CPU time, or wall time where that clock is
/// missing): rounds interleaved (so a burst of load hits every backend alike), the best round
/// kept (the first run of AVX-512 code, page faults and interrupts only ever add time).
fn measure_real(candidates: &[Backend]) -> Vec<Duration> {
    let (data, sizes) = sample();
    let cpu_clock = thread_cpu() != Duration::ZERO;
    let start = Instant::now();
    let clock = move || if cpu_clock { thread_cpu() } else { start.elapsed() };
    let mut best = vec![Duration::MAX; candidates.len()];
    for _ in 0..ROUNDS {
        for (i, &b) in candidates.iter().enumerate() {
            let t = clock();
            let mut at = 0;
            for &n in &sizes {
                let mut h = Sha1Dc::with_backend(b);
                h.update(&data[at..at + n]);
                // A volatile read keeps the result, so the hashing is not optimised away (what
                // std::hint::black_box, Rust 1.66, does).
                let r = h.finalize().ok();
                // SAFETY: r is a live local.
                unsafe { std::ptr::read_volatile(&r) };
                at += n;
            }
            best[i] = best[i].min(clock().saturating_sub(t).max(Duration::from_nanos(1)));
        }
    }
    best
}

/// The process's selection, made at first use.
pub fn selection() -> &'static Result<Selection, SelectError> {
    static SELECTION: OnceLock<Result<Selection, SelectError>> = OnceLock::new();
    SELECTION.get_or_init(|| {
        let forced = std::env::var(FORCE_VAR).ok();
        select(forced.as_deref(), &|b| b.missing_flags(), &mut |c| measure_real(c), SAMPLE_BYTES)
    })
}

/// The backend in use, or why the requested one cannot run.
pub fn current() -> Result<Backend, SelectError> {
    selection().as_ref().map(|s| s.chosen).map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A CPU that has the backends in `has`, timed by `times` (in ALL's order, for the ones it has).
    fn run(forced: Option<&str>, has: &[Backend], times: &[(Backend, u64)]) -> Result<Selection, SelectError> {
        let has = has.to_vec();
        let missing = move |b: Backend| if has.contains(&b) { vec![] } else { vec!["flagless"] };
        let mut measure = |c: &[Backend]| c.iter().map(|b| ms(times.iter().find(|t| t.0 == *b).unwrap().1)).collect();
        select(forced, &missing, &mut measure, 1_000_000)
    }

    #[test]
    fn picks_the_fastest_measured_backend() {
        use Backend::*;
        let all = [Portable, ShaNi, ShaNiAvx512];
        // The fixed AVX-512 path is fastest.
        assert_eq!(run(None, &all, &[(Portable, 10), (ShaNi, 3), (ShaNiAvx512, 2)]).unwrap().chosen, ShaNiAvx512);
        // The AVX-512 path 25x slower than SHA-NI (the dirty-ZMM bug): SHA-NI wins.
        assert_eq!(run(None, &all, &[(Portable, 10), (ShaNi, 3), (ShaNiAvx512, 75)]).unwrap().chosen, ShaNi);
        // Both specialised paths slower than portable: portable.
        assert_eq!(run(None, &all, &[(Portable, 10), (ShaNi, 11), (ShaNiAvx512, 75)]).unwrap().chosen, Portable);
        // Equal to portable is not faster.
        assert_eq!(run(None, &all, &[(Portable, 5), (ShaNi, 5), (ShaNiAvx512, 6)]).unwrap().chosen, Portable);
        // Only what the CPU has is measured and reported.
        let s = run(None, &[Portable, ShaNi], &[(Portable, 10), (ShaNi, 4)]).unwrap();
        assert_eq!((s.chosen, s.forced), (ShaNi, false));
        assert_eq!(s.measured, vec![(Portable, 100.0), (ShaNi, 250.0)]);
        assert_eq!(run(None, &[Portable], &[(Portable, 10)]).unwrap().chosen, Portable);
        assert_eq!(fastest(&[]), None);
    }

    #[test]
    fn a_forced_backend_wins_and_a_missing_one_is_an_error_naming_the_flags() {
        use Backend::*;
        let all = [Portable, ShaNi, ShaNiAvx512];
        let times = [(Portable, 10), (ShaNi, 3), (ShaNiAvx512, 2)];
        let s = run(Some("portable"), &all, &times).unwrap();
        assert_eq!((s.chosen, s.forced, s.measured.len()), (Portable, true, 3));
        assert_eq!(run(Some(" shani "), &all, &times).unwrap().chosen, ShaNi);
        assert_eq!(run(Some(""), &all, &times).unwrap().forced, false);
        let e = run(Some("shani-avx512"), &[Portable, ShaNi], &times).unwrap_err();
        assert_eq!(e, SelectError::Missing { backend: ShaNiAvx512, flags: vec!["flagless"] });
        assert!(e.to_string().contains("MPGIT_SHA1_BACKEND=shani-avx512 needs CPU flags this CPU lacks: flagless"), "{}", e);
        let e = run(Some("fast"), &all, &times).unwrap_err();
        assert_eq!(e.to_string(), "MPGIT_SHA1_BACKEND=\"fast\" is no SHA-1 backend: use one of portable, shani, shani-avx512");
    }

    #[test]
    fn names_and_flags() {
        for b in ALL {
            assert_eq!(Backend::from_name(b.name()), Some(b));
            assert!(b.required_flags().iter().all(|f| FLAGS.contains(f)));
        }
        assert!(Backend::Portable.supported());
        assert!(!cpu_flag("no_such_flag"));
    }

    #[test]
    fn the_real_measurement_covers_every_supported_backend() {
        let s = selection().as_ref().expect("no backend forced in tests");
        let supported: Vec<Backend> = ALL.into_iter().filter(|b| b.supported()).collect();
        assert_eq!(s.measured.iter().map(|m| m.0).collect::<Vec<_>>(), supported);
        assert!(s.measured.iter().all(|m| m.1 > 0.0 && m.1.is_finite()));
        assert!(supported.contains(&s.chosen));
    }
}
