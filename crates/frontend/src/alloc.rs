//! The broker process's allocator: the system allocator, except that allocations of 1 GiB or
//! more are anonymous mappings made with `MAP_NORESERVE`.
//!
//! Why: the `kafka-protocol` decoders reserve a vector's capacity from the element count a
//! request claims, before reading any element. A 22-byte Produce request claiming 2^31 topics
//! asks for hundreds of GB; the system allocator refuses, and a refused allocation aborts the
//! process (Rust cannot turn it into an error). With `MAP_NORESERVE` the kernel grants such a
//! reservation without committing memory (under the default overcommit heuristic; with
//! `vm.overcommit_memory=2` it is still refused), no page of it is touched, the decoder fails
//! on the missing elements a few bytes later, the connection is closed as for any undecodable
//! request, and the mapping is returned. Genuine allocations that large are rare in a broker and
//! behave as before.
//!
//! Install it in a binary that serves the Kafka protocol:
//! `#[global_allocator] static ALLOC: odradek_frontend::alloc::NodeAllocator = NodeAllocator;`
//! (`odradek_server::alloc` re-exports it). The request fuzz target (`fuzz/`) runs on it too,
//! so its memory limit measures what decoding really commits.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are mapped with `MAP_NORESERVE`.
const LARGE: usize = 1 << 30;

/// The system allocator, with large allocations reserved lazily (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeAllocator;

fn is_large(layout: Layout) -> bool {
    // mmap returns page-aligned memory: 4 KiB covers any alignment a Rust type asks for here.
    layout.size() >= LARGE && layout.align() <= 4096
}

// SAFETY: `alloc`/`dealloc` pair by the same `is_large(layout)` test (the layout passed to
// `dealloc` is the one given to `alloc`), so a pointer goes back to whichever of the system
// allocator and `munmap` produced it; mappings are page-aligned and zero-filled, which meets
// any layout `is_large` accepts and the contract of `alloc_zeroed`.
unsafe impl GlobalAlloc for NodeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_large(layout) {
            // SAFETY: forwarded unchanged.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: an anonymous private mapping of a non-zero length, no file descriptor.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_large(layout) {
            // SAFETY: forwarded unchanged.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: anonymous mappings are zero-filled.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !is_large(layout) {
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        // SAFETY: `ptr` is a mapping of `layout.size()` bytes made by `alloc`.
        unsafe {
            libc::munmap(ptr.cast(), layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if !is_large(layout) && !is_large(new_layout) {
            // SAFETY: both sides belong to the system allocator.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: a fresh block of the new layout, the common prefix copied, the old one freed
        // by the path that made it.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_reservation_is_granted_lazily_and_returned() {
        let a = NodeAllocator;
        // 256 GiB: more than this machine has, never touched.
        let layout = Layout::from_size_align(256 << 30, 8).expect("layout");
        // SAFETY: the block is written once within bounds and freed with its layout.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null(), "reservation refused");
            p.write(7);
            assert_eq!(p.read(), 7);
            a.dealloc(p, layout);
        }
        // Small ones still go to the system allocator and survive a realloc across the line.
        let small = Layout::from_size_align(64, 8).expect("layout");
        // SAFETY: as above; realloc keeps the first byte.
        unsafe {
            let p = a.alloc(small);
            p.write(9);
            let q = a.realloc(p, small, LARGE);
            assert_eq!(q.read(), 9);
            a.dealloc(q, Layout::from_size_align(LARGE, 8).expect("layout"));
        }
    }
}
