//! Elementwise activations: each a function and its derivative, side by side.

use proc_macro2::TokenStream;
use quote::quote;

use super::{ArgKind, ArgSpec, Entry, Kind, Site, number};
use crate::model::{Count, Layer, Scalar};

/// How the derivative is best computed.
#[derive(Clone, Copy)]
enum Derivative {
    /// From the input `x`: `f'(x)`.
    OfInput(fn(&TokenStream, Scalar, &[f64]) -> TokenStream),
    /// From the output `y = f(x)`, where that is cheaper (sigmoid, tanh).
    OfOutput(fn(&TokenStream, Scalar, &[f64]) -> TokenStream),
    /// 1: the gradient passes unchanged.
    One,
}

/// An elementwise activation with its arguments filled in.
struct Activation {
    torch: &'static str,
    /// `f(x)`, given `x`, the scalar type and the numeric arguments.
    value: fn(&TokenStream, Scalar, &[f64]) -> Option<TokenStream>,
    derivative: Derivative,
    /// Operations per element: forward, and the chain-rule step.
    cost: (usize, usize),
    numbers: Vec<f64>,
}

/// An entry for an activation: its name, arguments, and how to build it.
macro_rules! activation {
    ($name:literal, $torch:literal, [$($arg:literal = $default:expr),*], $value:expr, $derivative:expr, $cost:expr) => {
        Entry {
            name: $name,
            args: &[$(ArgSpec { name: $arg, kind: ArgKind::Number { default: Some($default) } }),*],
            build: |args| {
                Box::new(Activation {
                    torch: $torch,
                    value: $value,
                    derivative: $derivative,
                    cost: $cost,
                    numbers: args.iter().map(number).collect(),
                })
            },
        }
    };
}

// max(x, 0); derivative 1 where x > 0, else 0 (PyTorch's choice at 0). A comparison; a
// comparison and a multiply.
pub const RELU: Entry = activation!(
    "ReLU",
    "nn.ReLU()",
    [],
    |x, t, _| {
        let zero = t.lit(0.0);
        Some(quote!(if #x > #zero { #x } else { #zero }))
    },
    Derivative::OfInput(|x, t, _| {
        let (zero, one) = (t.lit(0.0), t.lit(1.0));
        quote!(if #x > #zero { #one } else { #zero })
    }),
    (1, 2)
);

// x where x > 0, else slope * x; derivative 1 or slope. A comparison and a multiply, twice.
pub const LEAKY_RELU: Entry = activation!(
    "LeakyReLU",
    "nn.LeakyReLU(negative_slope={})",
    ["negative_slope" = 0.01],
    |x, t, n| {
        let (zero, slope) = (t.lit(0.0), t.lit(n[0]));
        Some(quote!(if #x > #zero { #x } else { #slope * #x }))
    },
    Derivative::OfInput(|x, t, n| {
        let (zero, one, slope) = (t.lit(0.0), t.lit(1.0), t.lit(n[0]));
        quote!(if #x > #zero { #one } else { #slope })
    }),
    (2, 2)
);

// 1 / (1 + e^-x); derivative y (1 - y). Negate, exp, add, divide; subtract and two multiplies.
pub const SIGMOID: Entry = activation!(
    "Sigmoid",
    "nn.Sigmoid()",
    [],
    |x, t, _| {
        let one = t.lit(1.0);
        Some(quote!(#one / (#one + (-#x).exp())))
    },
    Derivative::OfOutput(|y, t, _| {
        let one = t.lit(1.0);
        quote!(#y * (#one - #y))
    }),
    (4, 3)
);

// tanh x; derivative 1 - y^2. tanh; a multiply, a subtract and a multiply.
pub const TANH: Entry = activation!(
    "Tanh",
    "nn.Tanh()",
    [],
    |x, t, _| {
        let (rt, t) = (crate::expand::rt(), t.tokens());
        Some(quote!(<#t as #rt::Real>::fast_tanh(#x)))
    },
    Derivative::OfOutput(|y, t, _| {
        let one = t.lit(1.0);
        quote!(#one - #y * #y)
    }),
    (1, 3)
);

// x; derivative 1, so the gradient passes unchanged. Nothing to compute.
pub const IDENTITY: Entry = activation!(
    "Identity",
    "nn.Identity()",
    [],
    |_, _, _| None,
    Derivative::One,
    (0, 0)
);

impl Kind for Activation {
    fn torch(&self) -> String {
        let text = match self.numbers.first() {
            Some(n) => self.torch.replace("{}", &n.to_string()),
            None => self.torch.to_string(),
        };
        format!("`{text}`")
    }

    fn forward(&self, s: &Site) -> TokenStream {
        match (self.value)(&quote!(x), s.scalar, &self.numbers) {
            Some(body) => {
                let (rt, input) = (s.rt, &s.input_ref);
                s.bind(quote!(#rt::map(#input, |x| #body)))
            }
            None => {
                let input = &s.input_ref;
                s.bind(quote!(::core::clone::Clone::clone(#input)))
            }
        }
    }

    // dx = dy * f'(x)
    fn backward(&self, s: &Site) -> TokenStream {
        let Some(dx) = &s.grad_input else {
            return TokenStream::new();
        };
        let dy = &s.grad_output;
        let (from, var, derivative) = match self.derivative {
            Derivative::OfInput(d) => (&s.input_ref, quote!(x), d),
            Derivative::OfOutput(d) => (&s.output_ref, quote!(y), d),
            Derivative::One => return quote!(let #dx = #dy;),
        };
        let d = derivative(&var, s.scalar, &self.numbers);
        let rt = s.rt;
        quote!(let #dx = #rt::chain(#dy, #from, |#var| #d);)
    }

    fn forward_flops(&self, layer: &Layer) -> Count {
        layer.output.count().scaled(self.cost.0)
    }

    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        layer
            .output
            .count()
            .scaled(if pass_down { self.cost.1 } else { 0 })
    }
}
