//! Tests of the macro's phases as plain functions on `proc_macro2` tokens, and the reviewed
//! expansion snapshot.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Input;
use crate::errors::Errors;
use crate::model::{Count, Network, Scalar, Size};
use crate::{definitions, validate};

/// Parses and checks a declaration: its definitions, then its first network.
fn check(tokens: TokenStream) -> syn::Result<Network> {
    let input = syn::parse2::<Input>(tokens)?;
    let mut errors = Errors::default();
    let definitions = definitions::check(input.definitions, &mut errors);
    errors.finish(())?;
    let network = input.networks.into_iter().next().expect("a network");
    validate::check(network, &definitions)
}

/// Known sizes as numbers.
fn sizes(input: &Size, output: &Size) -> (usize, usize) {
    match (input, output) {
        (Size::Known(i), Size::Known(o)) => (*i, *o),
        _ => panic!("symbolic sizes {input:?} -> {output:?}"),
    }
}

/// What a layer is in PyTorch's terms, its arguments filled in.
fn torch(model: &Network, i: usize) -> String {
    model.layers[i].kind.torch()
}

/// Every error message of a declaration that must fail, in order.
fn messages(tokens: TokenStream) -> Vec<String> {
    match check(tokens) {
        Ok(_) => panic!("declaration was accepted"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// Asserts that `text` contains `needle`, showing all of `text` where it does not.
fn has(text: &str, needle: &str) {
    assert!(text.contains(needle), "no `{needle}` in:\n{text}");
}

/// Each declaration fails with an error containing its text.
fn expect_errors(cases: &[(TokenStream, &str)]) {
    for (tokens, expected) in cases {
        let errors = messages(tokens.clone());
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{tokens}: {errors:#?}"
        );
    }
}

/// The whole expansion, pretty-printed.
fn pretty(tokens: TokenStream) -> String {
    let file: syn::File =
        syn::parse2(crate::front::expand(tokens)).expect("expansion parses as Rust");
    prettyplease::unparse(&file)
}

#[test]
fn parses_the_seed_network() {
    let model = check(quote!(pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) })).unwrap();
    assert_eq!(model.ident, "Xor");
    assert_eq!(model.scalar, Scalar::F32);
    assert_eq!(sizes(model.input(), model.output()), (2, 1));
    let params = Count::sum(model.layers.iter().map(|l| l.param_count()));
    assert_eq!(params.value(), Some(8 * 2 + 8 + 8 + 1));
    let shapes: Vec<_> = model
        .layers
        .iter()
        .map(|l| (l.source.as_str(), sizes(&l.input, &l.output)))
        .collect();
    assert_eq!(
        shapes,
        [
            ("Linear(2, 8)", (2, 8)),
            ("ReLU", (8, 8)),
            ("Linear(8, 1)", (8, 1))
        ]
    );
    let fields: Vec<_> = model
        .param_layers()
        .iter()
        .map(|l| l.field.to_string())
        .collect();
    assert_eq!(fields, ["l0", "l2"]);
}

#[test]
fn selects_f64_and_keeps_attributes() {
    let model = check(quote!(
        /// docs
        #[allow(dead_code)]
        struct Net: f64 { Tanh, Linear(3, 4), LeakyReLU, Linear(4, 2), Sigmoid, }
    ))
    .unwrap();
    assert_eq!(model.scalar, Scalar::F64);
    assert_eq!(model.attrs.len(), 2);
    // Layers before the first Linear work on the network's input size.
    assert_eq!(
        sizes(&model.layers[0].input, &model.layers[0].output),
        (3, 3)
    );
    assert_eq!(torch(&model, 2), "`nn.LeakyReLU(negative_slope=0.01)`");
    assert_eq!(sizes(model.input(), model.output()), (3, 2));
}

#[test]
fn leaky_relu_takes_negative_and_integer_slopes() {
    let model = check(quote!(struct N { Linear(1, 1), LeakyReLU(-0.5), LeakyReLU(2) })).unwrap();
    assert_eq!(torch(&model, 1), "`nn.LeakyReLU(negative_slope=-0.5)`");
    assert_eq!(torch(&model, 2), "`nn.LeakyReLU(negative_slope=2)`");
}

#[test]
fn size_mismatch_names_the_producer() {
    let errors = messages(quote!(struct N { Linear(2, 8), ReLU, Linear(4, 1) }));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("expected 8 input features, found 4"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("`Linear(2, 8)` produces 8"),
        "{}",
        errors[0]
    );
}

#[test]
fn reports_every_mistake_at_once() {
    let errors = messages(
        quote!(struct N { Linear(2, 8), Relu_, Linear(8), Linear(3, 0), Sigmoid(1), Linear(8, 1) }),
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].contains("unknown layer `Relu_`") && errors[0].contains("did you mean `ReLU`")
    );
    assert!(errors[1].contains("`Linear` takes 2 arguments, found 1"));
    assert!(errors[2].contains("at least 1; found `0`"));
    assert!(errors[3].contains("`Sigmoid` takes no arguments"));
}

