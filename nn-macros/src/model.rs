//! The checked model of a network: sizes resolved and chained, parameters named.
//!
//! Code generation reads only this: everything in it has been validated, so the generator
//! cannot meet a malformed layer.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};
use syn::{Attribute, Visibility};

use crate::layers::LayerKind;

/// A valid network declaration.
pub struct Network {
    /// The user's attributes and doc comments.
    pub attrs: Vec<Attribute>,
    /// The struct's visibility.
    pub vis: Visibility,
    /// The struct's name.
    pub ident: Ident,
    /// The scalar type every parameter and activation has.
    pub scalar: Scalar,
    /// The layers in order.
    pub layers: Vec<Layer>,
    /// Sizes that meet a nested network's and can only be compared by the compiler.
    pub size_checks: Vec<SizeCheck>,
    /// Where the network's input size is written (the first `in_features`), and its output
    /// size (the last `out_features`): the generated signatures carry these spans, so that a
    /// call with a batch of the wrong shape points the user at the size it was checked against.
    pub io_spans: (proc_macro2::Span, proc_macro2::Span),
}

/// The scalar type of a network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scalar {
    /// `f32`, the default.
    F32,
    /// `f64`, chosen with `struct Name: f64`.
    F64,
}

/// A number of features: known to the macro, or a nested network's, known to the compiler.
#[derive(Clone, Debug, PartialEq)]
pub enum Size {
    /// A literal size.
    Known(usize),
    /// `IN` or `OUT` of a nested network, by its type name.
    Of(Ident, Port),
}

/// Which end of a nested network a size belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// Its input.
    In,
    /// Its output.
    Out,
}

/// A size the compiler must confirm: a nested network's size against a neighbour's.
pub struct SizeCheck {
    /// The size the chain carries at that point.
    pub actual: Size,
    /// The size the layer there declares.
    pub declared: Size,
    /// The error message, in pieces: text, and sizes only the compiler knows.
    pub message: Vec<Part>,
    /// Where the error goes.
    pub span: proc_macro2::Span,
}

/// A piece of an error message the compiler finishes.
pub enum Part {
    /// Text known now.
    Text(String),
    /// A size the compiler fills in.
    Size(Size),
}

/// One checked layer.
pub struct Layer {
    /// Position in its list, as `nn.Sequential` numbers its modules.
    pub index: usize,
    /// The field prefix and `state_dict` prefix of everything inside: `1_` and `1.` for the
    /// second layer of the network, `1_0_` and `1.0.` for the first layer inside it.
    pub path: Vec<usize>,
    /// What the layer does.
    pub op: Op,
    /// Features in.
    pub input: Size,
    /// Features out.
    pub output: Size,
    /// The layer as the user wrote it, e.g. `Linear(2, 8)`, for docs.
    pub source: String,
}

