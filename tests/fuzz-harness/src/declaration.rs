//! Declarations: arbitrary text through the macro's front end.

use std::str::FromStr;

use proc_macro2::TokenStream;

/// Runs `data` through the `network!` macro as a library (parse, check, generate) and checks
/// that it neither panics nor writes anything that is not Rust items.
///
/// Input that is not UTF-8, or that the Rust lexer rejects, is skipped: the compiler never
/// hands such text to a macro.
///
/// # Panics
///
/// When the macro panics, or its output does not parse as a Rust file (a generated program
/// that is not Rust is a bug; the `compile_error!` stub on a mistake is Rust).
pub fn check_declaration(data: &[u8]) {
    if let Some(tokens) = lex(data) {
        check_expansion(tokens);
    }
    // The fallback tokens remember every source text they lexed, for span locations, until
    // told to forget: without this a long fuzzing run grows without bound. Nothing that holds
    // a span outlives this point.
    proc_macro2::extra::invalidate_current_thread_spans();
}

/// `data` as tokens, if it is UTF-8 that the Rust lexer accepts.
fn lex(data: &[u8]) -> Option<TokenStream> {
    let text = std::str::from_utf8(data).ok()?;
    TokenStream::from_str(text).ok()
}

/// Expands `tokens` and checks that the output is a Rust file.
fn check_expansion(tokens: TokenStream) {
    let output = nn_macros_front::expand(tokens.clone());
    if let Err(error) = syn::parse2::<syn::File>(output.clone()) {
        panic!("the expansion of\n{tokens}\nis not Rust items ({error}):\n{output}");
    }
}

/// [`check_declaration`] on the declaration that [`declaration_from_choices`] builds from
/// `choices`: the structured fuzz target, deeper into the checker and the generator.
///
/// # Panics
///
/// As [`check_declaration`].
pub fn check_declaration_choices(choices: &[u8]) {
    check_declaration(declaration_from_choices(choices).as_bytes());
}

/// Layer kinds the structured declarations choose from, with the arguments each takes as a
/// template: `{}` is a size chosen from the input.
const LAYERS: &[&str] = &[
    "Linear({}, {})",
    "Linear({}, {}, bias = false)",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "GELU(approximate = \"tanh\")",
    "LeakyReLU(negative_slope = 0.1)",
    "ELU(alpha = 0.5)",
    "PReLU",
    "PReLU({})",
    "Softmax(dim = 1)",
    "LogSoftmax(dim = 1)",
    "LayerNorm({})",
    "BatchNorm1d({})",
    "Dropout(0.25)",
    "Unflatten(1, {}, {})",
    "Unflatten(1, {}, {}, {})",
    "Flatten",
    "Conv1d({}, {}, {})",
    "Conv1d({}, {}, {}, padding = 1)",
    "Conv2d({}, {}, {}, padding = \"same\")",
    "Conv2d({}, {}, {}, stride = 2, groups = 1)",
    "MaxPool1d({})",
    "MaxPool2d({})",
    "AvgPool2d({})",
    "AdaptiveAvgPool1d(1)",
    "AdaptiveAvgPool2d(1)",
    "BatchNorm2d({})",
    "GRU({}, {})",
    "LSTM({}, {}, num_layers = 2)",
    "RNN({}, {}, nonlinearity = \"relu\")",
    "Residual(Linear({}, {}), ReLU)",
    "Residual(Linear({}, {}), Residual(Tanh))",
    "|x| x * sigmoid(x)",
    "|x| x.powi({}) - tanh(x) / (1.0 + exp(-x))",
    "Swish",
    "Swish(beta = 2.0)",
    "Inner",
    "head: Linear({}, {})",
    "act: Softplus(beta = 2.0, threshold = 10.0)",
];

/// Sizes the structured declarations choose from: small, so that what passes the checker has
/// sizes that chain now and then, with zero and a huge one among them.
const SIZES: &[&str] = &["1", "2", "3", "4", "8", "0", "65536", "2usize", "N"];

/// Headers the structured declarations choose from.
const HEADERS: &[&str] = &[
    "pub struct Net",
    "struct Net: f64",
    "/// Docs.\n#[derive(Clone)] pub(crate) struct Net",
    "struct Net: f32",
];

/// Builds a `network!` body from `choices`: each byte picks a header, a layer kind or a size
/// from the grammar, so that most inputs are declarations the parser accepts and the checker
/// and the generator see far more of them than random text would give.
pub fn declaration_from_choices(choices: &[u8]) -> String {
    let mut bytes = choices.iter().copied();
    let mut next = move || bytes.next();
    let header = HEADERS[usize::from(next().unwrap_or(0)) % HEADERS.len()];
    let mut layers = Vec::new();
    while let Some(byte) = next() {
        let template = LAYERS[usize::from(byte) % LAYERS.len()];
        layers.push(fill(template, &mut next));
    }
    format!(
        "activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);\n\
         struct Inner {{ Linear(2, 2), Tanh }}\n\
         {header} {{ {} }}",
        layers.join(", ")
    )
}

/// Replaces each `{}` of `template` with a size chosen by the next byte.
fn fill(template: &str, next: &mut impl FnMut() -> Option<u8>) -> String {
    let mut parts = template.split("{}");
    let mut out = String::from(parts.next().unwrap_or_default());
    for part in parts {
        out.push_str(SIZES[usize::from(next().unwrap_or(0)) % SIZES.len()]);
        out.push_str(part);
    }
    out
}
