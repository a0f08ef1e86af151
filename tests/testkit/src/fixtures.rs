//! Readers of the JSON fixtures in `tests/fixtures/<kind>/` (written by the scripts in
//! `scripts/`). Every reader panics with what it was reading: a malformed fixture is a failed
//! test, never a silently shorter one.

use nn_runtime::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The folder `tests/fixtures/<kind>` (`network`, `optim`, `weights`).
pub fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(kind)
}

/// The stems of the `.json` files in `tests/fixtures/<kind>`.
pub fn fixture_names(kind: &str) -> BTreeSet<String> {
    let dir = fixture_dir(kind);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// `tests/fixtures/<kind>/<name>.json`, parsed.
pub fn load(kind: &str, name: &str) -> Value {
    let path = fixture_dir(kind).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: bad JSON: {e}", path.display()))
}

/// `value` as a list of exactly `len` entries.
pub fn list<'a>(value: &'a Value, what: &str, len: usize) -> &'a [Value] {
    let items = value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: expected a list, got {value}"));
    assert_eq!(items.len(), len, "{what}: expected {len} entries");
    items
}

/// `value` as a number.
pub fn number(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {value} is not a number"))
}

/// A torch value of dtype `T`, read as `T` and widened exactly for comparison.
///
/// Every fixture number is an exact value of the fixture's dtype, written as the shortest
/// decimal that round-trips. serde_json's default float parsing (without `float_roundtrip`) may
/// miss the nearest `f64` by a unit in the last place; rounding to `f32` removes that error for
/// the `f32` fixtures, and for `f64` it is about `1e-16` relative, far below the tolerance.
pub fn torch_value<T: Real>(value: &Value, what: &str) -> f64 {
    T::cast(number(value, what)).widen()
}

/// A matrix from torch's row-major nested lists `[R][C]`: entry `[r][c]` goes to `(r, c)`.
pub fn matrix<T: Real, const R: usize, const C: usize>(
    value: &Value,
    what: &str,
) -> SMatrix<T, R, C> {
    let mut m = SMatrix::<T, R, C>::zeros();
    for (r, row) in list(value, what, R).iter().enumerate() {
        for (c, x) in list(row, what, C).iter().enumerate() {
            m[(r, c)] = T::cast(number(x, what));
        }
    }
    m
}

/// A vector from a flat list of `R` numbers.
pub fn vector<T: Real, const R: usize>(value: &Value, what: &str) -> SVector<T, R> {
    let mut v = SVector::<T, R>::zeros();
    for (r, x) in list(value, what, R).iter().enumerate() {
        v[r] = T::cast(number(x, what));
    }
    v
}

/// A batch from a list of `B` samples of `R` numbers each: sample `b` becomes column `b`.
pub fn samples<T: Real, const R: usize, const B: usize>(
    value: &Value,
    what: &str,
) -> SMatrix<T, R, B> {
    matrix::<T, B, R>(value, what).transpose()
}

/// A JSON list of lists of numbers as one flat `Vec<T>` per tensor (the optimizer fixtures
/// store each tensor flattened row-major).
pub fn tensors<T: Real>(value: &Value, what: &str) -> Vec<Vec<T>> {
    let lists = value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: expected a list of tensors"));
    lists
        .iter()
        .map(|list| {
            let list = list
                .as_array()
                .unwrap_or_else(|| panic!("{what}: expected a list"));
            list.iter().map(|x| T::cast(number(x, what))).collect()
        })
        .collect()
}

/// Asserts that `net`'s tensors are named, in order, as the fixture `record`'s `names` list
/// says (the `state_dict` keys of the PyTorch model that wrote it).
pub fn assert_tensor_names<T: Real>(net: &impl nn_runtime::Tensors<T>, record: &Value) {
    let names: Vec<&str> = record["names"]
        .as_array()
        .expect("the fixture lists its tensors' names")
        .iter()
        .map(|n| n.as_str().expect("names are strings"))
        .collect();
    let mut ours = Vec::new();
    net.visit("", &mut |name, _, _| ours.push(name.to_string()));
    assert_eq!(ours, names);
}

/// One tensor by `state_dict` name: its torch shape and its values in [`Tensors`] order
/// (nalgebra's column-major: element `(r, c)` of an `R x C` tensor at `c * R + r`).
///
/// [`Tensors`]: nn_runtime::Tensors
#[derive(Clone, Debug, PartialEq)]
pub struct Named<T> {
    /// The `state_dict` name, e.g. `0.weight_ih_l0`.
    pub name: String,
    /// torch's shape, e.g. `[15, 3]`.
    pub shape: Vec<usize>,
    /// The values, column-major.
    pub values: Vec<T>,
}

