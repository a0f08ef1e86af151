//! A network with compiled-in weights runs with no allocation and no file access: built by
//! `pretrained()` (or taken from its `const`), refilled by `fill_pretrained`, and run forward,
//! under a counting global allocator. (The file is not read at run time: it is embedded by
//! `include_bytes!`, so these would run the same with the file deleted.)

// The runtime's counting allocator (per thread, so the harness's own allocations and other
// tests' do not count).
#[path = "../nn-runtime/tests/common/counting.rs"]
mod counting;
use counting::allocations;

use nn_runtime::prelude::*;

network! {
    /// Convolution, batch norm (with its `I64` count) and a head, weights compiled in.
    #[weights("tests/fixtures/compiled/conv_bn.safetensors")]
    pub struct ConvBn {
        Unflatten(1, 6, 6), Conv2d(1, 3, 3), BatchNorm2d(3), ReLU, Flatten, Linear(48, 2)
    }

    /// A two-layer GRU and a head, weights compiled in.
    #[weights("tests/fixtures/compiled/gru.safetensors")]
    pub struct GruNet { GRU(2, 4, num_layers = 2), Linear(4, 1) }
}

#[test]
fn compiled_weights_build_and_run_without_allocating() {
    let x = SVector::<f32, 36>::from_fn(|r, _| (r as f32 * 0.3).sin());
    let mut out = SVector::<f32, 2>::zeros();
    let count = allocations(|| {
        let mut net = ConvBn::pretrained();
        out += net.forward(&x);
        net.fill_pretrained();
        out += net.forward(&x);
        out += ConvBn::PRETRAINED.forward(&x);
    });
    assert_eq!(
        count, 0,
        "pretrained, fill_pretrained and forward allocated"
    );
    // What ran was the compiled network: a zero one gives other outputs.
    assert_ne!(out, ConvBn::zeros().forward(&x) * 3.0);

    let mut state = GruNetState::zeros();
    let mut y = 0.0;
    let count = allocations(|| {
        let net = GruNet::pretrained();
        for t in 0..5 {
            y += net.step(&SVector::from([t as f32 * 0.2, 1.0]), &mut state)[0];
        }
    });
    assert_eq!(
        count, 0,
        "a sequence network's pretrained and step allocated"
    );
    assert!(y.is_finite() && y != 0.0);
}
