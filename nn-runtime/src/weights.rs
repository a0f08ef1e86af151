//! Weights in and out as [safetensors](https://github.com/huggingface/safetensors) files, by
//! PyTorch's `state_dict` names.
//!
//! A network's tensors are named as `nn.Sequential` names them (`0.weight`, `0.bias`,
//! `2.weight`, ..., `1.0.weight` inside a nested network or a residual block at position 1: see
//! [`Tensors`](crate::Tensors)), stored row-major with PyTorch's shapes (`[out, in]` for a weight,
//! `[out, in, k]` for a convolution's, `[out]` for a bias) and dtype `F32` or `F64` as the
//! network computes. Integer buffers (BatchNorm's `num_batches_tracked`: see
//! [`Tensors::visit_counts`](crate::Tensors::visit_counts)) are scalars of dtype `I64` and shape
//! `[]`, as torch stores them. So a file written by `safetensors.torch.save_file(model.state_dict(),
//! path)` for the equivalent `nn.Sequential` loads here, and a file saved here loads in PyTorch with
//! `model.load_state_dict(safetensors.torch.load_file(path))`.
//!
//! Loading never panics and never returns a half-loaded network: every tensor is checked
//! (present, dtype, shape, nothing extra) before any parameter is written, and any mismatch is
//! an [`Error`] naming the tensor and what was expected.
//!
//! The methods of [`SafeTensorsExt`] (in the prelude) are the usual way in:
//!
//! ```
//! use nn_runtime::prelude::*;
//!
//! network! {
//!     /// The classic XOR network.
//!     pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
//! }
//!
//! let net = Xor::seeded(42);
//! let bytes = net.to_safetensors_bytes(); // or net.save_safetensors("xor.safetensors")?
//! let back = Xor::from_safetensors_bytes(&bytes)?; // or Xor::load_safetensors("xor.safetensors")?
//! assert_eq!(back, net);
//!
//! // A file for another network is an error that says what is wrong.
//! network! { pub struct Wide { Linear(2, 16), ReLU, Linear(16, 1) } }
//! let err = Wide::from_safetensors_bytes(&bytes).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "tensor `0.weight` has shape [8, 2] in the file, but the network expects [16, 2]"
//! );
//! # Ok::<(), nn_runtime::weights::Error>(())
//! ```
//!
//! Weights compiled into the binary need no file system:
//! `Xor::from_safetensors_bytes(include_bytes!("xor.safetensors"))`.

