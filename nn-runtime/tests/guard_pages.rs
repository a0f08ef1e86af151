//! The SIMD kernels form raw pointers and use masked loads and stores at the edges of each
//! matrix. The other tests compare results, which would not notice a read one vector past the
//! end of a slice (or before its start): here every operand sits flush against an
//! inaccessible page, once ending at one and once starting after one, so any such access is a
//! segmentation fault and fails the test binary.
#![cfg(all(unix, target_arch = "x86_64"))]

// The kernels as the layer operations call them (hidden: not a stable API).
use nn_runtime::__private::{Kernels, has_avx2_fma};

/// `len` floats in a mapping whose neighbouring pages are inaccessible.
struct Guarded {
    base: *mut libc::c_void,
    bytes: usize,
    start: *mut f32,
    len: usize,
}

impl Guarded {
    /// With `at_end`, the floats end where the trailing guard page begins; otherwise they start
    /// where the leading guard page ends. Filled with small distinct values.
    fn new(len: usize, at_end: bool) -> Self {
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data_pages = (len * 4).div_ceil(page).max(1);
        let bytes = (data_pages + 2) * page;
        // SAFETY: a fresh anonymous private mapping, checked for failure; the guard pages are
        // its first and last pages.
        let base = unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED, "mmap failed");
            assert_eq!(libc::mprotect(base, page, libc::PROT_NONE), 0);
            let last = base.cast::<u8>().add(bytes - page).cast();
            assert_eq!(libc::mprotect(last, page, libc::PROT_NONE), 0);
            base
        };
        let data = unsafe { base.cast::<u8>().add(page) };
        let offset = if at_end {
            data_pages * page - len * 4
        } else {
            0
        };
        let start = unsafe { data.add(offset).cast::<f32>() };
        let mut guarded = Self {
            base,
            bytes,
            start,
            len,
        };
        for (i, x) in guarded.slice().iter_mut().enumerate() {
            *x = ((i * 37) % 19) as f32 / 19.0 - 0.5;
        }
        guarded
    }

    fn slice(&mut self) -> &mut [f32] {
        // SAFETY: `len` floats inside the mapping's readable, writable pages.
        unsafe { std::slice::from_raw_parts_mut(self.start, self.len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base, self.bytes) };
    }
}

/// The runtime's own feature check, so that this test and the kernels cannot disagree on it.
fn has_kernels() -> bool {
    has_avx2_fma()
}

/// `C (+)= alpha A B` on shapes through every kernel and edge of `gemm.rs`: row tails of one to
/// fifteen rows, fewer columns than a register block, depths past one L1 slice, one column,
/// one step deep, the column-outer loop, and `A` read transposed.
#[test]
fn gemm_touches_only_its_operands() {
    if !has_kernels() {
        return;
    }
    let shapes = [
        (1, 1, 1),
        (3, 5, 1),
        (5, 9, 2),
        (5, 9, 6),
        (9, 20, 6),
        (17, 3, 7),
        (16, 70, 13),
        (33, 300, 13),
        (32, 40, 13),
        (7, 1, 5),
        (40, 1, 2),
        (10, 128, 8),
        (128, 10, 3),
        (32, 16, 1),
        (4, 32, 1),
        (41, 7, 1),
    ];
    for (m, k, n) in shapes {
        for transposed_a in [false, true] {
            for at_end in [false, true] {
                let a_strides = if transposed_a { (k, 1) } else { (1, m) };
                let mut a = Guarded::new(m * k, at_end);
                let mut b = Guarded::new(k * n, at_end);
                let mut c = Guarded::new(m * n, at_end);
                for accumulate in [false, true] {
                    let ran = <f32 as Kernels>::gemm(
                        (m, k, n),
                        a.slice(),
                        a_strides,
                        b.slice(),
                        (1, k),
                        c.slice(),
                        m,
                        -0.5,
                        accumulate,
                    );
                    assert!(ran, "{m}x{k}x{n}");
                }
                assert!(c.slice().iter().all(|x| x.is_finite()));
            }
        }
    }
}

/// The constant-size batch-one kernels of `gemv.rs` for one layer shape.
fn batch_one<const M: usize, const K: usize>() {
    for at_end in [false, true] {
        let mut a = Guarded::new(M * K, at_end);
        let mut x = Guarded::new(K, at_end);
        let mut u = Guarded::new(M, at_end);
        let mut y = Guarded::new(M, at_end);
        let mut yt = Guarded::new(K, at_end);
        assert!(<f32 as Kernels>::gemv::<M, K>(
            a.slice(),
            x.slice(),
            y.slice()
        ));
        assert!(<f32 as Kernels>::gemv_t::<M, K>(
            a.slice(),
            u.slice(),
            yt.slice()
        ));
        for add in [false, true] {
            assert!(<f32 as Kernels>::outer::<M, K>(
                u.slice(),
                x.slice(),
                a.slice(),
                0.5,
                add
            ));
        }
        let fused = <f32 as Kernels>::gemv_t_outer::<M, K>(
            a.slice(),
            u.slice(),
            x.slice(),
            yt.slice(),
            -0.5,
        );
        assert_eq!(fused, M.is_multiple_of(8), "{M}x{K}");
        assert!(
            y.slice()
                .iter()
                .chain(yt.slice().iter())
                .all(|v| v.is_finite())
        );
    }
}

#[test]
fn batch_one_kernels_touch_only_their_operands() {
    if !has_kernels() {
        return;
    }
    batch_one::<1, 64>();
    batch_one::<2, 32>();
    batch_one::<4, 16>();
    batch_one::<3, 30>();
    batch_one::<10, 32>();
    batch_one::<17, 8>();
    batch_one::<24, 5>();
    batch_one::<32, 16>();
    batch_one::<32, 32>();
    batch_one::<64, 64>();
}
