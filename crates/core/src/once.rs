//! `OnceLock`: a value set once, then shared, as `std::sync::OnceLock` (Rust 1.70) does; here
//! so that the crate builds with Rust 1.63 (the MSRV Cargo.toml states). Built on
//! `std::sync::Once`, as std's is: after the first call, `get_or_init` is one atomic load.
//! One difference: an initialiser that panics poisons it (later calls panic too), where
//! std's lets the next caller try again; no initialiser here is expected to panic.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Once;

pub struct OnceLock<T> {
    once: Once,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, inside `call_once`, before any reader can see it
// (`Once` orders that write before every return of `call_once`/`is_completed`); afterwards it
// is only read. So sharing needs what sharing a `T` needs, as for std's OnceLock.
unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T> OnceLock<T> {
    pub const fn new() -> Self {
        OnceLock { once: Once::new(), value: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    /// The value, made by `f` on the first call (other callers wait for it).
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        if !self.once.is_completed() {
            let value = &self.value;
            // SAFETY: only the one call_once closure that runs writes the cell.
            self.once.call_once(|| unsafe { (*value.get()).write(f()); });
        }
        // SAFETY: the Once has completed, so the value is written and no longer changes.
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// Sets the value unless it is set already (then hands `value` back).
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        let cell = &self.value;
        // SAFETY: only the one call_once closure that runs writes the cell.
        self.once.call_once(|| unsafe {
            (*cell.get()).write(value.take().expect("call_once runs its closure once"));
        });
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// The value, if it is set.
    pub fn get(&self) -> Option<&T> {
        // SAFETY: as in get_or_init.
        self.once.is_completed().then(|| unsafe { (*self.value.get()).assume_init_ref() })
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if self.once.is_completed() {
            // SAFETY: written once, dropped once (we own self).
            unsafe { self.value.get_mut().assume_init_drop() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn initialises_once_across_threads_and_drops_its_value() {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        let cell: OnceLock<Vec<u8>> = OnceLock::new();
        assert!(cell.get().is_none());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let v = cell.get_or_init(|| {
                        CALLS.fetch_add(1, Ordering::SeqCst);
                        vec![1, 2, 3]
                    });
                    assert_eq!(v, &[1, 2, 3]);
                });
            }
        });
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        assert_eq!(cell.get().map(|v| v.len()), Some(3));
        assert_eq!(cell.set(vec![4]), Err(vec![4]));
        let fresh = OnceLock::new();
        assert_eq!(fresh.set(7), Ok(()));
        assert_eq!(fresh.get_or_init(|| 8), &7);
    }
}
