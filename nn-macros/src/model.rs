//! The checked model of a network: sizes resolved and chained, parameters named.
//!
//! Code generation reads only this: everything in it has been validated, so the generator
//! cannot meet a malformed layer. What a layer *does* is its [`Kind`], an entry of the layer
//! table; the model only says where the layer sits and what sizes meet it.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::{Attribute, Visibility};

use crate::layers::Kind;

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
    pub io_spans: (Span, Span),
    /// Weights compiled into the binary (`#[weights("file.safetensors")]`), checked against
    /// the layers.
    pub weights: Option<crate::compiled::Compiled>,
}

/// The scalar type of a network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scalar {
    /// `f32`, the default.
    F32,
    /// `f64`, chosen with `struct Name: f64`.
    F64,
}

/// The shape a sample's features have: flat (a vector, as `Linear` takes), or channels over a
/// length or an image, stored row-major channel-first in the sample's column (element
/// `(c, h, w)` at `c * H * W + h * W + w`, as torch's `x.view(N, C, H, W)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A vector of features.
    Flat,
    /// `(channels, length)`.
    Length(usize, usize),
    /// `(channels, height, width)`.
    Image(usize, usize, usize),
}

impl Shape {
    /// The shape as torch prints a sample's: `(8, 3, 3)`, or `flat`.
    pub fn describe(&self) -> String {
        match self {
            Shape::Flat => "flat".into(),
            Shape::Length(c, l) => format!("({c}, {l})"),
            Shape::Image(c, h, w) => format!("({c}, {h}, {w})"),
        }
    }

    /// The number of features, where the shape has axes.
    pub fn features(&self) -> Option<usize> {
        match self {
            Shape::Flat => None,
            Shape::Length(c, l) => Some(c * l),
            Shape::Image(c, h, w) => Some(c * h * w),
        }
    }
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

/// A `usize` expression: a known part plus terms only the compiler can evaluate (a nested
/// network's consts). Kept as data, so sums fold without printing and re-parsing tokens.
#[derive(Clone, Debug, Default)]
pub struct Count {
    /// The part the macro knows.
    pub known: usize,
    /// Terms the compiler adds.
    pub symbolic: Vec<TokenStream>,
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
    pub span: Span,
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
    /// The field holding its parameters: the user's name for it, or `l{i}` (`l1_0` for the
    /// first layer inside layer 1).
    pub field: Ident,
    /// The `state_dict` prefix of its tensors: the user's names and positions, joined by `.`.
    pub prefix: String,
    /// What the layer does: an entry of the layer table, arguments filled in.
    pub kind: Box<dyn Kind>,
    /// Features in.
    pub input: Size,
    /// Features out.
    pub output: Size,
    /// The layer as the user wrote it, e.g. `Linear(2, 8)`, for docs.
    pub source: String,
    /// The span of its kind's name, for errors about the layer as a whole.
    pub span: Span,
}

impl Scalar {
    /// The type's tokens.
    pub fn tokens(self) -> TokenStream {
        match self {
            Scalar::F32 => quote!(f32),
            Scalar::F64 => quote!(f64),
        }
    }

    /// Bytes of one scalar.
    pub fn bytes(self) -> usize {
        match self {
            Scalar::F32 => 4,
            Scalar::F64 => 8,
        }
    }

