//! Reading weights allocates nothing, proven with a counting global allocator:
//! `from_safetensors_bytes` and `fill_from_safetensors_bytes` of a good file (and
//! `write_safetensors_into`, which writes one), and each kind of
//! error (a corrupt file, a missing, unexpected, misshapen or mistyped tensor), since an
//! `Error` holds its name and shapes inline.
//!
//! The network is written by hand, with `&'static str` names, so that the count is the
//! reader's alone: the names `network!`'s `Tensors::visit` builds are the network's business
//! (they are `format!`ed strings while the runtime has `std`). A generated network is checked
//! too: its load allocates exactly what its own visits of names allocate, nothing more.
//!
//! One test function only: the counter is global, and tests in one binary run in parallel.

use nalgebra::{SMatrix, SVector};
use nn_runtime::heap::Zeroable;
use nn_runtime::init::Init;
use nn_runtime::prelude::*;
use nn_runtime::tensors::{CountVisitor, CountVisitorMut, Tensors, Visitor, VisitorMut};
use nn_runtime::weights::{self, Error};

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

/// Two float tensors and a count, named without allocating.
#[derive(Clone, Debug, PartialEq)]
struct Fixed {
    weight: SMatrix<f32, 3, 2>,
    bias: SVector<f32, 3>,
    count: i64,
}

// SAFETY: floats and an integer, all of which are zero in all-zero bytes.
unsafe impl Zeroable for Fixed {}

impl Tensors<f32> for Fixed {
    fn visit(&self, prefix: &str, f: &mut Visitor<f32>) {
        assert!(prefix.is_empty(), "a top-level network");
        f("0.weight", &[3, 2], self.weight.as_slice());
        f("0.bias", &[3], self.bias.as_slice());
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<f32>) {
        assert!(prefix.is_empty(), "a top-level network");
        f("0.weight", &[3, 2], self.weight.as_mut_slice());
        f("0.bias", &[3], self.bias.as_mut_slice());
    }

    fn visit_counts(&self, _: &str, f: &mut CountVisitor) {
        f("1.num_batches_tracked", self.count);
    }

    fn visit_counts_mut(&mut self, _: &str, f: &mut CountVisitorMut) {
        f("1.num_batches_tracked", &mut self.count);
    }
}

impl Network for Fixed {
    type Scalar = f32;
    type Grads = Fixed;
    const IN: usize = 2;
    const OUT: usize = 3;
    const PARAMS: usize = 9;
    const TENSORS: usize = 2;
    const FLOPS_FORWARD: usize = 0;
    const FLOPS_BACKWARD: usize = 0;
    const FLOPS_NESTED_BACKWARD: usize = 0;
    const ACTIVATION_BYTES: usize = 0;

    fn reset(&mut self, _: &mut Init) {}

    fn tensors<'a>(
        &'a mut self,
        gradients: &'a Fixed,
        params: &mut [&'a mut [f32]],
        grads: &mut [&'a [f32]],
        at: &mut usize,
    ) {
        let (weight, bias) = (&mut self.weight, &mut self.bias);
        params[*at] = weight.as_mut_slice();
        grads[*at] = gradients.weight.as_slice();
        params[*at + 1] = bias.as_mut_slice();
        grads[*at + 1] = gradients.bias.as_slice();
        *at += 2;
    }
}

network! {
    /// A generated network, whose names are built as it visits them.
    pub struct Small { Linear(2, 4), ReLU, Linear(4, 1) }
}

fn fixed() -> Fixed {
    Fixed {
        weight: SMatrix::from_fn(|r, c| (r * 2 + c) as f32 - 2.5),
        bias: SVector::from([0.5, -1.0, 2.0]),
        count: 41,
    }
}

/// A header of `entries` (JSON members) over `data` bytes.
fn file(entries: &str, data: &[u8]) -> Vec<u8> {
    let header = format!("{{{entries}}}");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn reading_weights_allocates_nothing() {
    let good = fixed().to_safetensors_bytes();
    let weight = r#""0.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}"#;
    let bias = r#""0.bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}"#;
    let count = r#""1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[36,44]}"#;
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (
            good[..good.len() - 1].to_vec(),
            "not a valid safetensors file",
        ),
        (file(&format!("{weight},{bias}"), &[0; 36]), "is missing"),
        (
            file(
                &format!(
                    "{weight},{bias},{count},\"x\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[44,45]}}"
                ),
                &[0; 45],
            ),
            "does not have",
        ),
        (
            file(
                &format!(
                    "\"0.weight\":{{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}},{bias},{count}"
                ),
                &[0; 44],
            ),
            "has shape [2, 3]",
        ),
        (
            file(
                &format!(
                    "\"0.weight\":{{\"dtype\":\"I32\",\"shape\":[3,2],\"data_offsets\":[0,24]}},{bias},{count}"
                ),
                &[0; 44],
            ),
            "has dtype I32",
        ),
    ];
    let small = Small::seeded(3).to_safetensors_bytes();
    let mut into = Fixed::zeros();
    let mut small_into = Small::zeros();
    // Once to warm up (lazy statics, the CPU feature check), then counted.
    for _ in 0..2 {
        let loaded = allocations(|| {
            let net: Fixed = weights::from_safetensors_bytes(&good).unwrap();
            assert_eq!(net, fixed());
        });
        assert_eq!(loaded, 0, "from_safetensors_bytes allocated");
        let filled = allocations(|| into.fill_from_safetensors_bytes(&good).unwrap());
        assert_eq!(filled, 0, "fill_from_safetensors_bytes allocated");
        let mut written = [0u8; 512];
        let mut len = 0;
        let writing = allocations(|| {
            len = weights::write_safetensors_into(&fixed(), &mut written).unwrap();
        });
        assert_eq!(writing, 0, "write_safetensors_into allocated");
        assert_eq!(
            Fixed::from_safetensors_bytes(&written[..len]).unwrap(),
            fixed()
        );
        for (bytes, message) in &bad {
            let mut err: Option<Error> = None;
            let failed = allocations(|| err = Fixed::from_safetensors_bytes(bytes).err());
            assert_eq!(failed, 0, "an error `{message}` allocated");
            // Printing allocates (a String), so it is looked at outside the count.
            let err = err.expect("an error");
            assert!(err.to_string().contains(message), "{err} lacks {message}");
        }
        // A generated network: only its own names allocate.
        let names = allocations(|| visit_all(&mut small_into));
        let small_loaded = allocations(|| small_into.fill_from_safetensors_bytes(&small).unwrap());
        if names == 0 {
            assert_eq!(small_loaded, 0);
        } else {
            assert_eq!(
                small_loaded % names,
                0,
                "{small_loaded} allocations, {names} per visit"
            );
        }
    }
    assert_eq!(into, fixed());
    assert_eq!(small_into, Small::seeded(3));
}

/// Every name of `net` visited once, as a load visits them.
fn visit_all<N: Network>(net: &mut N) {
    net.visit_mut("", &mut |_, _, _| {});
    net.visit_counts_mut("", &mut |_, _| {});
}
