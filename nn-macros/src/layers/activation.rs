//! Elementwise activations: each an expression whose derivative the macro derives.
//!
//! The builtins are PyTorch's activations under torch's names, arguments and defaults, each
//! written below in the expression language of `crate::expr` (the same language a user writes
//! a closure in), so that every derivative is derived, none typed in. Where torch has a
//! numerically stable form (softplus, log-sigmoid) the definition is that form; where torch
//! defines a kinked function's gradient at the kink, the definition's branches say the same
//! (`Hardtanh` takes its flat branches at the bounds, as torch's gradient is 0 there).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ExprClosure;

use super::{ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Site, Value};
use crate::expr::{self, Compiled};
use crate::model::{Count, Layer};

/// A builtin: name, arguments with torch's defaults, and its definition (which may depend on
/// a string argument, as `GELU`'s on `approximate`).
macro_rules! builtin {
    ($name:literal, [$($arg:literal = $default:expr),*], $source:expr) => {
        Entry {
            name: $name,
            args: &[$(ArgSpec { name: $arg, kind: ArgKind::Number { default: Some($default) } }),*],
            build: |args| build($name, &[$($arg),*], &args, $source),
        }
    };
}

// Written so that NaN takes the last branch and propagates, as torch's `relu(nan)` is NaN
// (`x > 0 ? x : 0` would turn NaN into 0, hiding a fault from a control loop); the gradient
// at 0 is still 0, torch's convention. It compiles to one `max(0, x)` instruction either way.
const RELU: Entry<'static> = builtin!("ReLU", [], "|x| if x <= 0.0 { 0.0 } else { x }");
const LEAKY_RELU: Entry<'static> = builtin!(
    "LeakyReLU",
    ["negative_slope" = 0.01],
    "|x| if x > 0.0 { x } else { negative_slope * x }"
);
const SIGMOID: Entry<'static> = builtin!("Sigmoid", [], "|x| sigmoid(x)");
const TANH: Entry<'static> = builtin!("Tanh", [], "|x| tanh(x)");
const IDENTITY: Entry<'static> = builtin!("Identity", [], "|x| x");
// torch: `x > 0 ? x : alpha * expm1(x)`, gradient `alpha * exp(x)` at and below 0.
const ELU: Entry<'static> = builtin!(
    "ELU",
    ["alpha" = 1.0],
    "|x| if x > 0.0 { x } else { alpha * exp_m1(x) }"
);
const SELU: Entry<'static> = builtin!(
    "SELU",
    [],
    "|x| if x > 0.0 { 1.0507009873554804934193349852946 * x } \
     else { 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717 * exp_m1(x) }"
);
const CELU: Entry<'static> = builtin!(
    "CELU",
    ["alpha" = 1.0],
    "|x| if x > 0.0 { x } else { alpha * exp_m1(x / alpha) }"
);
const SILU: Entry<'static> = builtin!("SiLU", [], "|x| x * sigmoid(x)");
// torch: `x * tanh(softplus(x))`, softplus without a threshold.
const MISH: Entry<'static> = builtin!("Mish", [], "|x| x * tanh(softplus(x))");
// torch: linear above the threshold, `log1p(exp(beta x)) / beta` below it.
const SOFTPLUS: Entry<'static> = builtin!(
    "Softplus",
    ["beta" = 1.0, "threshold" = 20.0],
    "|x| if beta * x > threshold { x } else { ln_1p(exp(beta * x)) / beta }"
);
const SOFTSIGN: Entry<'static> = builtin!("Softsign", [], "|x| x / (1.0 + abs(x))");
// torch's gradient is 0 at both bounds: the flat branches take them.
const HARDTANH: Entry<'static> = builtin!(
    "Hardtanh",
    ["min_val" = -1.0, "max_val" = 1.0],
    "|x| if x <= min_val { min_val } else if x >= max_val { max_val } else { x }"
);
const RELU6: Entry<'static> = builtin!(
    "ReLU6",
    [],
    "|x| if x <= 0.0 { 0.0 } else if x >= 6.0 { 6.0 } else { x }"
);
// torch's gradient is 1/6 strictly inside (-3, 3), 0 elsewhere.
const HARDSIGMOID: Entry<'static> = builtin!(
    "Hardsigmoid",
    [],
    "|x| if x <= -3.0 { 0.0 } else if x >= 3.0 { 1.0 } else { x / 6.0 + 0.5 }"
);
// torch's gradient (measured, 2.15): 0 up to -3, `x / 3 + 1/2` strictly inside, 1 from 3 on.
const HARDSWISH: Entry<'static> = builtin!(
    "Hardswish",
    [],
    "|x| if x <= -3.0 { 0.0 } else if x < 3.0 { x * (x + 3.0) / 6.0 } else { x }"
);
// torch's stable form: `min(x, 0) - log1p(exp(-|x|))`.
const LOG_SIGMOID: Entry<'static> = builtin!(
    "LogSigmoid",
    [],
    "|x| if x < 0.0 { x - ln_1p(exp(x)) } else { -ln_1p(exp(-x)) }"
);
const TANHSHRINK: Entry<'static> = builtin!("Tanhshrink", [], "|x| x - tanh(x)");

