//! The expression engine as plain functions: derivatives as the docs show them, sharing in
//! the emitted code, and the errors.

use super::{Compiled, compile};
use crate::model::Scalar;

fn compiled(source: &str, constants: &[(&str, f64)]) -> Compiled {
    let closure = syn::parse_str(source).expect("a closure");
    let constants: Vec<(String, f64)> =
        constants.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    match compile(&closure, &constants, None) {
        Ok(c) => c,
        Err(e) => panic!("{source}: {e}"),
    }
}

fn error(source: &str) -> String {
    let closure = syn::parse_str(source).expect("a closure");
    match compile(&closure, &[("beta".into(), 1.0)], None) {
        Ok(_) => panic!("{source} compiled"),
        Err(e) => e
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn derivatives_are_derived_and_simplified() {
    let cases = [
        ("|x| x * x", "2.0 * x"),
        ("|x| 3.0 * x + 1.0", "3.0"),
        (
            "|x| if x > 0.0 { x } else { 0.0 }",
            "if x > 0.0 { 1.0 } else { 0.0 }",
        ),
        ("|x| x.powi(3)", "3.0 * x.powi(2)"),
        ("|x| ln(x)", "1.0 / x"),
        ("|x| sin(x)", "cos(x)"),
        ("|x| x - tanh(x)", "tanh(x).powi(2)"),
        ("|x| exp_m1(2.0 * x)", "2.0 * exp(2.0 * x)"),
    ];
    for (source, expected) in cases {
        assert_eq!(
            compiled(source, &[]).show_derivative("a"),
            *expected,
            "{source}"
        );
    }
}

#[test]
fn derivatives_use_the_output_where_that_drops_the_input() {
    for (source, expected) in [
        ("|x| tanh(x)", "1.0 - y.powi(2)"),
        ("|x| sigmoid(x)", "y * (1.0 - y)"),
        ("|x| exp(x)", "y"),
    ] {
        let c = compiled(source, &[]);
        assert!(c.from_output, "{source}");
        assert_eq!(c.show_derivative("a"), expected, "{source}");
    }
    // The swish's derivative needs x as well: it stays in terms of x.
    assert!(!compiled("|x| x * sigmoid(x)", &[]).from_output);
}

#[test]
fn shared_subexpressions_are_computed_once() {
    let c = compiled("|x| x * sigmoid(beta * x)", &[("beta", 2.0)]);
    let code = c.derivative_tokens(Scalar::F32).to_string();
    assert_eq!(code.matches("sigmoid").count(), 1, "{code}");
    assert!(code.contains("let t"), "{code}");
    // Constants are folded: no `beta`, and 2 * x once.
    assert_eq!(code.matches("2f32 * x").count(), 1, "{code}");
}

#[test]
fn kinks_take_the_branch_the_expression_takes() {
    // ReLU'(0) = 0, as torch: the condition is `x > 0`, false at 0.
    let c = compiled("|x| if x > 0.0 { x } else { 0.0 }", &[]);
    assert_eq!(c.show_derivative("a"), "if x > 0.0 { 1.0 } else { 0.0 }");
    // max with a constant is torch's clamp: at the tie the first argument's derivative.
    let c = compiled("|x| max(x, 0.0)", &[]);
    assert_eq!(c.show_derivative("a"), "if x >= 0.0 { 1.0 } else { 0.0 }");
}

#[test]
fn mistakes_say_what_is_supported() {
    assert!(error("|x| atan(x)").contains("`atan` is not a function"));
    assert!(error("|x| log(x)").contains("the natural logarithm is `ln`"));
    assert!(error("|x| x * gamma").contains("unknown name `gamma`"));
    assert!(error("|x| x * betta").contains("did you mean `beta`?"));
    assert!(error("|x| x.powf(x)").contains("must be a constant"));
    assert!(error("|x| x.powi(2.5)").contains("whole number"));
    assert!(error("|x| if x > 0.0 { x }").contains("needs an `else`"));
    assert!(error("|x, y| x").contains("closure of one variable"));
    assert!(error("|x: f32| x").contains("without a type"));
    assert!(error("|x| x % 2.0").contains("is not supported"));
    assert!(error("|x| x > 1.0").contains("`if` condition"));
    // Every mistake, not just the first.
    let both = error("|x| atan(x) + gamma");
    assert!(both.contains("atan") && both.contains("gamma"), "{both}");
}

#[test]
fn extreme_constants_never_become_invalid_literals() {
    // 1e300 * 1e300 folds to infinity: left unfolded, and an f32 literal of 1e300 would be
    // infinite: emitted as the type's constant.
    let c = compiled("|x| 1e300 * 1e300 * x + 1e300", &[]);
    let code = c.value_tokens(Scalar::F32).to_string();
    assert!(code.contains("INFINITY"), "{code}");
    assert!(syn::parse_str::<syn::Expr>(&code).is_ok(), "{code}");
}
