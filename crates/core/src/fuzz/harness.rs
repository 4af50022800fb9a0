//! The driver: corpus (seeds, then saved regression inputs), mutation loop, and the checks
//! every input must pass (no panic, no signal, no hang, bounded memory, the target's property).
//!
//! Configuration from the environment (all optional):
//! MPGIT_FUZZ_TARGETS (comma-separated names), MPGIT_FUZZ_SEED (default 1),
//! MPGIT_FUZZ_INPUTS (per target, default 2000), MPGIT_FUZZ_SECONDS (per target; with it the
//! input count is a minimum), MPGIT_FUZZ_HANG_MS (per-input bound, default 2000),
//! MPGIT_FUZZ_CORPUS (regression inputs, default test/fuzz/corpus/rust),
//! MPGIT_FUZZ_CRASH_DIR (where failing inputs go, default a temporary directory).

use super::mutate::{below, next_input, Rng};
use crate::alloc::{mapped_now, take_mapped_peak};
use rand_core::SeedableRng;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a target makes of one input. `Err` is a broken property (a bug), not a rejected input.
pub type Verdict = Result<Accepted, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The parser returned a result (and it passed the target's checks).
    Parsed,
    /// The parser returned a typed error (and it passed the target's checks).
    Refused,
}

pub struct Target {
    pub name: &'static str,
    /// Inputs are cut to this many bytes.
    pub max_len: usize,
    /// Memory bound: `per_byte * input length + fixed` bytes, for large blocks reserved and for
    /// the growth of the resident peak.
    pub mem_per_byte: usize,
    pub mem_fixed: usize,
    pub seeds: fn() -> Vec<Vec<u8>>,
    pub run: fn(&[u8]) -> Verdict,
}

pub struct Config {
    targets: Option<Vec<String>>,
    pub seed: u64,
    pub inputs: u64,
    pub seconds: Option<f64>,
    pub hang_ms: u64,
    pub corpus: PathBuf,
    pub crash_dir: PathBuf,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    pub fn from_env() -> Config {
        let num = |name: &str, default: u64| env(name).map(|v| v.parse().unwrap_or_else(|_| panic!("{} must be a number", name))).unwrap_or(default);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Config {
            targets: env("MPGIT_FUZZ_TARGETS").map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
            seed: num("MPGIT_FUZZ_SEED", 1),
            inputs: num("MPGIT_FUZZ_INPUTS", 2000),
            seconds: env("MPGIT_FUZZ_SECONDS").map(|v| v.parse().expect("MPGIT_FUZZ_SECONDS must be a number")),
            hang_ms: num("MPGIT_FUZZ_HANG_MS", 2000),
            corpus: env("MPGIT_FUZZ_CORPUS").map(PathBuf::from).unwrap_or_else(|| repo.join("test/fuzz/corpus/rust")),
            crash_dir: env("MPGIT_FUZZ_CRASH_DIR").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("mpgit-fuzz-failures")),
        }
    }

    pub fn selected(&self, name: &str) -> bool {
        self.targets.as_ref().map_or(true, |t| t.iter().any(|x| x == name))
    }
}

#[derive(Default)]
pub struct Report {
    pub target: String,
    pub seed: u64,
    pub inputs: u64,
    pub parsed: u64,
    pub refused: u64,
    pub regressions: u64,
    pub crashes: u64,
    pub hangs: u64,
    pub memory: u64,
    pub max_input: usize,
    pub slowest_us: u64,
    pub peak_reserved: usize,
    pub peak_rss_kb: i64,
    pub seconds: f64,
}

impl Report {
    pub fn json(&self) -> String {
        format!(
            "{{\"target\":\"{}\",\"seed\":{},\"inputs\":{},\"parsed\":{},\"refused\":{},\"regressions\":{},\"crashes\":{},\"hangs\":{},\"memory\":{},\"maxInput\":{},\"slowestUs\":{},\"peakReservedBytes\":{},\"peakRssKb\":{},\"seconds\":{:.2}}}",
            self.target, self.seed, self.inputs, self.parsed, self.refused, self.regressions, self.crashes, self.hangs, self.memory, self.max_input, self.slowest_us, self.peak_reserved, self.peak_rss_kb, self.seconds
        )
    }
}

// The input being run, for the watchdog and the crash handler (which cannot allocate).
static CURRENT_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static CURRENT_LEN: AtomicUsize = AtomicUsize::new(0);
/// When the current input started (ns since WATCH_EPOCH + 1), 0 when idle.
static STARTED_NS: AtomicU64 = AtomicU64::new(0);
static HANG_MS: AtomicU64 = AtomicU64::new(2000);
/// NUL-terminated path the crash handler writes the input to.
static CRASH_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
static HANG_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

fn epoch() -> Instant {
    static E: crate::once::OnceLock<Instant> = crate::once::OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// Writes the current input to `path` with system calls only (safe in a signal handler).
unsafe fn dump_current(path: *const libc::c_char) {
    if path.is_null() {
        return;
    }
    let fd = libc::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644);
    if fd >= 0 {
        let p = CURRENT_PTR.load(Ordering::SeqCst);
        let n = CURRENT_LEN.load(Ordering::SeqCst);
        if !p.is_null() {
            libc::write(fd, p as *const libc::c_void, n);
        }
        libc::close(fd);
    }
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    // SAFETY: only system calls; the handler was installed with SA_RESETHAND, so raising the
    // signal again ends the process the default way.
    unsafe {
        let msg = b"fuzz: fatal signal while running an input; it was saved\n";
        libc::write(2, msg.as_ptr() as *const libc::c_void, msg.len());
        dump_current(CRASH_PATH.load(Ordering::SeqCst));
        libc::raise(sig);
    }
}

