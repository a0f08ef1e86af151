//! Weights: arbitrary bytes through the safetensors loader of several networks.

use nn_runtime::prelude::*;

use crate::networks::{Big, ConvBn, ConvTorch, Named, RnnHead, Stacked, Xor};

/// Loads `data` as the weights of each of the harness's networks and checks that loading
/// never panics, and that a network it loads saves to a file that loads back to the same
/// network, bit for bit.
///
/// # Panics
///
/// When a loader panics, or a loaded network does not survive a save and load.
pub fn check_weights(data: &[u8]) {
    round_trip::<Xor>(data);
    round_trip::<Big>(data);
    round_trip::<Named>(data);
    round_trip::<ConvTorch>(data);
    round_trip::<ConvBn>(data);
    round_trip::<RnnHead>(data);
    round_trip::<Stacked>(data);
}

/// One network's part of [`check_weights`].
fn round_trip<N: Network>(data: &[u8]) {
    let Ok(net) = N::from_safetensors_bytes(data) else {
        return;
    };
    let saved = net.to_safetensors_bytes();
    let again = match N::from_safetensors_bytes(&saved) {
        Ok(again) => again,
        Err(error) => panic!("{}: its own file does not load: {error}", name::<N>()),
    };
    // Compared as files, bit for bit: `==` would call a network holding a NaN (which a file
    // may well hold) unequal to itself.
    assert!(
        again.to_safetensors_bytes() == saved,
        "{}: saved and loaded again, it is another network",
        name::<N>()
    );
}

/// The network's type name without its path, for the messages.
fn name<N>() -> &'static str {
    let full = std::any::type_name::<N>();
    full.rsplit("::").next().unwrap_or(full)
}

/// One file per network of the harness, as `(file name, bytes)`: seeded weights, and the
/// networks with BatchNorm after a training step, so that their running statistics and count
/// are not the defaults. Seeds for the fuzzer's corpus.
pub fn seed_files() -> Vec<(String, Vec<u8>)> {
    vec![
        seed::<Xor>(1),
        seed::<Big>(2),
        seed::<Named>(3),
        seed::<ConvTorch>(4),
        trained_conv_bn(),
        seed::<RnnHead>(6),
        seed::<Stacked>(7),
    ]
}

/// `N::seeded(seed)`'s file.
fn seed<N: Network>(seed: u64) -> (String, Vec<u8>) {
    let file = format!("{}_seeded.safetensors", name::<N>().to_lowercase());
    let net = N::init(&mut nn_runtime::init::Init::new(seed));
    (file, net.to_safetensors_bytes())
}

/// `ConvBn` after one training step, its BatchNorm statistics and count moved.
fn trained_conv_bn() -> (String, Vec<u8>) {
    let mut net = crate::networks::ConvBn::seeded(5);
    let xs = SMatrix::<f64, 36, 4>::from_fn(|r, c| ((r * 7 + c * 3) as f64 * 0.31).sin());
    let ys = SMatrix::<f64, 3, 4>::from_fn(|r, c| if (r + c) % 3 == 0 { 1.0 } else { 0.0 });
    net.train_step(&xs, &ys, &Mse, &mut Sgd::new(0.1));
    (
        "convbn_trained.safetensors".to_string(),
        net.to_safetensors_bytes(),
    )
}