#[test]
fn rejects_malformed_lists_and_sizes() {
    let cases: &[(TokenStream, &str)] = &[
        (
            quote!(
                struct N {}
            ),
            "at least one layer",
        ),
        (
            quote!(struct N { ReLU, Tanh }),
            "at least one layer that fixes its sizes",
        ),
        (
            quote!(struct N { Linear(2, 8),, Linear(8, 1) }),
            "two commas in a row",
        ),
        (
            quote!(struct N { Linear(2, 8) Linear(8, 1) }),
            "expected `,` after `Linear(2, 8)`",
        ),
        (
            quote!(struct N { Linear(2.5, 8) }),
            "whole number of features",
        ),
        (
            quote!(struct N { Linear(-2, 8) }),
            "whole number of features",
        ),
        (
            quote!(struct N { Linear(99999999999999999999999, 8) }),
            "too large",
        ),
        (quote!(struct N { Linear(2, 8, 3) }), "takes 2 arguments"),
        (quote!(struct N { Linear(2, x) }), "found `x`"),
        (quote!(struct N { Linear[2, 8] }), "parentheses"),
        (quote!(struct N { 42 }), "expected a layer"),
        (
            quote!(struct N: f16 { Linear(2, 8) }),
            "expected `f32` or `f64`",
        ),
        (
            quote!(struct N { Linear(2, 8), LeakyReLU(1e300) }),
            "out of range for `f32`",
        ),
        (
            quote!(#[derive(Clone)] struct N { Linear(2, 8) }),
            "already derives `Clone`",
        ),
    ];
    expect_errors(cases);
}

#[test]
fn errors_at_the_end_of_a_layer_go_on_its_last_token() {
    // A layer that did not parse is the one error: no "needs at least one layer" beside it.
    let errors = messages(quote!(struct N { Linear[2, 2] }));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    // `-` with nothing after it, and a name with nothing after its colon: the error is spanned
    // on that token, not on the whole call (parsed from text, so that tokens have columns).
    for (text, column) in [
        ("struct N { Linear(2, -) }", 21),
        ("struct N { Linear(2, 2), ReLU: }", 29),
    ] {
        let tokens: TokenStream = text.parse().expect("tokens");
        let error = check(tokens).err().expect("rejected");
        let spans: Vec<_> = error.into_iter().map(|e| e.span().start().column).collect();
        assert_eq!(spans, [column], "{text}");
    }
}

#[test]
fn rejects_broken_headers() {
    for tokens in [
        quote!(pub Xor { Linear(2, 8) }),
        quote!(struct { Linear(2, 8) }),
        quote!(struct N Linear),
    ] {
        assert!(syn::parse2::<Input>(tokens.clone()).is_err(), "{tokens}");
    }
}

#[test]
fn closest_suggests_only_near_names() {
    let known = ["Linear", "ReLU", "Tanh", "Sigmoid"];
    assert_eq!(crate::layers::closest("relu", &known), Some("ReLU"));
    assert_eq!(crate::layers::closest("Lineer", &known), Some("Linear"));
    assert_eq!(crate::layers::closest("Conv2d", &known), None);
}

#[test]
fn errors_come_with_a_stub_of_the_struct() {
    let out =
        crate::front::expand(quote!(pub struct Broken { Linear(2, 8), Linear(4, 1) })).to_string();
    has(&out, "compile_error");
    has(&out, "pub struct Broken");
}

#[test]
fn backward_skips_the_input_gradient_of_the_first_layer() {
    let code = pretty(quote!(struct N { Tanh, Linear(2, 3), Sigmoid, Linear(3, 1) }));
    let backward = section(&code, "fn __backward<", "fn __backward_sgd");
    // Above the first Linear, the chain rule goes on while something below trains.
    has(backward, "if __INPUT || __first < 2usize");
    has(backward, "let d2 = __nn::chain(d3, x3");
    // Without the input's gradient (`gradients`), the first Linear stops the chain rule: no
    // gradient ever reaches the input or the Tanh in front of it.
    let params = backward
        .find("linear_backward_params(x1, &d2, &mut grads.l1)")
        .expect("the first Linear's parameters alone");
    let branch = &backward[backward[..params].rfind("} else {").expect("else")..params];
    assert!(
        !branch.contains("let d1") && !branch.contains("let d0"),
        "{branch}"
    );
    // A network nesting this one does need the input's gradient: its backward goes on to d0.
    let (_, with_input) = backward.split_at(backward.find("if __INPUT {").expect("input"));
    has(with_input, "let d1 = __nn::linear_backward(");
    has(with_input, "let d0 = __nn::chain(d1, x1");
    let gradients = section(&code, "pub fn gradients_into<", "pub fn train_step");
    has(gradients, "__backward::<__B, false, true>");
}

#[test]
fn residual_blocks_add_both_paths() {
    let code =
        pretty(quote!(struct N { Linear(2, 4), Residual(Linear(4, 4), ReLU), Linear(4, 1) }));
    let forward = section(&code, "fn __forward<", "fn __backward<");
    // Forward: y = x + f(x) on the block's input x1, every activation cached.
    has(forward, "let x1_0 = &x1;");
    has(forward, "let x2 = x1_2 + x1_0;");
    has(forward, "(&x1, &x1_1, &x1_2, &x2, &x3)");
    // Backward: the skip path's gradient is added to the block's.
    let backward = section(&code, "fn __backward<", "fn __backward_sgd");
    has(backward, "let d1_2 = d2;");
    has(backward, "let d1 = d1_0 + &d2;");
    has(
        &code,
        "pub l1_0: ::nn_runtime::__private::Linear<f32, 4, 4>",
    );
}

#[test]
fn nested_networks_are_fields_and_calls() {
    let code = pretty(quote!(struct Big { Encoder, ReLU, Linear(16, 4) }));
    has(&code, "pub l0: Encoder,");
    has(
        &code,
        "pub l0: <Encoder as ::nn_runtime::__private::Network>::Grads,",
    );
    let forward = section(&code, "fn __forward<", "fn __backward<");
    has(forward, ">>::nested_forward(&this.l0, x0);");
    let backward = section(&code, "fn __backward<", "impl BigGrads");
    has(
        backward,
        ">>::nested_backward(&self.l0, x0, &d1, &mut grads.l0);",
    );
    // A nested network stores its gradients, so SGD is not fused into the backward pass.
    assert!(!code.contains("fn __backward_sgd"), "{code}");
    // The Linear after it takes the nested network's size in its type, and the compiler checks
    // it against the declared 16 with a message in words.
    let compact: String = code.split_whitespace().collect();
    assert!(
        compact.contains("Linear<f32,{<Encoderas::nn_runtime::__private::Network>::OUT},4"),
        "{code}"
    );
    assert!(
        compact.contains("{<Encoderas::nn_runtime::__private::Network>::OUT}==16"),
        "{code}"
    );
}

#[test]
fn named_layers_name_fields_and_state_dict_prefixes() {
    let model = check(quote!(struct N {
        encoder: Linear(2, 4), ReLU, block: Residual(Linear(4, 4), act: Tanh), head: Linear(4, 1)
    }))
    .unwrap();
    let places: Vec<(String, String)> = model
        .param_layers()
        .iter()
        .map(|l| (l.field.to_string(), l.prefix.clone()))
        .collect();
    assert_eq!(
        places,
        [
            ("encoder".into(), "encoder".into()),
            ("block_0".into(), "block.0".into()),
            ("head".into(), "head".into()),
        ]
    );
}

#[test]
fn keyword_arguments_bind_by_torch_names() {
    let model = check(quote!(struct N { Linear(in_features = 2, out_features = 3), LeakyReLU(negative_slope = 0.2) })).unwrap();
    assert_eq!(sizes(model.input(), model.output()), (2, 3));
    assert_eq!(torch(&model, 1), "`nn.LeakyReLU(negative_slope=0.2)`");
    let model = check(quote!(struct N { Linear(2, out_features = 3) })).unwrap();
    assert_eq!(sizes(model.input(), model.output()), (2, 3));
}

#[test]
fn name_and_keyword_mistakes_are_reported() {
    let cases: &[(TokenStream, &str)] = &[
        (
            quote!(struct N { a: Linear(2, 4), a: Linear(4, 1) }),
            "already named `a`",
        ),
        (
            quote!(struct N { l1: Linear(2, 4), Linear(4, 1) }),
            "unnamed layers get",
        ),
        (
            quote!(struct N { Linear(2, 2), LeakyReLU(--1) }),
            "expected a number",
        ),
        (
            quote!(struct N { b_0: Linear(2, 4), b: Residual(Linear(4, 4)) }),
            "but a layer is already named `b_0`",
        ),
        (
            quote!(struct N { b: Residual(Linear(2, 2)), b_0: Linear(2, 1) }),
            "`b_0` is the field of an unnamed layer",
        ),
        (quote!(struct N { __x: Linear(2, 4) }), "reserved"),
        (quote!(struct __N { Linear(2, 4) }), "reserved"),
        (
            quote!(struct N { Linear(2, 4), LeakyReLU(negative_slop = 0.1) }),
            "did you mean `negative_slope`",
        ),
        (
            quote!(struct N { Linear(2, 4), LeakyReLU(0.1, negative_slope = 0.1) }),
            "given twice",
        ),
        (
            quote!(struct N { Linear(in_features = 2, 4) }),
            "positional arguments go before",
        ),
        (
            quote!(struct N { Linear(2, 4), ReLU(inplace = 1) }),
            "takes no keyword arguments",
        ),
        (
            quote!(struct N { Linear(2, 4), LeakyReLU("x") }),
            "must be a number",
        ),
    ];
    expect_errors(cases);
}

#[test]
fn residual_and_nested_mistakes_are_reported() {
    let cases: &[(TokenStream, &str)] = &[
        (
            quote!(struct N { Linear(2, 4), Residual(Linear(4, 3)) }),
            "must keep its size: it takes 4 features and its layers produce 3",
        ),
        (
            quote!(struct N { Linear(2, 4), Residual() }),
            "needs at least one layer",
        ),
        (
            quote!(struct N { Linear(2, 4), Residual(4) }),
            "`Residual` takes layers",
        ),
        (
            quote!(struct N { Linear(2, 4), Encoder(3) }),
            "takes no arguments",
        ),
        (
            quote!(struct N { Linear(2, 4), encoder }),
            "unknown layer `encoder`",
        ),
        (
            quote!(struct N { Linear(2, 4), Residual(Linear(4, 4), Relu_) }),
            "did you mean `ReLU`",
        ),
    ];
    expect_errors(cases);
}

/// The text of `code` from `start` up to `end`.
fn section<'a>(code: &'a str, start: &str, end: &str) -> &'a str {
    let from = code
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in {code}"));
    let to = code[from..].find(end).map_or(code.len(), |n| from + n);
    &code[from..to]
}

