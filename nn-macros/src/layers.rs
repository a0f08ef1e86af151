//! The table of layer kinds: the one place that says what a layer is.
//!
//! Each entry gives a kind's name as written in `network!`, its arguments, its parameters, and
//! side by side its forward expression and its backward statements (for activations: the
//! function and its derivative, as dfdx's kernels pair them). The parser, the checker and the
//! code generator all read this table; adding an activation means adding one entry here and its
//! tests.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

/// One kind of layer.
pub struct LayerKind {
    /// The name written in `network!`, as PyTorch spells the module (`ReLU`, `Linear`).
    pub name: &'static str,
    /// The PyTorch module this layer equals, for docs and messages.
    pub torch: &'static str,
    /// The arguments in parentheses, in order.
    pub args: &'static [ArgSpec],
    /// The learned parameters, if any.
    pub params: Option<&'static ParamSpec>,
    /// An expression computing the layer's output (an `R x B` matrix) from its input.
    pub forward: fn(&Site) -> TokenStream,
    /// Statements applying the chain rule through the layer: the gradient of its parameters
    /// and, where `Site::grad_input` is set, the gradient passed to the layer below. Where
    /// `Site::sgd_rate` is set, a kind with parameters updates them in place instead of
    /// storing their gradient (after taking the gradient for the layer below from them).
    pub backward: fn(&Site) -> TokenStream,
    /// Floating-point operations per sample, for the cost consts.
    pub cost: Cost,
}

/// A layer's floating-point operations per sample. The convention: a multiply-add is 2, any
/// other arithmetic operation, comparison or elementary function (`exp`, `tanh`) is 1.
pub struct Cost {
    /// The forward pass.
    pub forward: Flops,
    /// The gradient of the parameters.
    pub backward_params: Flops,
    /// The gradient passed to the layer below.
    pub backward_input: Flops,
}

/// Operations as `per_weight * in * out + per_output * out`.
pub struct Flops {
    /// Operations per (input, output) pair.
    pub per_weight: usize,
    /// Operations per output feature.
    pub per_output: usize,
}

/// An elementwise function costing `forward` per element, its chain-rule step `backward`.
const fn elementwise(forward: usize, backward: usize) -> Cost {
    Cost {
        forward: Flops {
            per_weight: 0,
            per_output: forward,
        },
        backward_params: Flops {
            per_weight: 0,
            per_output: 0,
        },
        backward_input: Flops {
            per_weight: 0,
            per_output: backward,
        },
    }
}

/// One argument of a layer kind.
pub struct ArgSpec {
    /// The argument's name, as PyTorch names it.
    pub name: &'static str,
    /// What values it takes.
    pub kind: ArgKind,
}

/// The values an argument takes.
pub enum ArgKind {
    /// A number of features: a whole number of at least 1. A kind whose first two arguments are
    /// sizes maps `in` features to `out`; every other kind keeps its input's size.
    Size,
    /// A finite real number, with PyTorch's default when omitted.
    Number {
        /// The value used when the argument is left out, if it may be.
        default: Option<f64>,
    },
}

/// The learned parameters of a kind: a runtime type holding tensors by PyTorch's names.
pub struct ParamSpec {
    /// The runtime type, generic over scalar, in and out sizes, that holds the parameters.
    /// Its type is expected to have `zeros()`, `PARAMS` and public tensor fields.
    pub ty: fn(scalar: &TokenStream, input: &TokenStream, output: &TokenStream) -> TokenStream,
    /// Its tensor fields, in the order the optimizer and `state_dict` see them.
    pub tensors: &'static [&'static str],
    /// Number of scalars for the given sizes.
    pub count: fn(input: usize, output: usize) -> usize,
}

/// Everything the generator knows about one layer in one network, handed to the table's
/// forward and backward functions.
pub struct Site {
    /// The scalar type, `f32` or `f64`.
    pub scalar: TokenStream,
    /// The variable holding the layer's input matrix (or a reference to it), for method calls.
    pub input: Ident,
    /// A reference to the layer's input matrix, for function arguments.
    pub input_ref: TokenStream,
    /// The variable holding the layer's output.
    pub output: Ident,
    /// The variable holding the gradient of the loss with respect to the output.
    pub grad_output: Ident,
    /// The variable to bind the gradient with respect to the input to, when a layer below
    /// needs it (never for the first layer with parameters: the chain rule stops there).
    pub grad_input: Option<Ident>,
    /// The place of this layer's parameters (`self.l0`).
    pub param: TokenStream,
    /// The place of this layer's parameter gradients (`grads.l0`).
    pub grad: TokenStream,
    /// In `train_step` with a plain SGD optimizer: the learning rate, an expression. The
    /// parameters are then stepped in place (`p -= rate * gradient`) and `grad` is not there.
    pub sgd_rate: Option<TokenStream>,
    /// The numeric arguments, defaults filled in, in the order of `LayerKind::args`.
    pub numbers: Vec<f64>,
}

