//! Declarations built from the grammar (each byte chooses a header, a layer kind or a size)
//! through the `network!` macro's front end: deeper into the checker and the generator than
//! random text gets.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nn_fuzz_harness::check_declaration_choices(data));