/// The XOR network's expansion, kept as a reviewed snapshot so that changes to the generated
/// code (and the derived backward pass) show in review. Run with `UPDATE_SNAPSHOTS=1` to accept
/// a change.
#[test]
fn xor_expansion_snapshot() {
    let code = pretty(quote! {
        /// The classic XOR network: 2 inputs, 8 hidden ReLU units, 1 output.
        pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
    });
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/xor.expanded.rs"
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &code).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        expected == code,
        "expansion changed; review it and rerun with UPDATE_SNAPSHOTS=1:\n{code}"
    );
}

/// SplitMix64: a fixed generator, so every run feeds the macro the same sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random source text: mostly the words of real declarations, in random order and nesting,
/// with numbers at the edges of what is valid, so that both the parser and the checker are
/// reached deeply.
fn random_tokens(rng: &mut Rng, depth: usize, out: &mut String) {
    const WORDS: &[&str] = &[
        "Linear",
        "ReLU",
        "LeakyReLU",
        "Sigmoid",
        "Tanh",
        "Identity",
        "Residual",
        "Encoder",
        "Relu_",
        "Dropout",
        "struct",
        "pub",
        "f32",
        "f64",
        "f16",
        "crate",
        "Net",
        "_",
        "r#type",
        "self",
        // Layer names and keyword arguments.
        "encoder",
        "l1",
        "__x",
        "negative_slope",
        "in_features",
        "out_features",
        "encoder: Linear(2, 8)",
        "LeakyReLU(negative_slope = 0.2)",
        "Linear(in_features = 2, 8)",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "2",
        "8",
        "16",
        "16777216",
        "16777217",
        "99999999999999999999999",
        "2.5",
        "-1",
        "-0.5",
        "1e300",
        "1e-45",
        "8u8",
        "3usize",
        "0x10",
        "1_000",
        "'c'",
        "\"str\"",
        "true",
    ];
    const PUNCT: &[&str] = &[
        ",", ",", ",", ";", ":", "-", "<", ">", "#", "!", "=", "::", ".", "&",
    ];
    let len = rng.below(12);
    for _ in 0..len {
        match rng.below(10) {
            0..=3 => out.push_str(WORDS[rng.below(WORDS.len())]),
            4 | 5 => out.push_str(NUMBERS[rng.below(NUMBERS.len())]),
            6 | 7 => out.push_str(PUNCT[rng.below(PUNCT.len())]),
            _ if depth < 4 => {
                let (open, close) = [("(", ")"), ("{", "}"), ("[", "]")][rng.below(3)];
                out.push_str(open);
                random_tokens(rng, depth + 1, out);
                out.push_str(close);
            }
            _ => out.push_str("Linear(2, 8)"),
        }
        out.push(' ');
    }
}

