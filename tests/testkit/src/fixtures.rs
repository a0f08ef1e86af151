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