/// What a layer does.
pub enum Op {
    /// A kind from the layer table, with its numeric arguments (defaults filled in).
    Table(&'static LayerKind, Vec<f64>),
    /// A network declared elsewhere with `network!`, used as one layer.
    Nested(Ident),
    /// `y = x + f(x)` for the chain `f` of inner layers.
    Residual(Vec<Layer>),
}

impl Scalar {
    /// The type's tokens.
    pub fn tokens(self) -> TokenStream {
        match self {
            Scalar::F32 => quote!(f32),
            Scalar::F64 => quote!(f64),
        }
    }
}

impl Size {
    /// The size as a const generic argument: `8` or `{ <Encoder as Network>::OUT }`.
    pub fn tokens(&self) -> TokenStream {
        match self {
            Size::Known(n) => {
                let n = Literal::usize_unsuffixed(*n);
                quote!(#n)
            }
            Size::Of(net, port) => {
                let port = port.ident();
                quote!({ <#net as ::nn_runtime::__private::Network>::#port })
            }
        }
    }

    /// The size for docs: `8` or `` `Encoder::OUT` ``.
    pub fn describe(&self) -> String {
        match self {
            Size::Known(n) => n.to_string(),
            Size::Of(net, port) => format!("`{net}::{}`", port.ident()),
        }
    }
}

impl Port {
    fn ident(self) -> Ident {
        match self {
            Port::In => format_ident!("IN"),
            Port::Out => format_ident!("OUT"),
        }
    }
}

impl Network {
    /// Features the network takes.
    pub fn input(&self) -> &Size {
        &self.layers[0].input
    }

    /// Features the network produces.
    pub fn output(&self) -> &Size {
        &self.layers[self.layers.len() - 1].output
    }

    /// The name of the generated gradient struct.
    pub fn grads_ident(&self) -> Ident {
        format_ident!("{}Grads", self.ident)
    }

    /// Every layer with parameters, nested ones included, in declaration order.
    pub fn param_layers(&self) -> Vec<&Layer> {
        let mut found = Vec::new();
        collect_param_layers(&self.layers, &mut found);
        found
    }
}

impl Network {
    /// Whether another network is one of the layers (possibly inside a residual block).
    pub fn nests_networks(&self) -> bool {
        self.param_layers()
            .iter()
            .any(|layer| matches!(layer.op, Op::Nested(_)))
    }
}

fn collect_param_layers<'a>(layers: &'a [Layer], found: &mut Vec<&'a Layer>) {
    for layer in layers {
        match &layer.op {
            Op::Residual(inner) => collect_param_layers(inner, found),
            Op::Table(kind, _) if kind.params.is_none() => {}
            _ => found.push(layer),
        }
    }
}

/// Whether any layer in `layers` has parameters.
pub fn has_params(layers: &[Layer]) -> bool {
    layers.iter().any(Layer::has_params)
}

impl Layer {
    /// Whether this layer (or anything inside it) has parameters.
    pub fn has_params(&self) -> bool {
        match &self.op {
            Op::Table(kind, _) => kind.params.is_some(),
            Op::Nested(_) => true,
            Op::Residual(inner) => has_params(inner),
        }
    }

    /// The field holding this layer's parameters: `l0` for `net[0]`, `l1_0` for `net[1][0]`.
    pub fn field(&self) -> Ident {
        let parts: Vec<String> = self.path.iter().map(usize::to_string).collect();
        format_ident!("l{}", parts.join("_"))
    }

    /// The `state_dict` prefix of this layer's tensors: `0` for `net[0]`, `1.0` for `net[1][0]`.
    pub fn state_dict_prefix(&self) -> String {
        let parts: Vec<String> = self.path.iter().map(usize::to_string).collect();
        parts.join(".")
    }

    /// The learned scalars in this layer, as a `usize` expression.
    pub fn param_count(&self) -> TokenStream {
        match &self.op {
            Op::Table(kind, _) => match (kind.params, &self.input, &self.output) {
                (Some(spec), Size::Known(i), Size::Known(o)) => {
                    let n = Literal::usize_unsuffixed((spec.count)(*i, *o));
                    quote!(#n)
                }
                (Some(spec), input, output) => {
                    let ty = (spec.ty)(&quote!(f32), &input.tokens(), &output.tokens());
                    quote!(<#ty>::PARAMS)
                }
                (None, ..) => quote!(0),
            },
            Op::Nested(net) => quote!(<#net as ::nn_runtime::__private::Network>::PARAMS),
            Op::Residual(inner) => sum(inner.iter().map(Layer::param_count)),
        }
    }
}

/// `a + b + ...` of `usize` expressions, folding literals; `0` when empty.
pub fn sum(terms: impl Iterator<Item = TokenStream>) -> TokenStream {
    let mut known = 0usize;
    let mut symbolic = Vec::new();
    for term in terms {
        match term.to_string().parse::<usize>() {
            Ok(n) => known += n,
            Err(_) => symbolic.push(term),
        }
    }
    let literal = Literal::usize_unsuffixed(known);
    match (known, symbolic.as_slice()) {
        (_, []) => quote!(#literal),
        (0, [first, rest @ ..]) => quote!(#first #(+ #rest)*),
        (_, all) => quote!(#literal #(+ #all)*),
    }
}