/// Thousands of random declarations, some shaped like real ones, through the whole macro
/// (parse, check, generate): none may panic, and every one must give tokens that parse as Rust.
#[test]
fn random_tokens_never_panic() {
    let mut rng = Rng(0x5EED);
    let mut accepted = 0;
    for case in 0..6000 {
        let mut text = String::new();
        if case % 2 == 0 {
            // Shaped like a declaration, so the layer checker is reached.
            text.push_str(["", "pub ", "/// doc\n", "#[allow(dead_code)] "][rng.below(4)]);
            text.push_str(
                ["struct N ", "struct N: f64 ", "struct N: f16 ", "struct "][rng.below(4)],
            );
            text.push('{');
            random_tokens(&mut rng, 1, &mut text);
            text.push('}');
        } else {
            random_tokens(&mut rng, 0, &mut text);
        }
        let Ok(tokens) = text.parse::<TokenStream>() else {
            continue;
        };
        let output = std::panic::catch_unwind(|| crate::front::expand(tokens));
        let output = output.unwrap_or_else(|_| panic!("the macro panicked on: {text}"));
        if !output.to_string().contains("compile_error") {
            accepted += 1;
        }
        assert!(
            syn::parse2::<syn::File>(output).is_ok(),
            "output is not Rust for: {text}"
        );
    }
    // The generator must reach valid declarations too, or only the error paths were tried.
    assert!(accepted > 0, "no random declaration was valid");
}

