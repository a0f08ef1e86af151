//! The checked model of a network: sizes resolved and chained, parameters named.
//!
//! Code generation reads only this: everything in it has been validated, so the generator
//! cannot meet a malformed layer.

use proc_macro2::{Ident, TokenStream};
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
    /// The layers in order, with at least one that has parameters.
    pub layers: Vec<Layer>,
}

/// The scalar type of a network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scalar {
    /// `f32`, the default.
    F32,
    /// `f64`, chosen with `struct Name: f64`.
    F64,
}

/// One checked layer.
pub struct Layer {
    /// Position in the declaration, as `nn.Sequential` numbers its modules.
    pub index: usize,
    /// What kind of layer this is.
    pub kind: &'static LayerKind,
    /// Numeric arguments with defaults filled in, in the order the kind lists them.
    pub numbers: Vec<f64>,
    /// Features in.
    pub input: usize,
    /// Features out.
    pub output: usize,
    /// The layer as the user wrote it, e.g. `Linear(2, 8)`, for docs.
    pub source: String,
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

impl Network {
    /// Features the network takes.
    pub fn input(&self) -> usize {
        self.layers.first().map_or(0, |l| l.input)
    }

    /// Features the network produces.
    pub fn output(&self) -> usize {
        self.layers.last().map_or(0, |l| l.output)
    }

    /// Total number of learned scalars.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(Layer::param_count).sum()
    }

    /// The layers that have parameters.
    pub fn param_layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(|l| l.kind.params.is_some())
    }

    /// The name of the generated gradient struct.
    pub fn grads_ident(&self) -> Ident {
        format_ident!("{}Grads", self.ident)
    }

    /// Whether any layer before `index` has parameters, so that the layer at `index` must pass
    /// a gradient down.
    pub fn needs_input_grad(&self, index: usize) -> bool {
        self.layers[..index].iter().any(|l| l.kind.params.is_some())
    }
}

impl Layer {
    /// Learned scalars in this layer.
    pub fn param_count(&self) -> usize {
        self.kind
            .params
            .map_or(0, |p| (p.count)(self.input, self.output))
    }

    /// The field holding this layer's parameters: `l0` for the first module, as `net[0]`.
    pub fn field(&self) -> Ident {
        format_ident!("l{}", self.index)
    }
}