/// Torch's nested row-major list of a tensor of `shape`, in [`Tensors`](nn_runtime::Tensors)
/// order: entry `[r][c]` of an `R x C` tensor goes to `c * R + r`; a tensor of more axes
/// `[R, a, b, ..]` is the `R x (a b ..)` matrix whose column is the other axes' row-major index
/// (a convolution's `[OUT, IN, K]` weight: `[o][i][k]` goes to `(i K + k) * OUT + o`), as
/// `Tensors` stores it. Values are read as `T`.
pub fn column_major<T: Real>(value: &Value, shape: &[usize], what: &str) -> Vec<T> {
    match *shape {
        [n] => list(value, what, n)
            .iter()
            .map(|x| T::cast(number(x, what)))
            .collect(),
        [rows, ref rest @ ..] if !rest.is_empty() => {
            let cols: usize = rest.iter().product();
            let mut out = vec![T::zero(); rows * cols];
            for (r, row) in list(value, what, rows).iter().enumerate() {
                let flat = row_major(row, rest, what);
                for (c, x) in flat.into_iter().enumerate() {
                    out[c * rows + r] = x;
                }
            }
            out
        }
        _ => panic!("{what}: no reader for a tensor of shape {shape:?}"),
    }
}

/// A nested list of `shape`, flattened in row-major order (each level's length checked).
fn row_major<T: Real>(value: &Value, shape: &[usize], what: &str) -> Vec<T> {
    match shape {
        [] => vec![T::cast(number(value, what))],
        [n, rest @ ..] => list(value, what, *n)
            .iter()
            .flat_map(|item| row_major::<T>(item, rest, what))
            .collect(),
    }
}

/// The name of element `i` (in [`Tensors`](nn_runtime::Tensors) order) of a tensor of `shape`,
/// as torch indexes it: `[r][c]` of a matrix, `[o][i][k]` of a convolution's weight (see
/// [`column_major`]), `[i]` of a vector.
pub fn element(shape: &[usize], i: usize) -> String {
    match shape {
        [] | [_] => format!("[{i}]"),
        [rows, rest @ ..] => {
            let (r, mut c) = (i % rows, i / rows);
            let mut index = Vec::new();
            for &n in rest.iter().rev() {
                index.push(c % n);
                c /= n;
            }
            index.push(r);
            index.iter().rev().map(|k| format!("[{k}]")).collect()
        }
    }
}

/// Every tensor of `net` by name, in [`Tensors::visit`](nn_runtime::Tensors::visit) order.
pub fn named_tensors<T: Real>(net: &impl nn_runtime::Tensors<T>) -> Vec<Named<T>> {
    let mut out = Vec::new();
    net.visit("", &mut |name, shape, data| {
        out.push(Named {
            name: name.to_string(),
            shape: shape.to_vec(),
            values: data.to_vec(),
        })
    });
    out
}

/// Sets every tensor of `net` from a `state_dict`-like map (`name -> nested list by torch's
/// shape`, as the fixtures store parameters), by name. Panics, naming it, on a tensor the map
/// lacks, on a tensor of the map `net` lacks and on a misshapen list: no parameter is left at
/// its old value silently.
pub fn set_tensors<T: Real>(net: &mut impl nn_runtime::Tensors<T>, state: &Value, what: &str) {
    let map = state
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected a map of tensors"));
    let mut seen = BTreeSet::new();
    net.visit_mut("", &mut |name, shape, data| {
        let value = map
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no tensor {name} (shape {shape:?})"));
        let values = column_major::<T>(value, shape, &format!("{what}.{name}"));
        assert_eq!(values.len(), data.len(), "{what}.{name}: size");
        data.copy_from_slice(&values);
        seen.insert(name.to_string());
    });
    let extra: Vec<&String> = map.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(
        extra.is_empty(),
        "{what}: tensors the network does not have: {extra:?}"
    );
}