/// Random expression text: the language's words, numbers at the edges of `f64` and `f32`,
/// operators and groups in random order, so that the expression parser, the simplifier, the
/// differentiator and the emitter all see malformed and extreme input.
fn random_expression(rng: &mut Rng, depth: usize, out: &mut String) {
    const WORDS: &[&str] = &[
        "x", "x", "x", "y", "beta", "weight", "exp", "ln", "sqrt", "tanh", "sigmoid", "sin", "cos",
        "abs", "erf", "ln_1p", "exp_m1", "softplus", "powi", "powf", "min", "max", "atan", "log",
        "if", "else", "let", "t", "move", "return", "as", "f32",
    ];
    const NUMBERS: &[&str] = &[
        "0", "0.0", "1", "2", "3", "-1", "0.5", "1e308", "1e-320", "1e400", "3.5e38", "1e39",
        "2i32", "8u8", "'c'", "\"s\"", "true",
    ];
    const PUNCT: &[&str] = &[
        "+", "-", "*", "/", "%", ">", "<", ">=", "<=", "==", "=", ".", ",", ";", "|", "!", "&&",
    ];
    let len = 1 + rng.below(10);
    for _ in 0..len {
        match rng.below(11) {
            0..=3 => out.push_str(WORDS[rng.below(WORDS.len())]),
            4 | 5 => out.push_str(NUMBERS[rng.below(NUMBERS.len())]),
            6..=8 => out.push_str(PUNCT[rng.below(PUNCT.len())]),
            _ if depth < 5 => {
                let (open, close) = [("(", ")"), ("{", "}"), ("(", ")")][rng.below(3)];
                out.push_str(open);
                random_expression(rng, depth + 1, out);
                out.push_str(close);
            }
            _ => out.push_str("x.powi(2)"),
        }
        out.push(' ');
    }
}

