//! `Dropout(p = 0.5)`: in training (`train_step`, `gradients`) each element is kept with
//! probability `1 - p` and scaled by `1 / (1 - p)`; in inference (`forward`) everything passes.
//!
//! The mask is a pure function of the network's dropout key, the layer and the element (a
//! counter-based generator, `nn_runtime`'s `dropout`): the backward pass draws the same mask
//! again instead of keeping it, runs are reproducible, and `train_step` advances the key.

use proc_macro2::TokenStream;
use quote::quote;

use super::{ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Site, number};
use crate::model::{Count, Layer, Shape, Size};

/// The table entry, torch's arguments in torch's order.
pub const DROPOUT: Entry<'static> = Entry {
    name: "Dropout",
    args: &[
        ArgSpec {
            name: "p",
            kind: ArgKind::Number { default: Some(0.5) },
        },
        ArgSpec {
            name: "inplace",
            kind: ArgKind::Bool { default: false },
        },
    ],
    build: |args| {
        Box::new(Dropout {
            p: args.first().map_or(0.5, number),
        })
    },
};

/// A dropout layer.
struct Dropout {
    /// The probability of dropping an element.
    p: f64,
}

/// A number that tells this layer's masks from another dropout layer's: a hash of its place.
fn layer_id(layer: &Layer) -> u64 {
    layer.prefix.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Kind for Dropout {
    fn torch(&self) -> String {
        format!("`nn.Dropout(p={})`", self.p)
    }

    fn shape(&mut self, input: &Shape, _features: &Size) -> Result<Shape, String> {
        if (0.0..=1.0).contains(&self.p) {
            Ok(input.clone())
        } else {
            Err(format!(
                "`Dropout`'s `p` is a probability, between 0 and 1; found {}",
                self.p
            ))
        }
    }

    fn moded(&self) -> bool {
        true
    }

    fn drops(&self) -> bool {
        true
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let input = &s.input_ref;
        if !s.keep {
            return s.bind(quote!(::core::clone::Clone::clone(#input)));
        }
        let (rt, owner, p, id) = (s.rt, &s.owner, s.scalar.lit(self.p), layer_id(s.layer));
        s.bind(quote!(#rt::dropout(#input, #p, #owner.__dropout.key(), #id)))
    }

    // The same mask and scale on the gradient.
    fn backward(&self, s: &Site) -> TokenStream {
        let Some(dx) = &s.grad_input else {
            return TokenStream::new();
        };
        if !s.keep {
            // In inference dropout is the identity.
            let dy = &s.grad_output;
            return quote!(let #dx = #dy;);
        }
        let (rt, dy, p, id) = (
            s.rt,
            &s.grad_output,
            s.scalar.lit(self.p),
            layer_id(s.layer),
        );
        quote!(let #dx = #rt::dropout_backward(#dy, #p, self.__dropout.key(), #id);)
    }

    // A draw and a multiply per element.
    fn forward_flops(&self, layer: &Layer) -> Count {
        layer.output.count().scaled(2)
    }

    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        layer.output.count().scaled(if pass_down { 2 } else { 0 })
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output, p) = (&eq.input, &eq.output, self.p);
        Lines {
            forward: vec![format!(
                "{output} = {input} ⊙ mask / (1 - {p}) in training (each element kept with probability 1 - {p}), {input} in inference"
            )],
            backward: eq
                .pass_down
                .then(|| format!("δ{input} = δ{output} ⊙ mask / (1 - {p})"))
                .into_iter()
                .collect(),
        }
    }
}