    /// `value` as a literal of this type.
    pub fn lit(self, value: f64) -> TokenStream {
        let lit = match self {
            Scalar::F64 => Literal::f64_suffixed(value),
            Scalar::F32 => Literal::f32_suffixed(value as f32),
        };
        quote!(#lit)
    }
}

impl Size {
    /// The size as a const generic argument: `8` or `{ <Encoder as Network>::OUT }`.
    pub fn tokens(&self) -> TokenStream {
        match self {
            Size::Known(n) => Literal::usize_unsuffixed(*n).into_token_stream(),
            Size::Of(net, port) => {
                // Also used in the struct definitions, outside the generated block.
                let (rt, port) = (crate::expand::rt_absolute(), port.ident());
                quote!({ <#net as #rt::Network>::#port })
            }
        }
    }

    /// The size as a count, for sums.
    pub fn count(&self) -> Count {
        match self {
            Size::Known(n) => Count::known(*n),
            other => Count::symbolic(other.tokens()),
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

impl Count {
    /// A number the macro knows.
    pub fn known(n: usize) -> Self {
        Self {
            known: n,
            symbolic: Vec::new(),
        }
    }

    /// A term only the compiler evaluates.
    pub fn symbolic(term: TokenStream) -> Self {
        Self {
            known: 0,
            symbolic: vec![term],
        }
    }

    /// The sum of some counts.
    pub fn sum(counts: impl IntoIterator<Item = Count>) -> Self {
        counts.into_iter().fold(Self::default(), |mut total, c| {
            total.known += c.known;
            total.symbolic.extend(c.symbolic);
            total
        })
    }

    /// `a * size + b`, for cost formulas linear in a size.
    pub fn scaled(&self, by: usize) -> Self {
        Self {
            known: self.known * by,
            symbolic: if by == 0 {
                Vec::new()
            } else {
                let by = Literal::usize_unsuffixed(by);
                self.symbolic.iter().map(|t| quote!(#by * #t)).collect()
            },
        }
    }

    /// The product of two sizes (a weight count), symbolic where either is.
    pub fn product(a: &Size, b: &Size) -> Self {
        match (a, b) {
            (Size::Known(a), Size::Known(b)) => Self::known(a * b),
            (a, b) => {
                let (a, b) = (a.tokens(), b.tokens());
                Self::symbolic(quote!(#a * #b))
            }
        }
    }

    /// The value, where the macro knows all of it.
    pub fn value(&self) -> Option<usize> {
        self.symbolic.is_empty().then_some(self.known)
    }
}

impl ToTokens for Count {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let known = Literal::usize_unsuffixed(self.known);
        let symbolic = &self.symbolic;
        tokens.extend(match (self.known, symbolic.as_slice()) {
            (_, []) => quote!(#known),
            (0, [first, rest @ ..]) => quote!(#first #(+ #rest)*),
            (_, all) => quote!(#known #(+ #all)*),
        });
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

    /// Every sequence layer (one that keeps a state between time steps), those inside blocks
    /// included, in declaration order: the fields of the generated `{Name}State`.
    pub fn state_layers(&self) -> Vec<&Layer> {
        let mut found = Vec::new();
        for layer in &self.layers {
            layer.collect_state_layers(self.scalar, &mut found);
        }
        found
    }

    /// Every layer, those inside blocks included.
    pub fn all_layers(&self) -> Vec<&Layer> {
        fn walk<'a>(layers: &'a [Layer], found: &mut Vec<&'a Layer>) {
            for layer in layers {
                found.push(layer);
                if let Some(inner) = layer.kind.inner() {
                    walk(inner, found);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.layers, &mut found);
        found
    }

    /// Whether training and inference differ (batch statistics, dropout).
    pub fn is_moded(&self) -> bool {
        self.all_layers().iter().any(|l| l.kind.moded())
    }

    /// Whether a layer draws dropout masks.
    pub fn drops(&self) -> bool {
        self.all_layers().iter().any(|l| l.kind.drops())
    }

    /// Whether the network steps through time: it holds a sequence layer.
    pub fn is_sequence(&self) -> bool {
        !self.state_layers().is_empty()
    }

    /// The name of the generated state struct of a sequence network.
    pub fn state_ident(&self) -> Ident {
        format_ident!("{}State", self.ident)
    }

    /// Every layer with parameters of its own, those inside blocks included, in declaration
    /// order: the fields of the network and gradient structs.
    pub fn param_layers(&self) -> Vec<&Layer> {
        let mut found = Vec::new();
        for layer in &self.layers {
            layer.collect_param_layers(&mut found);
        }
        found
    }

    /// Every layer with parameters of its own (as [`param_layers`](Self::param_layers)),
    /// each with the position of the top-level layer holding it: what freezing that layer
    /// freezes.
    pub fn param_layers_by_top(&self) -> Vec<(usize, &Layer)> {
        let mut found = Vec::new();
        for (j, layer) in self.layers.iter().enumerate() {
            let mut inner = Vec::new();
            layer.collect_param_layers(&mut inner);
            found.extend(inner.into_iter().map(|l| (j, l)));
        }
        found
    }

    /// The number of `u64` words of the frozen-layer bit set: one bit per top-level layer.
    pub fn frozen_words(&self) -> usize {
        self.layers.len().div_ceil(64).max(1)
    }
}

impl Layer {
    /// Pushes this layer, or the layers inside it, that keep a state between time steps.
    pub fn collect_state_layers<'a>(&'a self, scalar: Scalar, found: &mut Vec<&'a Layer>) {
        match self.kind.inner() {
            Some(inner) => inner
                .iter()
                .for_each(|l| l.collect_state_layers(scalar, found)),
            None if self.kind.state(self, scalar).is_some() => found.push(self),
            None => {}
        }
    }

    /// Pushes this layer, or the layers inside it, that own parameters.
    pub fn collect_param_layers<'a>(&'a self, found: &mut Vec<&'a Layer>) {
        match self.kind.inner() {
            Some(inner) => inner.iter().for_each(|l| l.collect_param_layers(found)),
            None if self.kind.params().is_some() => found.push(self),
            None => {}
        }
    }

    /// Whether this layer (or anything inside it) learns.
    pub fn has_params(&self) -> bool {
        match self.kind.inner() {
            Some(inner) => has_params(inner),
            None => self.kind.params().is_some(),
        }
    }

    /// The learned scalars in this layer, the layers inside it included.
    pub fn param_count(&self) -> Count {
        match self.kind.inner() {
            Some(inner) => Count::sum(inner.iter().map(Layer::param_count)),
            None => self
                .kind
                .params()
                .map_or_else(Count::default, |p| p.count(self)),
        }
    }
}

/// Whether any layer in `layers` learns.
pub fn has_params(layers: &[Layer]) -> bool {
    layers.iter().any(Layer::has_params)
}