fn install_guards() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        epoch();
        // SAFETY: a plain sigaction with a handler that only makes system calls.
        unsafe {
            for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT] {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_fatal_signal as *const () as usize;
                sa.sa_flags = libc::SA_RESETHAND | libc::SA_ONSTACK;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        std::thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(50));
                let started = STARTED_NS.load(Ordering::SeqCst);
                if started == 0 {
                    continue;
                }
                let now = epoch().elapsed().as_nanos() as u64 + 1;
                if now.saturating_sub(started) > HANG_MS.load(Ordering::SeqCst) * 1_000_000 {
                    eprintln!("fuzz: an input ran longer than {} ms (a hang); it was saved, aborting", HANG_MS.load(Ordering::SeqCst));
                    // SAFETY: the input stays alive while its run is stuck.
                    unsafe { dump_current(HANG_PATH.load(Ordering::SeqCst)) };
                    std::process::exit(3);
                }
            })
            .expect("watchdog thread");
    });
}

fn leak_path(p: &Path) -> *mut libc::c_char {
    CString::new(p.as_os_str().to_string_lossy().as_bytes()).unwrap().into_raw()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn max_rss_kb() -> i64 {
    // SAFETY: getrusage fills the struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru.ru_maxrss
    }
}

fn load_corpus(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                out.push((e.path(), b));
            }
        }
    }
    out.sort();
    out
}

/// Runs one target for the configured inputs / time.
pub fn fuzz(cfg: &Config, t: &Target) -> Report {
    install_guards();
    HANG_MS.store(cfg.hang_ms, Ordering::SeqCst);
    let fail_dir = cfg.crash_dir.join(t.name);
    std::fs::create_dir_all(&fail_dir).expect("crash directory");
    CRASH_PATH.store(leak_path(&fail_dir.join(format!("signal-{}.bin", cfg.seed))), Ordering::SeqCst);
    HANG_PATH.store(leak_path(&fail_dir.join(format!("hang-{}.bin", cfg.seed))), Ordering::SeqCst);

    let mut rng = Rng::seed_from_u64(cfg.seed ^ fnv(t.name.as_bytes()));
    let mut corpus: Vec<Vec<u8>> = (t.seeds)().into_iter().map(|mut s| {
        s.truncate(t.max_len);
        s
    }).collect();
    let regressions = load_corpus(&cfg.corpus.join(t.name));
    let mut r = Report { target: t.name.to_string(), seed: cfg.seed, ..Default::default() };
    let rss0 = max_rss_kb();
    let start = Instant::now();
    let deadline = cfg.seconds.map(|s| start + Duration::from_secs_f64(s));
    let mut queue: Vec<Vec<u8>> = regressions.iter().map(|(_, b)| b.clone()).collect();
    queue.extend(corpus.iter().cloned());
    queue.reverse();
    let fixed = queue.len() as u64;
    loop {
        let input = match queue.pop() {
            Some(q) => q,
            None => {
                let enough = r.inputs >= cfg.inputs.max(fixed);
                let time_left = deadline.map_or(false, |d| Instant::now() < d);
                if enough && !time_left {
                    break;
                }
                next_input(&mut rng, &corpus, t.max_len)
            }
        };
        let is_regression = (r.inputs as usize) < regressions.len();
        r.inputs += 1;
        r.regressions += is_regression as u64;
        r.max_input = r.max_input.max(input.len());
        CURRENT_PTR.store(input.as_ptr() as *mut u8, Ordering::SeqCst);
        CURRENT_LEN.store(input.len(), Ordering::SeqCst);
        let mapped0 = mapped_now();
        take_mapped_peak();
        let rss_before = max_rss_kb();
        let t0 = Instant::now();
        STARTED_NS.store(epoch().elapsed().as_nanos() as u64 + 1, Ordering::SeqCst);
        let verdict = catch_unwind(AssertUnwindSafe(|| (t.run)(&input)));
        STARTED_NS.store(0, Ordering::SeqCst);
        let us = t0.elapsed().as_micros() as u64;
        r.slowest_us = r.slowest_us.max(us);
        let reserved = take_mapped_peak().saturating_sub(mapped0);
        r.peak_reserved = r.peak_reserved.max(reserved);
        let rss_growth = (max_rss_kb() - rss_before).max(0) as usize * 1024;
        let bound = t.mem_per_byte.saturating_mul(input.len()).saturating_add(t.mem_fixed);
        let mut failure = match verdict {
            Err(p) => {
                r.crashes += 1;
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                Some(format!("panic: {}", msg))
            }
            Ok(Err(why)) => {
                r.crashes += 1;
                Some(format!("property broken: {}", why))
            }
            Ok(Ok(a)) => {
                if a == Accepted::Parsed {
                    r.parsed += 1;
                    // Inputs that parse are structured: keep some to mutate further.
                    if corpus.len() < 4096 && below(&mut rng, 4) == 0 {
                        corpus.push(input.clone());
                    }
                } else {
                    r.refused += 1;
                }
                None
            }
        };
        if failure.is_none() && (reserved > bound || rss_growth > bound) {
            r.memory += 1;
            failure = Some(format!("memory: {} bytes reserved, resident peak +{} bytes, bound {} for {} input bytes", reserved, rss_growth, bound, input.len()));
        }
        if let Some(why) = failure {
            let file = fail_dir.join(format!("failure-{:016x}.bin", fnv(&input)));
            let _ = std::fs::write(&file, &input);
            eprintln!("fuzz {}: {} (input saved as {})", t.name, why, file.display());
            if r.crashes + r.memory > 20 {
                break;
            }
        }
    }
    CURRENT_PTR.store(std::ptr::null_mut(), Ordering::SeqCst);
    r.seconds = start.elapsed().as_secs_f64();
    r.peak_rss_kb = max_rss_kb().max(rss0);
    r
}
