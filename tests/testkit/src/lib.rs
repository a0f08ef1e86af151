//! What the workspace's tests share, so that each is written once: readers of the JSON
//! fixtures in `tests/fixtures/`, the optimizer a fixture names built from its `torch.optim`
//! arguments, the XOR network and data, a deterministic generator of test values, and the
//! probe that measures an activation through a network (with its PyTorch fixture's reader), the
//! loss that captures a training-mode output, and the PyTorch-parity harness of the
//! whole-network tests (a table of networks matched with their fixtures, compared within
//! tolerances).
//!
//! A dev-only crate (`publish = false`): the tests of the workspace depend on it, the product
//! does not.

pub mod activations;
pub mod fixtures;
pub mod gradcheck;
pub mod modes;
pub mod optim;
pub mod parity;
pub mod rng;
pub mod xor;

/// For [`feed_forward_parity_table!`]: the JSON value type its checks take.
#[doc(hidden)]
pub use serde_json as __serde_json;
