//! The inherent methods of the network and gradient structs.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::passes;
use crate::model::Network;

/// `impl Name { consts, constructors, forward, gradients, train_step }` and
/// `impl NameGrads { zeros }`.
pub fn inherent(model: &Network) -> TokenStream {
    let ident = &model.ident;
    let grads = model.grads_ident();
    let consts = consts(model);
    let constructors = constructors(model);
    let inference = inference(model);
    let training = training(model);
    let zeros = constructor_body(model, quote!(zeros()));
    quote! {
        impl #ident {
            #consts
            #constructors
            #inference
            #training
        }

        impl #grads {
            /// All gradients zero.
            pub fn zeros() -> Self {
                #zeros
            }
        }
    }
}

/// `IN`, `OUT` and `PARAMS`.
fn consts(model: &Network) -> TokenStream {
    let [input, output, params] =
        [model.input(), model.output(), model.param_count()].map(Literal::usize_unsuffixed);
    quote! {
        /// Number of input features: the rows of an input batch.
        pub const IN: usize = #input;
        /// Number of output features: the rows of an output batch.
        pub const OUT: usize = #output;
        /// Number of learned scalars (weights and biases of every layer).
        pub const PARAMS: usize = #params;
    }
}

/// `Self { l0: <ty>::#call, ... }` over every layer with parameters.
fn constructor_body(model: &Network, call: TokenStream) -> TokenStream {
    let scalar = model.scalar.tokens();
    let fields = model.param_layers().filter_map(|layer| {
        let ty = (layer.kind.params?.ty)(&scalar, layer.input, layer.output);
        let field = layer.field();
        Some(quote!(#field: <#ty>::#call,))
    });
    quote!(Self { #(#fields)* })
}

/// `zeros()` and `seeded(seed)`.
fn constructors(model: &Network) -> TokenStream {
    let zeros = constructor_body(model, quote!(zeros()));
    let seeded = constructor_body(model, quote!(seeded(&mut init)));
    quote! {
        /// A network whose weights and biases are all zero.
        pub fn zeros() -> Self {
            #zeros
        }

        /// PyTorch's default `nn.Linear` initialisation, reproducibly from `seed`: every weight
        /// and bias uniform in `+-1/sqrt(in_features)` of its layer. The same seed gives the
        /// same network on every run and machine.
        pub fn seeded(seed: u64) -> Self {
            let mut init = ::nn_runtime::__private::Init::new(seed);
            #seeded
        }
    }
}

/// `forward` and `forward_batch`.
fn inference(model: &Network) -> TokenStream {
    let scalar = model.scalar.tokens();
    let [input, output] = [model.input(), model.output()].map(Literal::usize_unsuffixed);
    let (statements, result) = passes::forward(model);
    quote! {
        /// Runs one sample (`IN` features) through the network, giving `OUT` features.
        pub fn forward(
            &self,
            x: &::nn_runtime::__private::SVector<#scalar, #input>,
        ) -> ::nn_runtime::__private::SVector<#scalar, #output> {
            self.forward_batch(x)
        }

        /// Runs a batch through the network: `xs` is `IN x B`, one column per sample; the
        /// result is `OUT x B`, column `b` the output for sample `b`.
        pub fn forward_batch<const B: usize>(
            &self,
            x0: &::nn_runtime::__private::SMatrix<#scalar, #input, B>,
        ) -> ::nn_runtime::__private::SMatrix<#scalar, #output, B> {
            #statements
            #result
        }
    }
}

/// `gradients` and `train_step`.
fn training(model: &Network) -> TokenStream {
    let scalar = model.scalar.tokens();
    let [input, output] = [model.input(), model.output()].map(Literal::usize_unsuffixed);
    let grads = model.grads_ident();
    let (forward, result) = passes::forward(model);
    let backward = passes::backward(model);
    let loss_grad = format_ident!("d{}", model.layers.len());
    let (params, grad_slices) = optimizer_slices(model);
    quote! {
        /// The loss of a batch and its gradient with respect to every parameter.
        ///
        /// `xs` is `IN x B` and `ys` `OUT x B`, one column per sample. The backward pass is
        /// straight-line code derived by `network!` through the chain rule.
        pub fn gradients<L: ::nn_runtime::__private::Loss<#scalar>, const B: usize>(
            &self,
            xs: &::nn_runtime::__private::SMatrix<#scalar, #input, B>,
            ys: &::nn_runtime::__private::SMatrix<#scalar, #output, B>,
            loss: &L,
        ) -> (#scalar, #grads) {
            let x0 = xs;
            #forward
            let (value, #loss_grad) = loss.value_and_grad(&#result, ys);
            let mut grads = #grads::zeros();
            #backward
            (value, grads)
        }

        /// One training step on a batch: forward, loss, backward, and the optimizer's update
        /// of every parameter. Returns the batch loss before the update.
        pub fn train_step<
            L: ::nn_runtime::__private::Loss<#scalar>,
            O: ::nn_runtime::__private::Optimizer<#scalar>,
            const B: usize,
        >(
            &mut self,
            xs: &::nn_runtime::__private::SMatrix<#scalar, #input, B>,
            ys: &::nn_runtime::__private::SMatrix<#scalar, #output, B>,
            loss: &L,
            optimizer: &mut O,
        ) -> #scalar {
            let (value, grads) = self.gradients(xs, ys, loss);
            optimizer.step(&mut [#params], &[#grad_slices]);
            value
        }
    }
}

/// The parameter tensors as mutable slices and their gradients as slices, in the same order.
fn optimizer_slices(model: &Network) -> (TokenStream, TokenStream) {
    let mut params = TokenStream::new();
    let mut grads = TokenStream::new();
    for layer in model.param_layers() {
        let field = layer.field();
        for tensor in layer.kind.params.map_or(&[][..], |p| p.tensors) {
            let tensor = format_ident!("{tensor}");
            params.extend(quote!(self.#field.#tensor.as_mut_slice(),));
            grads.extend(quote!(grads.#field.#tensor.as_slice(),));
        }
    }
    (params, grads)
}
