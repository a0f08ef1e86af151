//! The per-input checks of the fuzzers, in one place: the cargo-fuzz targets of `tests/fuzz`
//! and the replay test `tests/fuzz_replay.rs` call these same functions, so CI replays exactly
//! what the fuzzers run.
//!
//! Each check returns normally when the input is handled as it must be, and panics (which the
//! fuzzer reports as a crash) when it is not.

mod declaration;
mod networks;
mod weights;

pub use declaration::{check_declaration, check_declaration_choices, declaration_from_choices};
pub use weights::{check_weights, seed_files};
