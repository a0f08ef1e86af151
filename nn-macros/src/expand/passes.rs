//! The forward pass and the backward pass, as straight-line code, each written once.
//!
//! Variables are numbered by position: `x{i}` is the input of layer `i` (so `x0` is the batch
//! and `x{n}` the output) and `d{i}` the gradient of the loss with respect to `x{i}`; inside a
//! block at position `i` they are `x{i}_{j}` and `d{i}_{j}`. The forward pass returns every
//! activation it made as one tuple (the cache); the backward pass takes that tuple, walks the
//! layers in reverse and asks each one's table entry for its chain-rule step: the chain rule
//! applied at compile time.
//!
//! Freezing is a run-time matter, not a recompile: over the network's own layers the backward
//! pass tests each learning layer's bit in the network's `__frozen` set (a frozen layer passes
//! its gradient down without computing its parameters', where its kind can), and before each
//! layer's gradient for the layer below, whether anything below still trains; where nothing
//! does (and the input's gradient is not asked for), the pass ends there. The branches are
//! one bit test each, the same at every step, so they predict perfectly.

use std::cell::RefCell;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::rt;
use crate::layers::{Chain, Site};
use crate::model::{Layer, Network, has_params};

/// One pass over a network's layers.
pub struct Pass<'a> {
    model: &'a Network,
    rt: TokenStream,
    /// Whether this is the backward pass, where the cached activations are references.
    backward: bool,
    /// The learning rate of a fused SGD step, in the backward pass.
    sgd_rate: Option<TokenStream>,
    /// Whether the forward pass keeps what the backward pass needs: not when only stepping.
    keep: bool,
    /// The activations the forward pass made, in order, with their types.
    cached: RefCell<Vec<(Ident, TokenStream)>>,
    /// Where in the cache a layer with work after `train_step`'s update keeps what it needs,
    /// by the layer's field.
    after: RefCell<Vec<(usize, Ident)>>,
}

impl<'a> Pass<'a> {
    /// The forward pass.
    pub fn forward(model: &'a Network) -> Self {
        Self::new(model, false, None)
    }

    /// The forward pass of a step of a sequence network that will not be differentiated:
    /// sequence layers keep nothing for a backward step.
    pub fn infer(model: &'a Network) -> Self {
        Self {
            keep: false,
            ..Self::new(model, false, None)
        }
    }

    /// The backward pass; with `sgd_rate`, each layer's parameters are stepped in place as
    /// soon as the gradient for the layer below has been taken from them.
    pub fn backward(model: &'a Network, sgd_rate: Option<TokenStream>) -> Self {
        Self::new(model, true, sgd_rate)
    }

    /// The backward pass of inference (batch norms by their running statistics, dropout the
    /// identity), for the input sensitivities, after an [`infer`](Self::infer) forward pass.
    pub fn infer_backward(model: &'a Network) -> Self {
        Self {
            keep: false,
            ..Self::new(model, true, None)
        }
    }

    fn new(model: &'a Network, backward: bool, sgd_rate: Option<TokenStream>) -> Self {
        Self {
            model,
            rt: rt(),
            backward,
            sgd_rate,
            keep: true,
            cached: RefCell::new(Vec::new()),
            after: RefCell::new(Vec::new()),
        }
    }

    /// The activations the forward pass caches, after [`Chain::forward`] ran over the network.
    pub fn cached(&self) -> Vec<(Ident, TokenStream)> {
        self.cached.borrow().clone()
    }

    /// The layers with work after `train_step`'s update: their cache index and field.
    pub fn after(&self) -> Vec<(usize, Ident)> {
        self.after.borrow().clone()
    }

    /// The chain-rule step of layer `j` of `layers`, passing a gradient down or not.
    pub fn backward_layer(
        &self,
        layers: &[Layer],
        prefix: &str,
        j: usize,
        pass_down: bool,
    ) -> TokenStream {
        let layer = &layers[j];
        if !(pass_down || layer.has_params()) {
            return TokenStream::new();
        }
        let mut site = self.site(layer, prefix, j);
        site.grad_input = pass_down.then(|| d(prefix, j));
        layer.kind.backward(&site)
    }

