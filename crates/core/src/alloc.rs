//! The allocator of mpgit's Rust code: the C library's malloc, except that large blocks are
//! mapped and unmapped directly.
//!
//! glibc raises its mmap threshold to the size of the largest mapped block freed so far (up to
//! 32 MiB), after which big transient buffers (inflated objects, delta results) come from the
//! heap, whose high-water mark stays resident: indexing a pack held ~25% more memory than it
//! used. Mapping large blocks ourselves keeps the resident size to what is in use. Only Rust
//! allocations go through here; the host process (node) keeps its own malloc settings.
//!
//! Linux only (mremap, and the glibc/musl behaviour above): elsewhere Rust's default
//! allocator (the system's) stays, and the counters below stay at zero.

#[cfg(target_os = "linux")]
use std::alloc::{GlobalAlloc, Layout, System};
#[cfg(target_os = "linux")]
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(target_os = "linux")]
pub struct MpgitAlloc;

/// Blocks at least this large are mapped (glibc's own initial threshold).
#[cfg(target_os = "linux")]
const MAP_MIN: usize = 128 << 10;
#[cfg(target_os = "linux")]
const PAGE: usize = 4096;

#[cfg(target_os = "linux")]
fn mapped_len(size: usize) -> usize {
    (size + PAGE - 1) & !(PAGE - 1)
}

#[cfg(target_os = "linux")]
fn mapped(layout: &Layout) -> bool {
    layout.size() >= MAP_MIN && layout.align() <= PAGE
}

/// Bytes of large blocks mapped now, and the most since `take_mapped_peak` (counted on the
/// mapping path only, which is a system call anyway: what a hostile size makes us reserve,
/// whether or not its pages are ever touched).
static MAPPED: AtomicUsize = AtomicUsize::new(0);
static MAPPED_PEAK: AtomicUsize = AtomicUsize::new(0);

#[cfg(target_os = "linux")]
fn mapped_add(len: usize) {
    let now = MAPPED.fetch_add(len, Ordering::Relaxed) + len;
    MAPPED_PEAK.fetch_max(now, Ordering::Relaxed);
}

#[cfg(target_os = "linux")]
fn mapped_sub(len: usize) {
    MAPPED.fetch_sub(len, Ordering::Relaxed);
}

/// Bytes of large blocks mapped now.
pub fn mapped_now() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

/// The most bytes of large blocks mapped at once since the last call; the count starts again
/// from what is mapped now.
pub fn take_mapped_peak() -> usize {
    MAPPED_PEAK.swap(MAPPED.load(Ordering::Relaxed), Ordering::Relaxed)
}

#[cfg(target_os = "linux")]
unsafe fn map(len: usize) -> *mut u8 {
    let p = libc::mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        mapped_add(len);
        p as *mut u8
    }
}

// SAFETY: every block is returned to the allocator that made it: `mapped(layout)` decides both
// ways, and `realloc` moves a block across only through alloc + copy + dealloc.
#[cfg(target_os = "linux")]
unsafe impl GlobalAlloc for MpgitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            map(mapped_len(layout.size()))
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // Fresh anonymous pages are zero.
            map(mapped_len(layout.size()))
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if mapped(&layout) {
            libc::munmap(p as *mut libc::c_void, mapped_len(layout.size()));
            mapped_sub(mapped_len(layout.size()));
        } else {
            System.dealloc(p, layout)
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (mapped(&layout), mapped(&new_layout)) {
            (false, false) => System.realloc(p, layout, new_size),
            (true, true) => {
                let q = libc::mremap(p as *mut libc::c_void, mapped_len(layout.size()), mapped_len(new_size), libc::MREMAP_MAYMOVE);
                if q == libc::MAP_FAILED {
                    ptr::null_mut()
                } else {
                    mapped_sub(mapped_len(layout.size()));
                    mapped_add(mapped_len(new_size));
                    q as *mut u8
                }
            }
            _ => {
                let q = self.alloc(new_layout);
                if !q.is_null() {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                }
                q
            }
        }
    }
}

/// Gives the C library's free memory back to the system, in every thread's arena (glibc's
/// malloc_trim also releases free pages inside a heap, not only at its top). Called when a big
/// job ends (indexing a pack, a checkout): its many small blocks were freed, but the arenas of
/// its threads would otherwise stay resident, and the next job would add to them.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory malloc considers free.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_keep_their_bytes_across_the_map_threshold() {
        let mut v: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        v.extend((0..3_000_000u32).map(|i| (i * 7) as u8)); // heap -> mapped, then mremap growth
        assert!(v[..100_000].iter().enumerate().all(|(i, &b)| b == i as u8));
        assert_eq!(v[100_000 + 12345], (12345u32 * 7) as u8);
        v.truncate(50_000);
        v.shrink_to_fit(); // mapped -> heap
        assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
        let z = vec![0u8; 1 << 20];
        assert!(z.iter().all(|&b| b == 0));
    }
}
