//! The runtime is built in floors (see the crate documentation): each module uses only its own
//! floor and the floors below it. This test reads the source tree, assigns every file to a
//! floor, and fails on any `crate::` path (in a `use` or inline, `$crate::` in macros too)
//! that leads to a higher floor: so an import upwards, and with it any cycle between floors,
//! is a test failure rather than a slow drift back to one flat room.
//!
//! Comments are not read: a documentation link creates no dependency.

use std::path::{Path, PathBuf};

/// The floors, bottom up, each with the files that make it (paths below `src`, a trailing `/`
/// for a whole folder) and the names that lead to it from `crate::` (its modules, and what the
/// crate root re-exports from it).
const FLOORS: &[(&str, &[&str], &[&str])] = &[
    // Dependencies the crate root re-exports, below everything of ours.
    ("dependencies", &[], &["nalgebra"]),
    ("simd", &["simd/"], &["simd"]),
    ("real", &["real.rs"], &["real", "Real"]),
    (
        "layer",
        &["layer/"],
        &[
            "layer",
            "heap",
            "init",
            "tensors",
            "Linear",
            "PRelu",
            "Tensors",
            "FlatTensors",
            "Gru",
            "Lstm",
            "Rnn",
            "CellLayer",
            "HiddenState",
            "LstmState",
            "CausalConv1d",
            "ConvState",
            "Conv2d",
            "Conv1d",
            "BatchNorm",
            "BnStats",
            "DropoutKey",
            "LayerNorm",
        ],
    ),
    (
        "net",
        &["net.rs"],
        &[
            "net",
            "Network",
            "__nested_impl",
            "__zeros",
            "__constructors",
            "__if_std",
            "__network_consts",
            "__freeze_methods",
            "LayerRef",
            "UnknownLayer",
        ],
    ),
    (
        "loss",
        &["loss.rs"],
        &[
            "loss",
            "Loss",
            "Mse",
            "CrossEntropy",
            "BceWithLogits",
            "Hinge",
            "one_hot",
        ],
    ),
    (
        "optim",
        &["optim/", "clip.rs", "lr_scheduler.rs"],
        &[
            "optim",
            "Optimizer",
            "Adam",
            "AdamW",
            "RmsProp",
            "Sgd",
            "clip",
            "lr_scheduler",
        ],
    ),
    (
        "io",
        &["weights.rs", "weights/", "data.rs"],
        &["weights", "data"],
    ),
    ("root", &["lib.rs"], &["prelude", "__private"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, as paths relative to `root` with `/` separators.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("read src").path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("below src");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The floor (index into [`FLOORS`]) of a file below `src`.
fn floor_of_file(file: &str) -> Option<usize> {
    FLOORS.iter().position(|(_, files, _)| {
        files.iter().any(|f| match f.strip_suffix('/') {
            Some(folder) => file.starts_with(&format!("{folder}/")),
            None => file == *f,
        })
    })
}

/// The floor a `crate::NAME` path leads to.
fn floor_of_name(name: &str) -> Option<usize> {
    FLOORS
        .iter()
        .position(|(_, _, names)| names.contains(&name))
}

/// The source with its comments blanked out (line comments, doc comments, block comments),
/// string literals kept as they are: a path in a string is not a dependency either, but none
/// of the runtime's strings holds one.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    if n == '\n' {
                        out.push('\n');
                    }
                    last = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The first segment of every `crate::` path in `code`, with its line: `crate::a::b` gives
/// `a`, `crate::{a, b::c}` gives `a` and `b`.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            // Not the tail of a longer identifier (`$crate::` is fine: `$` is not one).
            let before = rest[..at].chars().next_back();
            let after = &rest[at + "crate::".len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = after.strip_prefix('{') {
                // A group: its top-level names, up to the matching brace (on this line; the
                // formatter keeps short groups on one line, and a long one fails below).
                let mut depth = 0;
                let mut item = String::new();
                let mut closed = false;
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            closed = true;
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.push((number + 1, first_ident(&item)));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                assert!(
                    closed,
                    "line {}: a `crate::{{...}}` group over several lines; split it",
                    number + 1
                );
                if !item.trim().is_empty() {
                    found.push((number + 1, first_ident(&item)));
                }
            } else {
                found.push((number + 1, first_ident(after)));
            }
        }
    }
    found
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every dependency of every file that goes up a floor, as messages.
fn violations() -> Vec<String> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    files.sort();
    assert!(files.len() > 10, "found only {files:?} below {root:?}");
    let mut problems = Vec::new();
    for file in &files {
        let Some(floor) = floor_of_file(file) else {
            problems.push(format!("{file}: in no floor; add it to FLOORS"));
            continue;
        };
        let source = std::fs::read_to_string(root.join(file)).expect("read a source file");
        let code = strip_comments(&source);
        for (line, name) in crate_paths(&code) {
            match floor_of_name(&name) {
                None => problems.push(format!(
                    "{file}:{line}: `crate::{name}` leads to no known floor; add it to FLOORS"
                )),
                Some(target) if target > floor => problems.push(format!(
                    "{file}:{line}: `crate::{name}` goes up from floor {} to floor {}",
                    FLOORS[floor].0, FLOORS[target].0
                )),
                Some(_) => {}
            }
        }
        // `super::super::` could climb out of a folder without naming `crate::`.
        for (line, text) in code.lines().enumerate() {
            if text.contains("super::super::") {
                problems.push(format!(
                    "{file}:{}: `super::super::`: name the module by its `crate::` path",
                    line + 1
                ));
            }
        }
    }
    problems
}

#[test]
fn imports_point_down_the_floors() {
    let problems = violations();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checks themselves: an upward path, one in a group, one in a macro and one only in a
/// comment (which does not count).
#[test]
fn the_check_sees_upward_paths() {
    let code = strip_comments(
        "use crate::real::Real;\n\
         use crate::{Mse, optim::Sgd};\n\
         /// [`Adam`](crate::Adam)\n\
         let x = $crate::simd::has_avx2_fma(); // crate::weights\n",
    );
    let names: Vec<String> = crate_paths(&code).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["real", "Mse", "optim", "simd"]);
    assert_eq!(floor_of_file("simd/gemm.rs"), floor_of_name("simd"));
    assert!(floor_of_name("nalgebra") < floor_of_name("simd"));
    assert_eq!(floor_of_file("optim/adam.rs"), floor_of_name("Adam"));
    assert!(floor_of_name("optim") > floor_of_file("layer/ops.rs"));
    assert!(floor_of_name("simd") < floor_of_file("real.rs"));
}