use crate::heap::{Zeroable, boxed_zeroed};
use crate::net::Network;
use crate::real::Real;
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why weights could not be saved or loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file (empty, truncated, or not safetensors).
    Corrupt {
        /// What the safetensors parser found wrong.
        reason: String,
    },
    /// The network has a tensor that the file lacks.
    MissingTensor {
        /// The tensor's `state_dict` name.
        name: String,
    },
    /// The file has a tensor that the network lacks.
    UnexpectedTensor {
        /// The tensor's name in the file.
        name: String,
    },
    /// A tensor's shape in the file differs from the network's.
    WrongShape {
        /// The tensor's `state_dict` name.
        name: String,
        /// The network's shape, as PyTorch states it (`[out, in]`, `[out, in, k]`, `[out]`, or
        /// `[]` for an integer count).
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor's dtype in the file differs from the network's scalar type.
    WrongDtype {
        /// The tensor's `state_dict` name.
        name: String,
        /// The network's dtype: `F32` or `F64`, or `I64` for an integer count.
        expected: String,
        /// The dtype in the file, as safetensors spells it (`F64`, `BF16`, ...).
        found: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "cannot access `{}`: {source}", path.display()),
            Error::Corrupt { reason } => write!(f, "not a valid safetensors file: {reason}"),
            Error::MissingTensor { name } => {
                write!(f, "tensor `{name}` is missing from the file")
            }
            Error::UnexpectedTensor { name } => write!(
                f,
                "the file has a tensor `{name}` that the network does not have"
            ),
            Error::WrongShape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?} in the file, but the network expects \
                 {expected:?}"
            ),
            Error::WrongDtype {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has dtype {found} in the file, but the network expects {expected}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The safetensors dtype of scalar type `T`: `F32` for `f32`, `F64` for `f64`. A scalar of at
/// most 4 bytes is stored as `F32`, a wider one as `F64`; both convert through `f64`.
fn dtype_of<T: Real>() -> Dtype {
    if T::BYTES <= 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// Row-major order of a tensor whose data is in nalgebra's column-major order: element `(r, c)`
/// of an `[rows, cols]` tensor moves from `c * rows + r` to `r * cols + c`. A tensor of three or
/// more dimensions `[rows, a, b, ..]` is a matrix `rows x (a b ..)` whose columns are the other
/// axes in row-major order (a causal convolution's `[OUT, IN, K]` weight, stored as an
/// `OUT x IN K` matrix whose column `i K + k` is torch's `weight[:, i, k]`), so it moves the
/// same way, with `cols = a b ..`; and then its row-major index is torch's. A vector is in the
/// same order either way.
fn row_major_index(shape: &[usize], column_major: usize) -> usize {
    match *shape {
        [rows, ref rest @ ..] if !rest.is_empty() && rows > 0 => {
            let cols: usize = rest.iter().product();
            let (c, r) = (column_major / rows, column_major % rows);
            r * cols + c
        }
        _ => column_major,
    }
}

/// One tensor ready for the safetensors writer.
struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Owned {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Little-endian bytes of `data` (column-major, of PyTorch shape `shape`) in row-major order.
fn encode<T: Real>(dtype: Dtype, shape: &[usize], data: &[T]) -> Vec<u8> {
    let width = if dtype == Dtype::F32 { 4 } else { 8 };
    let mut bytes = vec![0u8; data.len() * width];
    for (i, &value) in data.iter().enumerate() {
        let at = row_major_index(shape, i) * width;
        let slot = &mut bytes[at..at + width];
        if width == 4 {
            slot.copy_from_slice(&(value.widen() as f32).to_le_bytes());
        } else {
            slot.copy_from_slice(&value.widen().to_le_bytes());
        }
    }
    bytes
}

/// The network's tensors as a safetensors file, in memory.
///
/// Names are the `state_dict` names [`Tensors::visit`](crate::Tensors::visit) gives (with an empty prefix), shapes
/// PyTorch's, data row-major little-endian, dtype `F32` for an `f32` network and `F64` for an
/// `f64` one; then the integer counts of
/// [`Tensors::visit_counts`](crate::Tensors::visit_counts), each an `I64` of shape `[]`: exactly what `safetensors.torch.save_file(model.state_dict(), path)` writes for
/// the equivalent `nn.Sequential`, without its `{"format": "pt"}` metadata (which PyTorch does
/// not need to load the file).
pub fn to_safetensors_bytes<N: Network>(net: &N) -> Vec<u8> {
    try_to_bytes(net).unwrap_or_else(|err| {
        // The writer fails only on a header over 100 MB (millions of tensors) or tensors whose
        // byte length disagrees with their shape; `encode` makes them agree by construction.
        unreachable!("safetensors could not serialize the network's tensors: {err}")
    })
}

fn try_to_bytes<N: Network>(net: &N) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    let dtype = dtype_of::<N::Scalar>();
    let mut tensors = Vec::with_capacity(N::TENSORS);
    net.visit("", &mut |name, shape, data| {
        let tensor = Owned {
            dtype,
            shape: shape.to_vec(),
            bytes: encode(dtype, shape, data),
        };
        tensors.push((name.to_string(), tensor));
    });
    net.visit_counts("", &mut |name, value| {
        let count = Owned {
            dtype: Dtype::I64,
            shape: Vec::new(),
            bytes: value.to_le_bytes().to_vec(),
        };
        tensors.push((name.to_string(), count));
    });
    safetensors::serialize(tensors.iter().map(|(name, t)| (name.as_str(), t)), None)
}

/// Saves the network's weights to `path` as a safetensors file (see
/// [`to_safetensors_bytes`]), replacing the file if it exists.
pub fn save_safetensors<N: Network>(net: &N, path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    std::fs::write(path, to_safetensors_bytes(net)).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A network of type `N` with the weights in `bytes`, a safetensors file in memory (e.g. from
/// `include_bytes!`).
///
/// The file must hold exactly the network's tensors, by `state_dict` name, each with the
/// network's dtype and PyTorch's shape, and its integer counts, each an `I64` of shape `[]`; otherwise the [`Error`] names the first tensor that
/// differs. Never panics, whatever the bytes.
///
/// The network is built as a value, on the stack: for one too large for it use
/// [`from_safetensors_bytes_boxed`].
pub fn from_safetensors_bytes<N: Network>(bytes: &[u8]) -> Result<N, Error> {
    let mut net = N::zeros();
    fill_from_safetensors_bytes(&mut net, bytes)?;
    Ok(net)
}

/// Loads a network of type `N` from the safetensors file at `path`; see
/// [`from_safetensors_bytes`].
pub fn load_safetensors<N: Network>(path: impl AsRef<Path>) -> Result<N, Error> {
    let bytes = read(path.as_ref())?;
    from_safetensors_bytes(&bytes)
}

/// The bytes of the file at `path`, or an [`Error::Io`] naming it.
fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Like [`from_safetensors_bytes`], building the network directly on the heap: for networks
/// too large for the stack (a `Linear(784, 512)` weight alone is 1.6 MB). Every network
/// `network!` generates qualifies.
pub fn from_safetensors_bytes_boxed<N: Network + Zeroable>(bytes: &[u8]) -> Result<Box<N>, Error> {
    let mut net = boxed_zeroed::<N>();
    fill_from_safetensors_bytes(&mut *net, bytes)?;
    Ok(net)
}

/// Like [`load_safetensors`], building the network directly on the heap; see
/// [`from_safetensors_bytes_boxed`].
pub fn load_safetensors_boxed<N: Network + Zeroable>(
    path: impl AsRef<Path>,
) -> Result<Box<N>, Error> {
    let bytes = read(path.as_ref())?;
    from_safetensors_bytes_boxed(&bytes)
}

/// Overwrites every parameter of `net` with the weights in `bytes`, checked as
/// [`from_safetensors_bytes`] checks them; on an error `net` is left unchanged.
///
/// Works on a network anywhere, e.g. on the heap: `let mut net = Big::boxed_zeros();` then
/// `net.fill_from_safetensors_bytes(bytes)?` (or see [`from_safetensors_bytes_boxed`]).
pub fn fill_from_safetensors_bytes<N: Network>(net: &mut N, bytes: &[u8]) -> Result<(), Error> {
    let file = parse(bytes)?;
    let expected = dtype_of::<N::Scalar>();

    // First every check, against the network's own list of tensors; nothing is written yet.
    let mut first_error = None;
    let mut names = HashSet::new();
    net.visit("", &mut |name, shape, _| {
        names.insert(name.to_string());
        if first_error.is_none() {
            first_error = check(&file, name, shape, expected).err();
        }
    });
    net.visit_counts("", &mut |name, _| {
        names.insert(name.to_string());
        if first_error.is_none() {
            first_error = check(&file, name, &[], Dtype::I64).err();
        }
    });
    if let Some(err) = first_error {
        return Err(err);
    }
    let mut extra: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|name| !names.contains(*name))
        .collect();
    extra.sort_unstable();
    if let Some(name) = extra.first() {
        return Err(Error::UnexpectedTensor {
            name: name.to_string(),
        });
    }

    // Then the copy, which cannot fail: every tensor is there, of the right dtype and shape.
    net.visit_mut("", &mut |name, shape, data| {
        if let Ok(view) = file.tensor(name) {
            decode(expected, shape, view.data(), data);
        }
    });
    net.visit_counts_mut("", &mut |name, value| {
        let bytes = file.tensor(name).ok().and_then(|view| {
            let mut b = [0u8; 8];
            b.copy_from_slice(view.data().get(..8)?);
            Some(b)
        });
        if let Some(bytes) = bytes {
            *value = i64::from_le_bytes(bytes);
        }
    });
    Ok(())
}

/// Parses a safetensors file, turning every failure (and any header whose data offsets lie
/// beyond the file) into [`Error::Corrupt`].
fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, Error> {
    precheck_offsets(bytes)?;
    SafeTensors::deserialize(bytes).map_err(|err| Error::Corrupt {
        reason: err.to_string(),
    })
}

/// Rejects a header whose tensors' data offsets point past the end of the file, before the
/// safetensors parser adds them up: offsets near `u64::MAX` would overflow its sum, a panic in
/// builds with overflow checks. Headers it cannot read are left to the parser to report.
fn precheck_offsets(bytes: &[u8]) -> Result<(), Error> {
    let Some(len_bytes) = bytes.get(..8) else {
        return Ok(());
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(len_bytes);
    let header_len = u64::from_le_bytes(len);
    let Some(header) = usize::try_from(header_len)
        .ok()
        .and_then(|n| bytes.get(8..8usize.checked_add(n)?))
    else {
        return Ok(());
    };
    let data_len = (bytes.len() - 8 - header.len()) as u64;
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_slice(header) else {
        return Ok(());
    };
    for (name, info) in &entries {
        let offsets = info.get("data_offsets").and_then(|o| o.as_array());
        let beyond =
            offsets.is_some_and(|o| o.iter().any(|v| v.as_u64().is_some_and(|v| v > data_len)));
        if beyond {
            return Err(Error::Corrupt {
                reason: format!(
                    "the data offsets of tensor `{name}` lie beyond the end of the file \
                     ({data_len} data bytes); the file may be truncated"
                ),
            });
        }
    }
    Ok(())
}

/// Checks that tensor `name` is in `file` with dtype `dtype` and shape `shape`.
fn check(file: &SafeTensors<'_>, name: &str, shape: &[usize], dtype: Dtype) -> Result<(), Error> {
    let view = file.tensor(name).map_err(|_| Error::MissingTensor {
        name: name.to_string(),
    })?;
    if view.dtype() != dtype {
        return Err(Error::WrongDtype {
            name: name.to_string(),
            expected: dtype.to_string(),
            found: view.dtype().to_string(),
        });
    }
    if view.shape() != shape {
        return Err(Error::WrongShape {
            name: name.to_string(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    Ok(())
}

/// Writes the row-major little-endian `bytes` (checked: `data.len()` values of `dtype`) into
/// `data` in column-major order.
fn decode<T: Real>(dtype: Dtype, shape: &[usize], bytes: &[u8], data: &mut [T]) {
    let width = if dtype == Dtype::F32 { 4 } else { 8 };
    for (i, value) in data.iter_mut().enumerate() {
        let at = row_major_index(shape, i) * width;
        let Some(slot) = bytes.get(at..at + width) else {
            continue;
        };
        *value = if width == 4 {
            let mut b = [0u8; 4];
            b.copy_from_slice(slot);
            T::cast(f32::from_le_bytes(b) as f64)
        } else {
            let mut b = [0u8; 8];
            b.copy_from_slice(slot);
            T::cast(f64::from_le_bytes(b))
        };
    }
}

/// Weights I/O as methods of every network: `net.save_safetensors(path)?`,
/// `Net::load_safetensors(path)?`, `Net::from_safetensors_bytes(include_bytes!(...))?`.
///
/// In the [prelude](crate::prelude); each method is the function of the same name in this
/// module.
pub trait SafeTensorsExt: Sized {
    /// Saves the weights to `path`; see [`save_safetensors`].
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), Error>;

    /// Loads a network from the file at `path`; see [`load_safetensors`].
    fn load_safetensors(path: impl AsRef<Path>) -> Result<Self, Error>;

    /// A network with the weights in `bytes`; see [`from_safetensors_bytes`].
    fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self, Error>;

    /// The weights as a safetensors file in memory; see [`to_safetensors_bytes`].
    fn to_safetensors_bytes(&self) -> Vec<u8>;

    /// Overwrites every parameter with the weights in `bytes`, leaving `self` unchanged on an
    /// error; see [`fill_from_safetensors_bytes`].
    fn fill_from_safetensors_bytes(&mut self, bytes: &[u8]) -> Result<(), Error>;
}

impl<N: Network> SafeTensorsExt for N {
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        save_safetensors(self, path)
    }

    fn load_safetensors(path: impl AsRef<Path>) -> Result<Self, Error> {
        load_safetensors(path)
    }

    fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self, Error> {
        from_safetensors_bytes(bytes)
    }

    fn to_safetensors_bytes(&self) -> Vec<u8> {
        to_safetensors_bytes(self)
    }

    fn fill_from_safetensors_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        fill_from_safetensors_bytes(self, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;
    use crate::tensors::{CountVisitor, CountVisitorMut, Tensors, Visitor, VisitorMut};
    use nalgebra::SVector;

    /// A network written by hand, with one float tensor and two integer counts, so counts are
    /// tested here without the macro (and without a layer that has them).
    #[derive(Clone, Debug, PartialEq)]
    struct Counted {
        weight: SVector<f32, 3>,
        first: i64,
        second: i64,
    }

    // SAFETY: floats and integers, all of which are zero in all-zero bytes.
    unsafe impl Zeroable for Counted {}

    impl Tensors<f32> for Counted {
        fn visit(&self, prefix: &str, f: &mut Visitor<f32>) {
            f(&format!("{prefix}0.weight"), &[3], self.weight.as_slice());
        }

        fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<f32>) {
            f(
                &format!("{prefix}0.weight"),
                &[3],
                self.weight.as_mut_slice(),
            );
        }

        fn visit_counts(&self, prefix: &str, f: &mut CountVisitor) {
            f(&format!("{prefix}1.num_batches_tracked"), self.first);
            f(&format!("{prefix}2.num_batches_tracked"), self.second);
        }

        fn visit_counts_mut(&mut self, prefix: &str, f: &mut CountVisitorMut) {
            f(&format!("{prefix}1.num_batches_tracked"), &mut self.first);
            f(&format!("{prefix}2.num_batches_tracked"), &mut self.second);
        }
    }

    impl Network for Counted {
        type Scalar = f32;
        type Grads = Counted;
        const IN: usize = 3;
        const OUT: usize = 3;
        const PARAMS: usize = 3;
        const TENSORS: usize = 1;
        const FLOPS_FORWARD: usize = 0;
        const FLOPS_BACKWARD: usize = 0;
        const FLOPS_NESTED_BACKWARD: usize = 0;
        const ACTIVATION_BYTES: usize = 0;

        fn reset(&mut self, _: &mut Init) {
            self.weight.fill(1.0);
        }

        fn tensors<'a>(
            &'a mut self,
            gradients: &'a Self::Grads,
            params: &mut [&'a mut [f32]],
            grads: &mut [&'a [f32]],
            at: &mut usize,
        ) {
            params[*at] = self.weight.as_mut_slice();
            grads[*at] = gradients.weight.as_slice();
            *at += 1;
        }
    }

    fn counted() -> Counted {
        Counted {
            weight: SVector::from([0.5, -1.0, 2.0]),
            first: 7,
            second: i64::MIN + 3,
        }
    }

    /// A safetensors file of the given tensors: `(name, dtype, shape, bytes)`.
    fn file(tensors: &[(&str, Dtype, &[usize], Vec<u8>)]) -> Vec<u8> {
        let owned: Vec<(&str, Owned)> = tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                let t = Owned {
                    dtype: *dtype,
                    shape: shape.to_vec(),
                    bytes: bytes.clone(),
                };
                (*name, t)
            })
            .collect();
        safetensors::serialize(owned.iter().map(|(n, t)| (*n, t)), None).unwrap()
    }

    fn weight_bytes() -> Vec<u8> {
        [0.5f32, -1.0, 2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    #[test]
    fn counts_are_saved_as_i64_scalars_and_loaded_back() {
        let net = counted();
        let bytes = to_safetensors_bytes(&net);
        let parsed = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = parsed.names();
        names.sort_unstable();
        assert_eq!(
            names,
            ["0.weight", "1.num_batches_tracked", "2.num_batches_tracked"]
        );
        for (name, value) in [
            ("1.num_batches_tracked", 7),
            ("2.num_batches_tracked", i64::MIN + 3),
        ] {
            let view = parsed.tensor(name).unwrap();
            assert_eq!(view.dtype(), Dtype::I64);
            assert!(view.shape().is_empty(), "{name}: {:?}", view.shape());
            assert_eq!(view.data(), value.to_le_bytes());
        }
        let back: Counted = from_safetensors_bytes(&bytes).unwrap();
        assert_eq!(back, net);
    }

    /// The header torch's `safetensors.torch.save_file` writes for a long scalar loads.
    #[test]
    fn a_torch_style_scalar_loads() {
        let header = r#"{"0.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[12,20]},"2.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[20,28]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(weight_bytes());
        bytes.extend(7i64.to_le_bytes());
        bytes.extend((i64::MIN + 3).to_le_bytes());
        let net: Counted = from_safetensors_bytes(&bytes).unwrap();
        assert_eq!(net, counted());
    }

    /// Every mismatch of a count is an error naming it, and leaves the network as it was.
    #[test]
    fn count_mismatches_are_errors_naming_the_count() {
        let seven = 7i64.to_le_bytes().to_vec();
        let other = (i64::MIN + 3).to_le_bytes().to_vec();
        let weight = ("0.weight", Dtype::F32, &[3usize][..], weight_bytes());
        let first = ("1.num_batches_tracked", Dtype::I64, &[][..], seven.clone());
        let second = ("2.num_batches_tracked", Dtype::I64, &[][..], other.clone());
        let cases: [(Vec<_>, &str); 5] = [
            (
                vec![weight.clone(), first.clone()],
                "tensor `2.num_batches_tracked` is missing from the file",
            ),
            (
                vec![
                    weight.clone(),
                    first.clone(),
                    ("2.num_batches_tracked", Dtype::F32, &[][..], vec![0; 4]),
                ],
                "tensor `2.num_batches_tracked` has dtype F32 in the file, but the network \
                 expects I64",
            ),
            (
                vec![
                    weight.clone(),
                    ("1.num_batches_tracked", Dtype::I64, &[1][..], seven.clone()),
                    second.clone(),
                ],
                "tensor `1.num_batches_tracked` has shape [1] in the file, but the network \
                 expects []",
            ),
            (
                vec![
                    weight.clone(),
                    first.clone(),
                    second.clone(),
                    ("3.num_batches_tracked", Dtype::I64, &[][..], seven.clone()),
                ],
                "the file has a tensor `3.num_batches_tracked` that the network does not have",
            ),
            (
                vec![
                    ("0.weight", Dtype::I64, &[3][..], vec![0; 24]),
                    first.clone(),
                    second.clone(),
                ],
                "tensor `0.weight` has dtype I64 in the file, but the network expects F32",
            ),
        ];
        for (tensors, message) in cases {
            let mut net = counted();
            net.first = 1;
            let before = net.clone();
            let err = fill_from_safetensors_bytes(&mut net, &file(&tensors)).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert_eq!(net, before, "{message}: the network changed");
        }
        // And all of them, right, load.
        let mut net = Counted::zeros();
        fill_from_safetensors_bytes(&mut net, &file(&[weight, first, second])).unwrap();
        assert_eq!(net, counted());
    }

    #[test]
    fn row_major_index_transposes_matrices_only() {
        // A 2 x 3 matrix [[a, b, c], [d, e, f]] is a d b e c f column-major.
        let order: Vec<usize> = (0..6).map(|i| row_major_index(&[2, 3], i)).collect();
        assert_eq!(order, [0, 3, 1, 4, 2, 5]);
        assert_eq!(row_major_index(&[5], 3), 3);
    }

    #[test]
    fn row_major_index_reads_three_axes_as_rows_by_the_rest() {
        // A [2, 3, 2] tensor stored as a 2 x 6 matrix whose column i * 2 + k is [:, i, k]:
        // element (o, i * 2 + k) sits at (i * 2 + k) * 2 + o column-major, and must go to
        // torch's row-major o * 6 + i * 2 + k.
        for o in 0..2 {
            for i in 0..3 {
                for k in 0..2 {
                    let column_major = (i * 2 + k) * 2 + o;
                    assert_eq!(row_major_index(&[2, 3, 2], column_major), o * 6 + i * 2 + k);
                }
            }
        }
        // Every index once: a permutation.
        let mut seen: Vec<usize> = (0..12).map(|i| row_major_index(&[2, 3, 2], i)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
        // A trailing axis of 1 changes nothing: [4, 3, 1] is the 4 x 3 matrix's order.
        for i in 0..12 {
            assert_eq!(row_major_index(&[4, 3, 1], i), row_major_index(&[4, 3], i));
        }
    }

    #[test]
    fn row_major_index_reads_four_axes_as_rows_by_the_rest() {
        // A 2-D convolution's [OUT, CIN/G, KH, KW] = [3, 2, 2, 3] weight, stored as a 3 x 12
        // matrix whose column (ci * KH + kh) * KW + kw is [:, ci, kh, kw]: torch's row-major
        // index of (o, ci, kh, kw) is ((o * 2 + ci) * 2 + kh) * 3 + kw.
        for o in 0..3 {
            for ci in 0..2 {
                for kh in 0..2 {
                    for kw in 0..3 {
                        let column = (ci * 2 + kh) * 3 + kw;
                        let column_major = column * 3 + o;
                        let torch = ((o * 2 + ci) * 2 + kh) * 3 + kw;
                        assert_eq!(row_major_index(&[3, 2, 2, 3], column_major), torch);
                    }
                }
            }
        }
        // The same as the [3, 12] matrix it is stored as.
        for i in 0..36 {
            assert_eq!(
                row_major_index(&[3, 2, 2, 3], i),
                row_major_index(&[3, 12], i)
            );
        }
    }

    #[test]
    fn dtypes() {
        assert_eq!(dtype_of::<f32>(), Dtype::F32);
        assert_eq!(dtype_of::<f64>(), Dtype::F64);
    }

    #[test]
    fn offsets_near_the_top_of_u64_are_corrupt_not_a_panic() {
        // Eight U8 tensors of 2^61 - 1 bytes each: their offsets add up to 2^64 - 8, which the
        // parser's own size check would overflow.
        let size = (1u64 << 61) - 1;
        let mut header = String::from("{");
        for i in 0..8u64 {
            if i > 0 {
                header.push(',');
            }
            header.push_str(&format!(
                r#""t{i}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{},{}]}}"#,
                i * size,
                (i + 1) * size
            ));
        }
        header.push('}');
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        assert!(matches!(parse(&bytes), Err(Error::Corrupt { .. })));
    }
}