/// Every gradient of `grads` by the name of its parameter, in
/// [`Tensors::visit`](nn_runtime::Tensors::visit) order.
///
/// The generated gradient struct has no `Tensors` impl of its own; [`Network::tensors`] pairs
/// each parameter tensor with its gradient (the flat view optimizers use), in declaration
/// order. This pairs those with the names `visit` gives, checking that the two orders agree
/// tensor by tensor (same data pointer and length), so a gradient cannot be put under another
/// parameter's name.
pub fn named_gradients<N: Network + Clone>(net: &N, grads: &N::Grads) -> Vec<Named<N::Scalar>> {
    let mut copy = net.clone();
    let mut visited = Vec::new();
    copy.visit("", &mut |name, shape, data| {
        visited.push((
            name.to_string(),
            shape.to_vec(),
            data.as_ptr() as usize,
            data.len(),
        ))
    });
    let mut params: Vec<&mut [N::Scalar]> = std::iter::repeat_with(Default::default)
        .take(N::TENSORS)
        .collect();
    let mut views: Vec<&[N::Scalar]> = vec![&[]; N::TENSORS];
    let mut at = 0;
    copy.tensors(grads, &mut params, &mut views, &mut at);
    assert_eq!(at, N::TENSORS, "Network::tensors filled {at} of TENSORS");
    assert_eq!(visited.len(), N::TENSORS, "visit and TENSORS disagree");
    visited
        .into_iter()
        .zip(params.iter().zip(&views))
        .map(|((name, shape, ptr, len), (param, grad))| {
            assert!(
                param.as_ptr() as usize == ptr && param.len() == len,
                "{name}: Network::tensors and Tensors::visit list tensors in different orders"
            );
            assert_eq!(grad.len(), len, "{name}: gradient size");
            Named {
                name,
                shape,
                values: grad.to_vec(),
            }
        })
        .collect()
}

/// A recurrent layer's state `[SMatrix<T, H, B>; K]` (one matrix per stacked layer, one column
/// per stream) from the fixtures' nested lists `[K][H][B]`.
pub fn set_layers<T: Real, const H: usize, const B: usize, const K: usize>(
    ours: &mut [SMatrix<T, H, B>; K],
    value: &Value,
    what: &str,
) {
    for (k, layer) in list(value, what, K).iter().enumerate() {
        ours[k] = matrix(layer, &format!("{what}[{k}]"));
    }
}

/// A causal convolution's state from the fixtures' list `[SPAN][IN][B]` of its last `SPAN`
/// inputs, oldest first (see [`oldest_first`]): slot `s` from entry `s`, the ring at slot 0.
pub fn set_ring<T: Real, const IN: usize, const SPAN: usize, const B: usize>(
    ours: &mut nn_runtime::ConvState<T, IN, SPAN, B>,
    value: &Value,
    what: &str,
) {
    set_layers(&mut ours.buffer, value, what);
    ours.next = 0;
}

/// A causal convolution's ring buffer read from its position `next` around: its last `SPAN`
/// inputs oldest first, whatever slot the ring has reached. The fixtures hold a state in this
/// order (as the ring holds it when `next` is 0), so that a state compares with torch's
/// whatever the window's length; a gradient with respect to a state (the backward pass's
/// carry, whose `next` is the state's) reads the same way.
pub fn oldest_first<T: Real, const IN: usize, const SPAN: usize, const B: usize>(
    state: &nn_runtime::ConvState<T, IN, SPAN, B>,
) -> [SMatrix<T, IN, B>; SPAN] {
    std::array::from_fn(|s| state.buffer[(state.next + s) % SPAN])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_axes_read_as_rows_by_the_rest() {
        // [2][3][2]: entry [o][i][k] = 100 o + 10 i + k.
        let value: Value = serde_json::from_str(
            "[[[0, 1], [10, 11], [20, 21]], [[100, 101], [110, 111], [120, 121]]]",
        )
        .unwrap();
        let data = column_major::<f64>(&value, &[2, 3, 2], "t");
        for o in 0..2 {
            for i in 0..3 {
                for k in 0..2 {
                    let at = (i * 2 + k) * 2 + o;
                    assert_eq!(data[at], (100 * o + 10 * i + k) as f64);
                    assert_eq!(element(&[2, 3, 2], at), format!("[{o}][{i}][{k}]"));
                }
            }
        }
        let matrix: Value = serde_json::from_str("[[1, 2, 3], [4, 5, 6]]").unwrap();
        assert_eq!(
            column_major::<f64>(&matrix, &[2, 3], "m"),
            [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
        assert_eq!(element(&[2, 3], 3), "[1][1]");
        assert_eq!(element(&[4], 3), "[3]");
    }
}
