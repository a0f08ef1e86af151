//! Arbitrary bytes as the weights of several networks: loading never panics, and what loads
//! survives a save and a load unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nn_fuzz_harness::check_weights(data));
