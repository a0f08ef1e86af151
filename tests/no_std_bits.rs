//! The `no_std` build computes the same bits as the `std` build.
//!
//! `tests/no_std` (package `nn-no-std`) trains two networks through the public API without
//! `std` or `alloc` and returns the bits of its losses and outputs; its own unit test, built
//! with the runtime's `std` off (`cargo test -p nn-no-std`), compares them with
//! `tests/fixtures/no_std_bits.txt`. Here the same code runs with `std` on (this package turns
//! it on, and features are unified) against the same file: so the two builds agree bit for
//! bit.
//!
//! `UPDATE_FIXTURES=1 cargo test --test no_std_bits` rewrites the file from this (`std`)
//! build, and says so; without it a difference fails.

use std::fmt::Write as _;

/// The fixture both builds are compared with.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/no_std_bits.txt"
);

/// The fixture's text for `bits`: a header, then one `label 0x...` line per value.
fn render(bits: &[u32; nn_no_std::VALUES]) -> String {
    let mut text = String::from(
        "# Bits of nn-no-std's run() (tests/no_std/src/lib.rs), the same with std and without.\n\
         # Written by `UPDATE_FIXTURES=1 cargo test --test no_std_bits` (the std build).\n",
    );
    for (label, bits) in nn_no_std::LABELS.iter().zip(bits) {
        writeln!(text, "{label} {bits:#010x}").unwrap();
    }
    text
}

#[test]
fn std_build_matches_the_no_std_fixture() {
    let got = nn_no_std::run();
    if std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1") {
        std::fs::write(FIXTURE, render(&got)).unwrap();
        eprintln!("UPDATE_FIXTURES=1: wrote {FIXTURE}");
        return;
    }
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let want = nn_no_std::parse_fixture(&text).expect("a malformed fixture");
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            got,
            want,
            "{}: {} against the fixture's {}",
            nn_no_std::LABELS[i],
            f32::from_bits(*got),
            f32::from_bits(*want)
        );
    }
    // The values are those of a training run that learned something, not of a broken one.
    let value = |i: usize| f32::from_bits(got[i]);
    assert!(got.iter().all(|&b| f32::from_bits(b).is_finite()));
    assert!(value(1) < value(0), "Adam did not lower the loss");
    assert!(
        value(11) < value(8),
        "AdamW and RmsProp did not lower the loss"
    );
}
