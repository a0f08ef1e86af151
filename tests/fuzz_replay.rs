//! Replays the fuzzers' corpora and their regression inputs (`tests/fuzz/corpus/<target>/`,
//! `tests/fuzz/regressions/<target>/`) through the same checks the fuzz targets run
//! (`nn_fuzz_harness`), so every input a fuzzer ever kept, and every crash it ever found, is
//! checked on every `cargo test` without nightly or cargo-fuzz.
//!
//! `cargo test --test fuzz_replay -- --ignored` instead writes the seed files of the corpora
//! (see [`write_seed_corpora`]); scripts/fuzz.sh then grows and minimises them.

use std::fs;
use std::path::{Path, PathBuf};

/// A check of one input, as the harness writes them.
type Check = fn(&[u8]);

/// Each fuzz target with the check it runs on one input.
const TARGETS: &[(&str, Check)] = &[
    ("macro_front", nn_fuzz_harness::check_declaration),
    (
        "macro_declaration",
        nn_fuzz_harness::check_declaration_choices,
    ),
    ("safetensors", nn_fuzz_harness::check_weights),
];

/// `tests/fuzz/`.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every file of `dir`, naming the file that fails; returns how many ran.
fn replay(dir: &Path, check: Check) -> usize {
    let files = files(dir);
    for file in &files {
        let data = fs::read(file).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check", file.display());
    }
    files.len()
}

/// Every corpus file of every target passes its check, and no corpus is empty (an empty one
/// would prove nothing, quietly).
#[test]
fn every_corpus_input_passes() {
    for (target, check) in TARGETS {
        let count = replay(&fuzz_dir().join("corpus").join(target), *check);
        assert!(count > 0, "the corpus of {target} is empty");
    }
}

/// Every crash the fuzzers found, kept under a name saying what it was, passes its check now.
#[test]
fn every_regression_input_passes() {
    for (target, check) in TARGETS {
        replay(&fuzz_dir().join("regressions").join(target), *check);
    }
}

/// The harness's own seed files load into their networks and pass the weights check: the
/// corpus then surely holds files that get past the loader's checks to the round trip.
#[test]
fn seed_files_pass_the_weights_check() {
    let seeds = nn_fuzz_harness::seed_files();
    assert!(seeds.len() >= 7);
    for (_, bytes) in &seeds {
        nn_fuzz_harness::check_weights(bytes);
    }
}

/// The checks catch what they are for: a declaration whose expansion is not Rust would fail,
/// so here a lexable non-declaration yields the `compile_error!` and passes, and the weights
/// check passes on garbage (an `Err`, not a panic).
#[test]
fn the_checks_accept_errors_that_are_reported() {
    nn_fuzz_harness::check_declaration(b"struct { Linear(2, }");
    nn_fuzz_harness::check_declaration(b"\xff not UTF-8");
    nn_fuzz_harness::check_declaration(b"\"unterminated");
    nn_fuzz_harness::check_weights(b"\x10\0\0\0\0\0\0\0{\"a\":1}");
    nn_fuzz_harness::check_declaration_choices(&[0, 0, 4, 4, 2, 0, 4, 1]);
}

/// Writes the seed files of the corpora (`cargo test --test fuzz_replay -- --ignored`): the
/// weights files of `tests/fixtures/` and of the harness's networks, and the body of every
/// `network! { .. }` in the UI tests, the integration tests, the examples and the README.
#[test]
#[ignore = "writes files into tests/fuzz/corpus; run by hand to seed the corpora"]
fn write_seed_corpora() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = fuzz_dir().join("corpus");
    let weights = corpus.join("safetensors");
    fs::create_dir_all(&weights).unwrap();
    for file in files(&root.join("tests/fixtures/weights")) {
        if file.extension().is_some_and(|e| e == "safetensors") {
            fs::copy(&file, weights.join(file.file_name().unwrap())).unwrap();
        }
    }
    for (name, bytes) in nn_fuzz_harness::seed_files() {
        fs::write(weights.join(name), bytes).unwrap();
    }
    let declarations = corpus.join("macro_front");
    fs::create_dir_all(&declarations).unwrap();
    let mut sources = files(&root.join("tests/ui"));
    sources.extend(files(&root.join("tests")));
    sources.extend(files(&root.join("examples")));
    sources.extend(files(&root.join("examples/data")));
    sources.push(root.join("README.md"));
    let mut count = 0;
    for source in sources
        .iter()
        .filter(|s| s.extension().is_some_and(|e| e == "rs" || e == "md"))
    {
        let text = fs::read_to_string(source).unwrap();
        for body in invocation_bodies(&text) {
            fs::write(declarations.join(format!("seed-{count:04}")), body).unwrap();
            count += 1;
        }
    }
    let choices = corpus.join("macro_declaration");
    fs::create_dir_all(&choices).unwrap();
    for (i, seed) in [
        &[0u8, 0, 4, 4, 2, 0, 4, 1][..],
        &[1, 15, 1, 4, 18, 1, 3, 3, 26, 17, 0, 3, 2],
    ]
    .iter()
    .enumerate()
    {
        fs::write(choices.join(format!("seed-{i}")), seed).unwrap();
    }
}

/// The token text inside each `network! { .. }` of `text`, found by the Rust lexer; for
/// Markdown, in each fenced block that lexes.
fn invocation_bodies(text: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    for block in text.split("```") {
        if let Ok(tokens) = block.parse::<proc_macro2::TokenStream>() {
            collect_bodies(tokens, &mut bodies);
        }
    }
    bodies
}

/// Pushes the body of every `network! { .. }` in `tokens`, at any depth.
fn collect_bodies(tokens: proc_macro2::TokenStream, bodies: &mut Vec<String>) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        let TokenTree::Group(group) = token else {
            continue;
        };
        let is_invocation = i >= 2
            && matches!(
                (&tokens[i - 2], &tokens[i - 1]),
                (TokenTree::Ident(name), TokenTree::Punct(bang))
                    if name == "network" && bang.as_char() == '!'
            );
        if is_invocation {
            bodies.push(group.stream().to_string());
        } else {
            collect_bodies(group.stream(), bodies);
        }
    }
}
