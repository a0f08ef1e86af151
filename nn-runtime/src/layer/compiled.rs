//! Weights compiled into the binary: what the code `network!` generates for
//! `#[weights("file.safetensors")]` calls.
//!
//! The macro reads the file's header at compile time and checks every tensor's name, shape and
//! dtype against the declaration; the generated code embeds the file with `include_bytes!` and
//! decodes each tensor from the byte offset the macro found. So nothing here parses a header,
//! looks a name up or allocates: each function reads little-endian values at a fixed offset.
//! The `const fn`s build a network in a `const` (its weights in read-only memory); the `fill`
//! functions write a network in place at run time (a large one, on the heap).
//!
//! A tensor of PyTorch shape `[rows, a, b, ..]` is read as the `rows x (a b ..)` matrix the
//! runtime stores it as (see [`Tensors`](crate::Tensors)): torch's row-major element
//! `r * cols + c` goes to column-major `c * rows + r`. A vector `[n]` is `n x 1`.

use nalgebra::{ArrayStorage, SMatrix};

use super::heap::Zeroable;
use crate::real::Real;

/// Four bytes at `at`, little-endian. Out of bounds is a compile-time error in a `const` (the
/// generated code asserts the file's length, so it cannot happen there).
const fn four(bytes: &[u8], at: usize) -> [u8; 4] {
    [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
}

/// Eight bytes at `at`, little-endian.
const fn eight(bytes: &[u8], at: usize) -> [u8; 8] {
    [
        bytes[at],
        bytes[at + 1],
        bytes[at + 2],
        bytes[at + 3],
        bytes[at + 4],
        bytes[at + 5],
        bytes[at + 6],
        bytes[at + 7],
    ]
}

/// The `R x C` matrix of an `F32` tensor stored row-major at `offset` in `bytes`.
pub const fn matrix_f32<const R: usize, const C: usize>(
    bytes: &[u8],
    offset: usize,
) -> SMatrix<f32, R, C> {
    let mut data = [[0.0f32; R]; C];
    let mut c = 0;
    while c < C {
        let mut r = 0;
        while r < R {
            data[c][r] = f32::from_le_bytes(four(bytes, offset + (r * C + c) * 4));
            r += 1;
        }
        c += 1;
    }
    SMatrix::from_array_storage(ArrayStorage(data))
}

/// The `R x C` matrix of an `F64` tensor stored row-major at `offset` in `bytes`.
pub const fn matrix_f64<const R: usize, const C: usize>(
    bytes: &[u8],
    offset: usize,
) -> SMatrix<f64, R, C> {
    let mut data = [[0.0f64; R]; C];
    let mut c = 0;
    while c < C {
        let mut r = 0;
        while r < R {
            data[c][r] = f64::from_le_bytes(eight(bytes, offset + (r * C + c) * 8));
            r += 1;
        }
        c += 1;
    }
    SMatrix::from_array_storage(ArrayStorage(data))
}

/// The `I64` scalar at `offset` in `bytes` (a batch norm's `num_batches_tracked`).
pub const fn scalar_i64(bytes: &[u8], offset: usize) -> i64 {
    i64::from_le_bytes(eight(bytes, offset))
}

/// A value of `T` with every byte zero, in a `const`: what a compiled-in network starts from
/// before its tensors are written, as `from_safetensors_bytes` starts from `zeros()`.
pub const fn zeroed_const<T: Zeroable>() -> T {
    // SAFETY: `T: Zeroable` promises that all-zero bytes are a valid `T`.
    unsafe { core::mem::zeroed() }
}

/// Overwrites `data` (column-major, `rows` rows) with the tensor stored row-major at `offset`
/// in `bytes`, `F32` for a scalar of 4 bytes and `F64` for one of 8, as the weight files store
/// them. Values past the end of `bytes` are left as they are: the generated code asserts the
/// file's length at compile time, so that never happens, and a run-time panic is never needed.
pub fn fill<T: Real>(bytes: &[u8], offset: usize, rows: usize, data: &mut [T]) {
    let rows = rows.max(1);
    let cols = data.len() / rows;
    for (i, value) in data.iter_mut().enumerate() {
        let (c, r) = (i / rows, i % rows);
        let at = offset + (r * cols + c) * T::BYTES;
        let Some(slot) = bytes.get(at..at + T::BYTES) else {
            continue;
        };
        *value = if T::BYTES == 4 {
            let mut b = [0u8; 4];
            b.copy_from_slice(slot);
            T::cast(f64::from(f32::from_le_bytes(b)))
        } else {
            let mut b = [0u8; 8];
            b.copy_from_slice(slot);
            T::cast(f64::from_le_bytes(b))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [2, 3] tensor [[1, 2, 3], [4, 5, 6]] row-major, after 4 bytes of something else.
    fn bytes_f32() -> Vec<u8> {
        let mut bytes = vec![9u8; 4];
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            bytes.extend(v.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn const_matrices_read_row_major_into_column_major() {
        const BYTES: &[u8] = &[
            0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64, 0, 0, 192, 64,
        ];
        const M: SMatrix<f32, 2, 3> = matrix_f32::<2, 3>(BYTES, 0);
        assert_eq!(M, SMatrix::<f32, 2, 3>::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0));
        let m = matrix_f32::<2, 3>(&bytes_f32(), 4);
        assert_eq!(m, M);
    }

    #[test]
    fn f64_and_i64_decode() {
        let mut bytes: Vec<u8> = Vec::new();
        for v in [0.5f64, -1.25, 3.0] {
            bytes.extend(v.to_le_bytes());
        }
        bytes.extend((-7i64).to_le_bytes());
        let v = matrix_f64::<3, 1>(&bytes, 0);
        assert_eq!(v.as_slice(), [0.5, -1.25, 3.0]);
        assert_eq!(scalar_i64(&bytes, 24), -7);
        let mut data = [0.0f64; 3];
        fill(&bytes, 0, 3, &mut data);
        assert_eq!(data, [0.5, -1.25, 3.0]);
    }

    #[test]
    fn fill_agrees_with_the_const_decoder() {
        let bytes = bytes_f32();
        let mut m = SMatrix::<f32, 2, 3>::zeros();
        fill(&bytes, 4, 2, m.as_mut_slice());
        assert_eq!(m, matrix_f32::<2, 3>(&bytes, 4));
    }

    #[test]
    fn fill_past_the_end_leaves_values_alone() {
        let mut data = [7.0f32; 3];
        fill(&[0u8; 6], 0, 3, &mut data);
        assert_eq!(data, [0.0, 7.0, 7.0]);
    }

    #[test]
    fn zeroed_const_is_zero() {
        const Z: SMatrix<f32, 2, 2> = {
            let m: crate::Linear<f32, 2, 2> = zeroed_const();
            m.weight
        };
        assert_eq!(Z, SMatrix::<f32, 2, 2>::zeros());
    }
}
