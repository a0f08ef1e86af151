//! Arbitrary text through the `network!` macro's front end: parse, check, generate. Never a
//! panic; the output is always Rust items.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nn_fuzz_harness::check_declaration(data));
