//! Giving freed heap memory back to the operating system.
//!
//! glibc returns memory to the OS only from the top of its heaps; what is
//! freed in the middle stays resident. After a burst (a disk stall fills the
//! recording queue with tens of MB of video, then it drains) the process
//! would keep that burst's high-water mark as its RSS for good, and each
//! later burst, placed a little differently, would raise it further
//! (docs/BENCHMARKS.md, recording memory). `malloc_trim` releases the free
//! pages wherever they are.

/// Releases free heap pages to the OS. Takes about a millisecond per
/// hundred MB of heap: call it after a burst, not on every allocation.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks glibc's own
    // arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