    /// The backward pass over the network's own layers, each learning layer's step behind a
    /// runtime test of its frozen bit, and each layer's gradient for the layer below behind a
    /// test that something below still trains (`__first`, the lowest learning layer not
    /// frozen, is below it) or that the input's gradient is asked for (`__INPUT`; never in
    /// the fused SGD pass). Where the test fails, the pass ends there: the lower layers' code
    /// is nested in the branch that goes on. It ends in the input's gradient (zero where it
    /// was not asked for), or nothing in the fused SGD pass.
    ///
    /// `__PARAMS` off (inference's input gradient) treats every layer as frozen.
    pub fn top_backward(&self) -> TokenStream {
        let layers = &self.model.layers;
        let end = match self.sgd_rate {
            Some(_) => TokenStream::new(),
            None => {
                let rt = &self.rt;
                quote!(#rt::SMatrix::zeros())
            }
        };
        let body = self.top_backward_from(layers.len(), &end);
        // The fused SGD pass always trains; only `__backward` has `__PARAMS`.
        let first = self.mentions_first(&body).then(|| match self.sgd_rate {
            Some(_) => quote!(let __first = self.__frozen.first_trainable(&Self::__LEARNS);),
            None => quote! {
                let __first = if __PARAMS {
                    self.__frozen.first_trainable(&Self::__LEARNS)
                } else {
                    usize::MAX
                };
            },
        });
        quote!(#first #body)
    }

    /// Whether `code` reads `__first`.
    fn mentions_first(&self, code: &TokenStream) -> bool {
        code.clone().into_iter().any(|tree| match tree {
            proc_macro2::TokenTree::Ident(ident) => ident == "__first",
            proc_macro2::TokenTree::Group(group) => self.mentions_first(&group.stream()),
            _ => false,
        })
    }

    /// The backward code of layers `n - 1` down to 0, given `d{n}`; `end` is the value where
    /// the pass stops early.
    fn top_backward_from(&self, n: usize, end: &TokenStream) -> TokenStream {
        let Some(j) = n.checked_sub(1) else {
            // Layer 0 passed its gradient down: the input's, asked for.
            return if self.sgd_rate.is_some() {
                TokenStream::new()
            } else {
                quote!(d0)
            };
        };
        let layers = &self.model.layers;
        let below = has_params(&layers[..j]);
        let input = self.sgd_rate.is_none();
        let down = match (input, below) {
            (true, true) => Some(quote!(__INPUT || __first < #j)),
            (true, false) => Some(quote!(__INPUT)),
            (false, true) => Some(quote!(__first < #j)),
            (false, false) => None,
        };
        let stop = self.top_step(j, false);
        let Some(down) = down else {
            return quote!(#stop #end);
        };
        let step = self.top_step(j, true);
        let rest = self.top_backward_from(j, end);
        quote! {
            if #down {
                #step
                #rest
            } else {
                #stop
                #end
            }
        }
    }

    /// Layer `j`'s chain-rule step, binding its input's gradient with `pass_down`: a learning
    /// layer's behind its frozen bit.
    fn top_step(&self, j: usize, pass_down: bool) -> TokenStream {
        let layers = &self.model.layers;
        let layer = &layers[j];
        let trainable = self.backward_layer(layers, "", j, pass_down);
        if !layer.has_params() {
            return trainable;
        }
        let frozen = if pass_down {
            let mut site = self.site(layer, "", j);
            site.grad_input = Some(d("", j));
            let dx = d("", j);
            // No input-only form: the whole step (never in the fused SGD pass, see
            // `Kind::backward_input`), whose parameter gradient is cleared afterwards.
            let code = layer
                .kind
                .backward_input(&site)
                .unwrap_or_else(|| layer.kind.backward(&site));
            quote!({ #code #dx })
        } else {
            TokenStream::new()
        };
        let (frozen_test, trains) = match self.sgd_rate {
            Some(_) => (
                quote!(self.__frozen.contains(#j)),
                quote!(!self.__frozen.contains(#j)),
            ),
            None => (
                quote!(!__PARAMS || self.__frozen.contains(#j)),
                quote!(__PARAMS && !self.__frozen.contains(#j)),
            ),
        };
        if pass_down {
            let dx = d("", j);
            quote! {
                let #dx = if #frozen_test #frozen else { #trainable #dx };
            }
        } else {
            quote! {
                if #trains { #trainable }
            }
        }
    }

    fn site<'s>(&'s self, layer: &'s Layer, prefix: &str, j: usize) -> Site<'s> {
        let (_, input_ref) = self.var_ref(prefix, j);
        let (output, output_ref) = self.var_ref(prefix, j + 1);
        let field = &layer.field;
        Site {
            rt: &self.rt,
            scalar: self.model.scalar,
            layer,
            input_ref,
            output,
            output_ref,
            grad_output: d(prefix, j + 1),
            grad_input: None,
            // The forward pass reads the parameters through `this`, the `&Self` or `&mut Self`
            // that `__forward` hands on to its continuation.
            param: if self.backward {
                quote!(self.#field)
            } else {
                quote!(this.#field)
            },
            grad: quote!(grads.#field),
            sgd_rate: self.sgd_rate.as_ref(),
            chain: self,
            inner_prefix: format!("{prefix}{j}_"),
            state: quote!(state.#field),
            carry: quote!(carry.#field),
            step_cache: format_ident!("k{prefix}{j}"),
            keep: self.keep,
            owner: if self.backward {
                quote!(self)
            } else {
                quote!(this)
            },
        }
    }
}

impl Chain for Pass<'_> {
    fn forward(&self, layers: &[Layer], prefix: &str) -> (TokenStream, Ident) {
        let mut code = TokenStream::new();
        for (j, layer) in layers.iter().enumerate() {
            let site = self.site(layer, prefix, j);
            code.extend(layer.kind.forward(&site));
            let size = layer.output.tokens();
            let mut cached = self.cached.borrow_mut();
            cached.push((site.output.clone(), quote!(__M<#size, __B>)));
            // A sequence layer's step, a batch norm's batch statistics: kept beside the output.
            let extra = layer.kind.extra_cache(layer, self.model.scalar);
            if let Some(ty) = extra.filter(|_| self.keep) {
                if layer
                    .kind
                    .after_step(layer, self.model.scalar, &quote!(kept))
                    .is_some()
                {
                    self.after
                        .borrow_mut()
                        .push((cached.len(), layer.field.clone()));
                }
                cached.push((site.step_cache.clone(), ty));
            }
        }
        (code, x(prefix, layers.len()))
    }

    fn backward(&self, layers: &[Layer], prefix: &str, input_grad: bool) -> TokenStream {
        (0..layers.len())
            .rev()
            .map(|j| {
                // A layer passes a gradient down only if something below it learns (or the
                // caller asked for the input's gradient): the chain rule stops where it is
                // unused.
                let pass_down = input_grad || has_params(&layers[..j]);
                self.backward_layer(layers, prefix, j, pass_down)
            })
            .collect()
    }

    fn var_ref(&self, prefix: &str, j: usize) -> (Ident, TokenStream) {
        let var = x(prefix, j);
        // A chain's first variable is a reference already (to the batch, or to the block's
        // input), and so is every cached activation in the backward pass.
        let reference = if j == 0 || self.backward {
            quote!(#var)
        } else {
            quote!(&#var)
        };
        (var, reference)
    }
}

/// The activation variable `j` of the chain with variable prefix `prefix`.
fn x(prefix: &str, j: usize) -> Ident {
    format_ident!("x{prefix}{j}")
}

/// The gradient variable `j` of the chain with variable prefix `prefix`.
pub fn d(prefix: &str, j: usize) -> Ident {
    format_ident!("d{prefix}{j}")
}