/// Thousands of random activation expressions, as a closure layer and as a named definition
/// used with an overridden constant, through the whole macro: it never panics, always emits
/// Rust, and accepts some of them.
#[test]
fn random_expressions_never_panic() {
    let mut rng = Rng(0xE4_9E55);
    let mut accepted = 0;
    // Shaped like expressions that are valid, so that the valid paths are reached too.
    let shapes = [
        "x * {} + 1.0",
        "if x > {} {{ x }} else {{ 0.5 * x }}",
        "sigmoid({}) * x",
        "{}",
        "({}).powi(3) - exp(x)",
    ];
    for case in 0..4000 {
        let mut body = String::new();
        random_expression(&mut rng, 0, &mut body);
        if case % 2 == 0 {
            body = shapes[rng.below(shapes.len())].replace("{}", &body);
        }
        let text = format!(
            "activation A(beta = 1.5) = |x| {body}; struct N {{ Linear(2, 2), |x| {body}, A(beta = 2.0) }}"
        );
        let Ok(tokens) = text.parse::<TokenStream>() else {
            continue;
        };
        let output = std::panic::catch_unwind(|| crate::front::expand(tokens));
        let output = output.unwrap_or_else(|_| panic!("the macro panicked on: {text}"));
        if !output.to_string().contains("compile_error") {
            accepted += 1;
        }
        assert!(
            syn::parse2::<syn::File>(output).is_ok(),
            "output is not Rust for: {text}"
        );
    }
    assert!(
        accepted > 20,
        "only {accepted} random expressions were valid"
    );
}

/// Declarations deep enough to overflow the stack while parsing (found by the fuzzers) are one
/// error at the token where the limit is passed; a deep but reasonable one is still accepted.
#[test]
fn declarations_too_deep_for_the_stack_are_an_error() {
    let chain = format!(
        "struct N {{ Linear(2, 2), |x| x{} }}",
        ".exp()".repeat(2000)
    );
    let nested = format!(
        "struct N {{ Linear(2, 2), {}ReLU{} }}",
        "Residual(".repeat(300),
        ")".repeat(300)
    );
    for text in [chain, nested] {
        let output = crate::front::expand(text.parse().unwrap()).to_string();
        has(&output, "declaration nested too deeply");
        assert_eq!(output.matches("compile_error").count(), 1, "{output}");
    }
    let fine = format!(
        "struct N {{ Linear(2, 2), {}ReLU{}, |x| x{} }}",
        "Residual(".repeat(8),
        ")".repeat(8),
        ".exp()".repeat(20)
    );
    let output = crate::front::expand(fine.parse().unwrap()).to_string();
    assert!(!output.contains("compile_error"), "{output}");
}
