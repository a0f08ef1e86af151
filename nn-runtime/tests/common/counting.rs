//! A counting global allocator for the no-allocation tests: each test binary that includes
//! this module (`#[path = "common/counting.rs"] mod counting;`) counts, per thread, every
//! allocation, so a test can assert that a call made none.
//!
//! Per thread: the test harness's main thread allocates on its own schedule (its "has been
//! running for over 60 seconds" notice on a loaded machine once counted 4 allocations against
//! a batch-norm test in a full workspace run), and so do other tests of the same binary
//! running in parallel. Nothing the tests measure spawns threads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts every allocation and reallocation of the calling thread, then defers to the system
/// allocator.
struct Counting;

thread_local! {
    /// This thread's allocations. A `const` initialiser and no destructor, so touching it
    /// never allocates (which would recurse into the allocator).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts one allocation of this thread. `try_with`: a thread being torn down has no
/// thread-locals left, and nobody is counting it.
fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
pub fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}