/// `GELU(approximate = "none")`: `x Phi(x)` with the exact normal CDF, or torch's tanh form
/// `0.5 x (1 + tanh(u))`, written as the equal `x sigmoid(2u)`: far left, `1 + tanh(u)`
/// cancels to nothing in `f32` (torch's own `f32` derivative at `x = -5` is 30% off), while
/// the sigmoid keeps its relative accuracy.
const GELU: Entry<'static> = Entry {
    name: "GELU",
    args: &[ArgSpec {
        name: "approximate",
        kind: ArgKind::Choice {
            default: "none",
            choices: &["none", "tanh"],
        },
    }],
    build: |args| {
        let source = match args.first() {
            Some(Value::Str(s)) if s == "tanh" => {
                "|x| x * sigmoid(1.5957691216057308 * (x + 0.044715 * x.powi(3)))"
            }
            _ => "|x| 0.5 * x * (1.0 + erf(x * 0.7071067811865476))",
        };
        build("GELU", &["approximate"], &args, source)
    },
};

/// Every builtin elementwise activation.
pub const BUILTINS: &[Entry<'static>] = &[
    RELU,
    LEAKY_RELU,
    SIGMOID,
    TANH,
    IDENTITY,
    ELU,
    SELU,
    CELU,
    GELU,
    SILU,
    MISH,
    SOFTPLUS,
    SOFTSIGN,
    HARDTANH,
    RELU6,
    HARDSIGMOID,
    HARDSWISH,
    LOG_SIGMOID,
    TANHSHRINK,
];

/// Builds a builtin from its definition and checked arguments.
fn build(name: &str, arg_names: &[&str], args: &[Value], source: &str) -> Box<dyn Kind> {
    let constants = constants(arg_names, args);
    let torch = torch_call(name, arg_names, args);
    // The definitions above are fixed text, parsed and compiled by a unit test of each; were
    // one broken, the identity is a harmless stand-in where a panic is not allowed.
    let compiled = syn::parse_str::<ExprClosure>(source)
        .and_then(|c| expr::compile(&c, &constants, None))
        .unwrap_or_else(|_| expr::identity());
    Box::new(Activation { torch, compiled })
}

/// The numeric arguments as the definition's named constants.
fn constants(names: &[&str], args: &[Value]) -> Vec<(String, f64)> {
    names
        .iter()
        .zip(args)
        .filter_map(|(n, v)| match v {
            Value::Number(x) => Some((n.to_string(), *x)),
            _ => None,
        })
        .collect()
}

/// `nn.ELU(alpha=0.5)`, as torch prints the module.
fn torch_call(name: &str, names: &[&str], args: &[Value]) -> String {
    let written: Vec<String> = names
        .iter()
        .zip(args)
        .map(|(n, v)| match v {
            Value::Number(x) => format!("{n}={x}"),
            Value::Str(s) => format!("{n}='{s}'"),
            _ => n.to_string(),
        })
        .collect();
    format!("`nn.{name}({})`", written.join(", "))
}

/// The identity activation.
pub fn identity_kind() -> Box<dyn Kind> {
    Box::new(Activation {
        torch: "`nn.Identity()`".into(),
        compiled: expr::identity(),
    })
}

/// A user's activation: a closure written as a layer, or a named definition used by name.
pub fn user(
    closure: &ExprClosure,
    constants: &[(String, f64)],
    what: String,
) -> syn::Result<Box<dyn Kind>> {
    let compiled = expr::compile(closure, constants, None)?;
    Ok(Box::new(Activation {
        torch: what,
        compiled,
    }))
}

/// An elementwise activation, compiled.
pub struct Activation {
    /// What it is in PyTorch's terms, for docs.
    torch: String,
    compiled: Compiled,
}

impl Kind for Activation {
    fn torch(&self) -> String {
        self.torch.clone()
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (rt, input) = (s.rt, &s.input_ref);
        if self.compiled.is_identity() {
            return s.bind(quote!(::core::clone::Clone::clone(#input)));
        }
        let body = self.compiled.value_tokens(s.scalar);
        let x = self.compiled.variable(expr::Var::X, false);
        s.bind(quote!(#rt::map(#input, |#x| #body)))
    }

    // dx = dy * f'(x), or dy * f'(y) where the derivative is written in terms of the output.
    fn backward(&self, s: &Site) -> TokenStream {
        let Some(dx) = &s.grad_input else {
            return TokenStream::new();
        };
        let (rt, dy) = (s.rt, &s.grad_output);
        if self.compiled.constant_derivative() == Some(1.0) {
            return quote!(let #dx = #dy;);
        }
        let d = self.compiled.derivative_tokens(s.scalar);
        let (at, var) = if self.compiled.from_output {
            (&s.output_ref, self.compiled.variable(expr::Var::Y, true))
        } else {
            (&s.input_ref, self.compiled.variable(expr::Var::X, true))
        };
        quote!(let #dx = #rt::chain(#dy, #at, |#var| #d);)
    }

    fn forward_flops(&self, layer: &Layer) -> Count {
        layer.output.count().scaled(self.compiled.cost().0)
    }

    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        let per = if pass_down { self.compiled.cost().1 } else { 0 };
        layer.output.count().scaled(per)
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let c = &self.compiled;
        let (input, output) = (&eq.input, &eq.output);
        let derivative = if c.from_output {
            format!("f'(x) = {}, y = f(x) = {output}", c.show_derivative("a"))
        } else {
            format!("f'(x) = {}", c.show_derivative("a"))
        };
        Lines {
            forward: vec![format!(
                "{output} = f({input}), f(x) = {}",
                c.show_value("a")
            )],
            backward: vec![format!("δ{input} = δ{output} ⊙ f'({input}), {derivative}")],
        }
    }
}
