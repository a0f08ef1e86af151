//! Compile-error tests: one file per rule in `tests/ui/`, each `.stderr` pinning the message
//! and the span of what the compiler reports.
//!
//! After a deliberate change of a message, regenerate with
//! `TRYBUILD=overwrite cargo test --test ui` and review the diff of the `.stderr` files.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