impl Site {
    /// `value` as a literal of the network's scalar type.
    pub fn lit(&self, value: f64) -> TokenStream {
        let lit = if self.scalar.to_string() == "f64" {
            Literal::f64_suffixed(value)
        } else {
            Literal::f32_suffixed(value as f32)
        };
        quote!(#lit)
    }

    /// The output of an elementwise function `f(x)` of the input.
    fn map(&self, f: impl Fn(&TokenStream) -> TokenStream) -> TokenStream {
        let input = &self.input;
        let body = f(&quote!(x));
        quote!(#input.map(|x| #body))
    }

    /// The chain rule through an elementwise function whose derivative is `d(x)`, a function of
    /// the input `x`: `dx = dy * f'(x)`.
    fn chain_on_input(&self, d: impl Fn(&TokenStream) -> TokenStream) -> TokenStream {
        let Some(grad_input) = &self.grad_input else {
            return TokenStream::new();
        };
        let (grad_output, input) = (&self.grad_output, &self.input_ref);
        let derivative = d(&quote!(x));
        quote!(let #grad_input = #grad_output.zip_map(#input, |g, x| g * (#derivative));)
    }

    /// The chain rule through an elementwise function whose derivative is `d(y)`, a function of
    /// its output `y` (cheaper where the function is costly, as sigmoid and tanh are).
    fn chain_on_output(&self, d: impl Fn(&TokenStream) -> TokenStream) -> TokenStream {
        let Some(grad_input) = &self.grad_input else {
            return TokenStream::new();
        };
        let (grad_output, output) = (&self.grad_output, &self.output);
        let derivative = d(&quote!(y));
        quote!(let #grad_input = #grad_output.zip_map(&#output, |g, y| g * (#derivative));)
    }
}

const SIZE_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "in_features",
        kind: ArgKind::Size,
    },
    ArgSpec {
        name: "out_features",
        kind: ArgKind::Size,
    },
];

/// `nn.Linear`'s weight `[out, in]` and bias `[out]`.
const LINEAR_PARAMS: ParamSpec = ParamSpec {
    ty: |scalar, input, output| quote!(::nn_runtime::__private::Linear<#scalar, #input, #output>),
    tensors: &["weight", "bias"],
    count: |input, output| output * input + output,
};

/// Every layer kind `network!` knows.
pub const KINDS: &[LayerKind] = &[
    LayerKind {
        name: "Linear",
        torch: "nn.Linear(in_features, out_features)",
        args: SIZE_ARGS,
        params: Some(&LINEAR_PARAMS),
        // z = W x + b
        forward: |s| {
            let (param, input) = (&s.param, &s.input_ref);
            quote!(::nn_runtime::__private::linear_forward(&#param, #input))
        },
        // dW = dz x^T, db = sum_b dz, dx = W^T dz (only where a layer below needs it)
        backward: |s| {
            let (param, grad, input, dz) = (&s.param, &s.grad, &s.input_ref, &s.grad_output);
            match (&s.grad_input, &s.sgd_rate) {
                (Some(dx), None) => quote!(
                    let #dx = ::nn_runtime::__private::linear_backward(&#param, #input, &#dz, &mut #grad);
                ),
                (None, None) => quote!(
                    ::nn_runtime::__private::linear_backward_params(#input, &#dz, &mut #grad);
                ),
                (Some(dx), Some(rate)) => quote!(
                    let #dx = ::nn_runtime::__private::linear_backward_sgd(&mut #param, #input, &#dz, #rate);
                ),
                (None, Some(rate)) => quote!(
                    ::nn_runtime::__private::linear_update_sgd(&mut #param, #input, &#dz, #rate);
                ),
            }
        },
        cost: Cost {
            // z = W x + b: a multiply-add per weight (the bias is the first add).
            forward: Flops {
                per_weight: 2,
                per_output: 0,
            },
            // dW = dz x^T and db = sum of dz.
            backward_params: Flops {
                per_weight: 2,
                per_output: 1,
            },
            // dx = W^T dz.
            backward_input: Flops {
                per_weight: 2,
                per_output: 0,
            },
        },
    },
    LayerKind {
        name: "ReLU",
        torch: "nn.ReLU()",
        args: &[],
        params: None,
        // max(x, 0); derivative 1 where x > 0, else 0 (PyTorch's choice at 0)
        forward: |s| {
            let zero = s.lit(0.0);
            s.map(|x| quote!(if #x > #zero { #x } else { #zero }))
        },
        backward: |s| {
            let (one, zero) = (s.lit(1.0), s.lit(0.0));
            s.chain_on_input(|x| quote!(if #x > #zero { #one } else { #zero }))
        },
        // a comparison; a comparison and a multiply
        cost: elementwise(1, 2),
    },
    LayerKind {
        name: "LeakyReLU",
        torch: "nn.LeakyReLU(negative_slope=0.01)",
        args: &[ArgSpec {
            name: "negative_slope",
            kind: ArgKind::Number {
                default: Some(0.01),
            },
        }],
        params: None,
        // x where x > 0, else slope * x; derivative 1 or slope
        forward: |s| {
            let (zero, slope) = (s.lit(0.0), s.lit(s.numbers[0]));
            s.map(|x| quote!(if #x > #zero { #x } else { #slope * #x }))
        },
        backward: |s| {
            let (zero, one, slope) = (s.lit(0.0), s.lit(1.0), s.lit(s.numbers[0]));
            s.chain_on_input(|x| quote!(if #x > #zero { #one } else { #slope }))
        },
        // a comparison and a multiply; a comparison and a multiply
        cost: elementwise(2, 2),
    },
    LayerKind {
        name: "Sigmoid",
        torch: "nn.Sigmoid()",
        args: &[],
        params: None,
        // 1 / (1 + e^-x); derivative y (1 - y)
        forward: |s| {
            let one = s.lit(1.0);
            s.map(|x| quote!(#one / (#one + (-#x).exp())))
        },
        backward: |s| {
            let one = s.lit(1.0);
            s.chain_on_output(|y| quote!(#y * (#one - #y)))
        },
        // negate, exp, add, divide; subtract and two multiplies
        cost: elementwise(4, 3),
    },
    LayerKind {
        name: "Tanh",
        torch: "nn.Tanh()",
        args: &[],
        params: None,
        // tanh x; derivative 1 - y^2
        forward: |s| {
            let scalar = &s.scalar;
            s.map(|x| quote!(<#scalar as ::nn_runtime::__private::Real>::fast_tanh(#x)))
        },
        backward: |s| {
            let one = s.lit(1.0);
            s.chain_on_output(|y| quote!(#one - #y * #y))
        },
        // tanh; a multiply, a subtract and a multiply
        cost: elementwise(1, 3),
    },
    LayerKind {
        name: "Identity",
        torch: "nn.Identity()",
        args: &[],
        params: None,
        // x; derivative 1, so the gradient passes unchanged
        forward: |s| {
            let input = &s.input_ref;
            quote!(::core::clone::Clone::clone(#input))
        },
        backward: |s| match &s.grad_input {
            Some(dx) => {
                let dy = &s.grad_output;
                quote!(let #dx = #dy;)
            }
            None => TokenStream::new(),
        },
        // nothing
        cost: elementwise(0, 0),
    },
];

/// The kind named `name`, if there is one.
pub fn lookup(name: &str) -> Option<&'static LayerKind> {
    KINDS.iter().find(|kind| kind.name == name)
}

impl LayerKind {
    /// Whether this kind maps `in` features to `out` (its first two arguments are sizes) rather
    /// than keeping its input's size.
    pub fn resizes(&self) -> bool {
        matches!(
            self.args,
            [
                ArgSpec {
                    kind: ArgKind::Size,
                    ..
                },
                ArgSpec {
                    kind: ArgKind::Size,
                    ..
                },
                ..
            ]
        )
    }

    /// How many arguments must be written (those without a default).
    pub fn required_args(&self) -> usize {
        self.args
            .iter()
            .filter(|a| !matches!(a.kind, ArgKind::Number { default: Some(_) }))
            .count()
    }

    /// The argument list as a user would write it, e.g. `Linear(in_features, out_features)`.
    pub fn signature(&self) -> String {
        if self.args.is_empty() {
            return self.name.to_string();
        }
        let names: Vec<&str> = self.args.iter().map(|a| a.name).collect();
        format!("{}({})", self.name, names.join(", "))
    }
}
