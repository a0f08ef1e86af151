//! The impls inside the generated block: the network's inherent methods, the gradient
//! struct's, and the runtime traits (`Network`, `Nested`, `Tensors`, `Zeroable`).
//!
//! Generic parameters are named `__B`, `__L`, `__O`: the checker reserves names starting with
//! `__`, so they cannot collide with a network called `B`.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::passes::{Pass, d};
use super::rt;
use super::sequence;
use super::structs::field_types;
use crate::layers::{Access, Chain, chain_activations, chain_backward_flops, chain_forward_flops};
use crate::model::{Count, Network, Part, Size};

/// Everything generated besides the struct definitions.
pub fn impls(model: &Network) -> TokenStream {
    let (rt, ident, grads) = (rt(), &model.ident, model.grads_ident());
    let zeroable = field_types(model);
    let consts = consts(model);
    let constructors = constructors();
    let (passes, cache) = passes(model);
    let entry_points = if model.is_sequence() {
        let last = Literal::usize_unsuffixed(model_cached_len(model) - 1);
        let step = sequence::step_pass(model);
        let entry = sequence::entry_points(model, &last);
        quote!(#entry #step)
    } else {
        let infer = infer_pass(model);
        let entry = entry_points(model);
        quote!(#entry #infer)
    };
    let traits = traits(model);
    let (state_impl, step_alias) = (sequence::state_impl(model), sequence::step_alias(model));
    let grads_methods = sequence::grads_methods(model);
    let freeze = freeze(model);
    let sensitivities = sensitivities(model);
    quote! {
        // SAFETY: both structs are made of parameter blocks of floats, nested networks and a
        // `Scratch`, all `Zeroable` (which the assertions below make the compiler confirm).
        unsafe impl #rt::Zeroable for #ident {}
        // SAFETY: as above.
        unsafe impl #rt::Zeroable for #grads {}
        #(const _: () = #rt::assert_zeroable::<#zeroable>();)*
        #cache
        #step_alias
        #state_impl

        impl #ident {
            #consts
            #constructors
            #entry_points
            #freeze
            #sensitivities
            #passes
        }

        impl #grads {
            #rt::zeros!();
            #grads_methods
        }

        #traits
    }
}

/// `IN`, `OUT`, `PARAMS` and the cost facts.
fn consts(model: &Network) -> TokenStream {
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let params = Count::sum(model.layers.iter().map(|l| l.param_count()));
    let forward = chain_forward_flops(&model.layers);
    let backward = chain_backward_flops(&model.layers, false);
    let activations = chain_activations(&model.layers);
    let bytes = Literal::usize_unsuffixed(model.scalar.bytes());
    quote! {
        /// Number of input features: the rows of an input batch.
        pub const IN: usize = #input;
        /// Number of output features: the rows of an output batch.
        pub const OUT: usize = #output;
        /// Number of learned scalars (weights and biases of every layer).
        pub const PARAMS: usize = #params;
        /// Floating-point operations of the forward pass per sample (multiply-add = 2).
        pub const FLOPS_FORWARD: usize = #forward;
        /// Operations of the backward pass of `gradients` per sample (it stops where the chain rule does).
        pub const FLOPS_BACKWARD: usize = #backward;
        /// Operations of a training step per sample, loss and optimizer update not included.
        pub const FLOPS_TRAIN: usize = Self::FLOPS_FORWARD + Self::FLOPS_BACKWARD;
        /// Bytes of the parameters.
        pub const PARAM_BYTES: usize = Self::PARAMS * #bytes;
        /// Bytes of one set of gradients (as many as the parameters).
        pub const GRAD_BYTES: usize = Self::PARAM_BYTES;
        /// Bytes of activations the forward pass keeps for the backward pass, per sample.
        pub const ACTIVATION_BYTES: usize = (#activations) * #bytes;

        /// Bytes of optimizer state at `slots_per_param` (`Sgd` 0, with momentum 1, `Adam` 2, `RmsProp` 3).
        pub const fn optimizer_state_bytes(slots_per_param: usize) -> usize {
            slots_per_param * Self::PARAM_BYTES
        }
    }
}

/// `freeze`, `unfreeze`, `is_frozen` (written once in the runtime) and what they and the
/// passes read: each layer's name (its `state_dict` prefix), the bit set of the layers that
/// learn, and `__clear_frozen`, which zeroes a frozen layer's gradient fields.
fn freeze(model: &Network) -> TokenStream {
    let (rt, ident, grads) = (rt(), &model.ident, model.grads_ident());
    let names = model.layers.iter().map(|l| &l.prefix);
    let words = model.frozen_words();
    let mut learns = vec![0u64; words];
    for (j, layer) in model.layers.iter().enumerate() {
        if layer.has_params() {
            learns[j / 64] |= 1 << (j % 64);
        }
    }
    let learns = learns.iter().map(|w| Literal::u64_unsuffixed(*w));
    let clears = model.param_layers_by_top().into_iter().map(|(j, layer)| {
        let field = &layer.field;
        quote!(if self.__frozen.contains(#j) { #rt::zero_in_place(&mut grads.#field); })
    });
    quote! {
        #rt::freeze_methods!(#ident);

        /// Each layer's name or `state_dict` prefix, in declaration order: what `freeze` takes.
        #[doc(hidden)]
        pub const __LAYER_NAMES: &'static [&'static str] = &[#(#names),*];

        /// The layers that learn, one bit per layer.
        #[doc(hidden)]
        pub const __LEARNS: [u64; #words] = [#(#learns),*];

        /// Zeroes the gradient fields of the frozen layers, which a backward pass may have
        /// written on its way down through them.
        #[doc(hidden)]
        #[allow(unused_variables)]
        pub fn __clear_frozen(&self, grads: &mut #grads) {
            #(#clears)*
        }
    }
}

/// `input_gradient`, `input_gradient_batch` and `jacobian`, for networks without state
/// between steps whose backward pass is that of `forward` (no batch statistics or dropout).
fn sensitivities(model: &Network) -> TokenStream {
    if model.is_sequence() {
        return TokenStream::new();
    }
    let (rt, scalar, grads) = (rt(), model.scalar.tokens(), model.grads_ident());
    let (batch_in, batch_out) = io_types(model);
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let (input_span, output_span) = model.io_spans;
    let one_in = quote_spanned!(input_span=> #rt::SVector<#scalar, #input>);
    let one_out = quote_spanned!(output_span=> #rt::SVector<#scalar, #output>);
    let jacobian = quote!(#rt::SMatrix<#scalar, #output, #input>);
    // A network whose training and inference differ is differentiated in inference.
    let pass = if model.is_moded() {
        quote! {
            self.__forward_eval(xs, #[inline(always)] |this, c| {
                this.__backward_eval::<__B, true, false>(xs, c, *dys, &mut sink)
            })
        }
    } else {
        quote! {
            Self::__forward(self, xs, #[inline(always)] |this, c| {
                this.__backward::<__B, true, false>(xs, c, *dys, &mut sink)
            })
        }
    };
    let batch = multiversion(
        quote! {
            /// [`input_gradient`](Self::input_gradient) of a batch, one sample per column: the
            /// vector-Jacobian product `J(x_b)^T dy_b` of each column `x_b` of `xs` with the
            /// same column of `dys`.
            pub fn input_gradient_batch<const __B: usize>(&self, xs: &#batch_in, dys: &#batch_out) -> #batch_in
        },
        quote! {
            // The parameters' gradients are not computed (`__PARAMS` off) where a layer can
            // pass its gradient down without them; the others write into this sink.
            let mut sink = #rt::zeroed::<#grads>();
            #pass
        },
    );
    let eval = eval_passes(model);
    quote! {
        #eval

        /// The gradient of `dy · forward(x)` with respect to the input: the vector-Jacobian
        /// product `J(x)^T dy` of the derivative of exactly what [`forward`](Self::forward)
        /// computes, by one forward and one backward pass (the derived chain rule, without
        /// the parameters' gradients). For saliency (`dy` one-hot on a class) and for
        /// optimisation through the network. Allocates nothing; frozen layers make no
        /// difference.
        pub fn input_gradient(&self, x: &#one_in, dy: &#one_out) -> #one_in {
            self.input_gradient_batch(x, dy)
        }

        #batch

        /// The Jacobian of [`forward`](Self::forward) at `x`, `OUT x IN`: row `i` is the
        /// gradient of output `i` with respect to the input. One backward pass at batch
        /// `OUT`, `x` in every column and the identity as the output's gradient; allocates
        /// nothing. For model-predictive control and sensitivity analysis.
        pub fn jacobian(&self, x: &#one_in) -> #jacobian {
            let xs = #rt::SMatrix::<#scalar, #input, #output>::from_fn(|r, _| x[r]);
            let dys = #rt::SMatrix::<#scalar, #output, #output>::identity();
            self.input_gradient_batch(&xs, &dys).transpose()
        }
    }
}

/// For a network whose training and inference differ, the inference passes the input
/// sensitivities differentiate: `__forward_eval` (inference's forward pass, handing the
/// activations it made to a continuation, as `__forward` does) and `__backward_eval` (its
/// chain rule, batch norms by their running statistics, dropout the identity).
fn eval_passes(model: &Network) -> TokenStream {
    if !model.is_moded() {
        return TokenStream::new();
    }
    let grads = model.grads_ident();
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let (batch_in, batch_out) = (quote!(__M<#input, __B>), quote!(__M<#output, __B>));
    let forward = Pass::infer(model);
    let (code, _) = forward.forward(&model.layers, "");
    let cached = forward.cached();
    let names: Vec<&Ident> = cached.iter().map(|(v, _)| v).collect();
    let types: Vec<&TokenStream> = cached.iter().map(|(_, ty)| ty).collect();
    let body = Pass::infer_backward(model).top_backward();
    let (top, x0) = (d("", model.layers.len()), format_ident!("x0"));
    let (used_names, x0_used) = (used(&names, &body), used(&[&x0], &body).remove(0));
    quote! {
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn __forward_eval<__R, const __B: usize>(&self, x0: &#batch_in, then: impl FnOnce(&Self, (#(&#types,)*)) -> __R) -> __R {
            let this = self;
            #code
            then(this, (#(&#names,)*))
        }

        #[cfg_attr(not(debug_assertions), inline(always))]
        fn __backward_eval<const __B: usize, const __INPUT: bool, const __PARAMS: bool>(&self, #x0_used: &#batch_in, cache: (#(&#types,)*), #top: #batch_out, grads: &mut #grads) -> #batch_in {
            let (#(#used_names,)*) = cache;
            #body
        }
    }
}

/// `zeros`, `seeded` and their boxed forms.
fn constructors() -> TokenStream {
    let rt = rt();
    quote!(#rt::constructors!();)
}

/// The batch types `SMatrix<T, IN, __B>` and `SMatrix<T, OUT, __B>`, spanned on the sizes in
/// the user's declaration, so that type errors about them point at the declared size.
fn io_types(model: &Network) -> (TokenStream, TokenStream) {
    let (rt, scalar) = (rt(), model.scalar.tokens());
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let (input_span, output_span) = model.io_spans;
    (
        quote_spanned!(input_span=> #rt::SMatrix<#scalar, #input, __B>),
        quote_spanned!(output_span=> #rt::SMatrix<#scalar, #output, __B>),
    )
}

/// The passes, each written once and inlined into every entry point: `__forward` (handing
/// references to the activations it keeps, the cache, to a continuation: returned instead,
/// they were copied out of its frame, 1.4% more instructions in the digits step), `__backward` (to the gradients of the
/// parameters of the layers not frozen, with `__PARAMS`, and, with `__INPUT`, to the input's)
/// and, where every layer can, `__backward_sgd` (a plain SGD step fused in, frozen layers left
/// alone); and the alias of the cache's type, which goes outside the impl. Both backward
/// passes test each layer's frozen bit at run time (`Pass::top_backward`).
fn passes(model: &Network) -> (TokenStream, TokenStream) {
    let (rt, scalar, grads) = (rt(), model.scalar.tokens(), model.grads_ident());
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let (batch_in, batch_out) = (quote!(__M<#input, __B>), quote!(__M<#output, __B>));
    let forward = Pass::forward(model);
    let (forward_code, _) = forward.forward(&model.layers, "");
    let cached = forward.cached();
    let names: Vec<&Ident> = cached.iter().map(|(v, _)| v).collect();
    let types = cached.iter().map(|(_, ty)| ty);
    let top = d("", model.layers.len());
    let backward = Pass::backward(model, None).top_backward();
    let x0 = format_ident!("x0");
    let backward_names = used(&names, &backward);
    // Inlined into every entry point's AVX2 copy in optimised builds. Not in debug builds
    // (where only forced inlining happens), since there every inlined call keeps stack slots
    // of its own: a large network's entry points would each hold all of its activations
    // several times and overflow a 2 MiB stack.
    let inline = quote!(#[cfg_attr(not(debug_assertions), inline(always))]);
    let sgd = fuses_sgd(model).then(|| {
        let pass = Pass::backward(model, Some(quote!(rate)));
        let body = pass.top_backward();
        let (sgd_names, x0) = (used(&names, &body), used(&[&x0], &body).remove(0));
        quote! {
            #inline
            fn __backward_sgd<const __B: usize>(&mut self, #x0: &#batch_in, cache: __Cache<'_, __B>, #top: #batch_out, rate: #scalar) {
                let (#(#sgd_names,)*) = cache;
                #body
            }
        }
    });
    let x0 = used(&[&x0], &backward).remove(0);
    // A sequence network's passes thread its state through: read and advanced forward, its
    // gradient carried back backward.
    let state_ident = model.state_ident();
    let state = model
        .is_sequence()
        .then(|| quote!(state: &mut #state_ident<__B>,));
    let carry = model
        .is_sequence()
        .then(|| quote!(carry: &mut #state_ident<__B>,));
    let methods = quote! {
        #inline
        fn __forward<__S, __R, const __B: usize>(this: __S, x0: &#batch_in, #state mut then: impl FnMut(__S, __Cache<'_, __B>) -> __R) -> __R
        where
            __S: ::core::ops::Deref<Target = Self>,
        {
            #forward_code
            then(this, (#(&#names,)*))
        }

        #inline
        fn __backward<const __B: usize, const __INPUT: bool, const __PARAMS: bool>(&self, #x0: &#batch_in, cache: __Cache<'_, __B>, #top: #batch_out, grads: &mut #grads, #carry) -> #batch_in {
            let (#(#backward_names,)*) = cache;
            #backward
        }

        #sgd
    };
    let alias = quote! {
        type __M<const __R: usize, const __B: usize> = #rt::SMatrix<#scalar, __R, __B>;
        type __Cache<'a, const __B: usize> = (#(&'a #types,)*);
    };
    (methods, alias)
}

/// Each of `names` where `code` mentions it, else `_` (an unused binding would warn in the
/// user's crate): the cached activations a backward pass reads.
fn used(names: &[&Ident], code: &TokenStream) -> Vec<TokenStream> {
    let mut mentioned = std::collections::HashSet::new();
    collect_idents(code.clone(), &mut mentioned);
    names
        .iter()
        .map(|name| {
            if mentioned.contains(&name.to_string()) {
                quote!(#name)
            } else {
                quote!(_)
            }
        })
        .collect()
}

/// Every identifier in `code`, groups included.
fn collect_idents(code: TokenStream, into: &mut std::collections::HashSet<String>) {
    for tree in code {
        match tree {
            proc_macro2::TokenTree::Ident(ident) => {
                into.insert(ident.to_string());
            }
            proc_macro2::TokenTree::Group(group) => collect_idents(group.stream(), into),
            _ => {}
        }
    }
}

/// Whether every layer that learns can take a plain SGD step inside the backward pass.
fn fuses_sgd(model: &Network) -> bool {
    model
        .param_layers()
        .iter()
        .all(|l| l.kind.params().is_some_and(|p| p.fuses_sgd()))
}

/// `forward`, `forward_batch`, `gradients`, `gradients_into` and `train_step`.
fn entry_points(model: &Network) -> TokenStream {
    let (rt, scalar, grads, ident) = (
        rt(),
        model.scalar.tokens(),
        model.grads_ident(),
        &model.ident,
    );
    let (batch_in, batch_out) = io_types(model);
    let last = Literal::usize_unsuffixed(model_cached_len(model) - 1);
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let (input_span, output_span) = model.io_spans;
    let one_in = quote_spanned!(input_span=> #rt::SVector<#scalar, #input>);
    let one_out = quote_spanned!(output_span=> #rt::SVector<#scalar, #output>);
    let loss = quote!(__L: #rt::Loss<#scalar>);
    let optimizer = quote!(__O: #rt::Optimizer<#scalar>);
    // A network whose training and inference differ runs its inference pass.
    let forward_body = if model.is_moded() {
        quote!(self.__infer(xs))
    } else {
        quote!(Self::__forward(self, xs, #[inline(always)] |_, c| *c.#last))
    };
    let forward_batch = multiversion(
        quote! {
            /// Runs a batch, one sample per column: `IN x B` in, `OUT x B` out.
            pub fn forward_batch<const __B: usize>(&self, xs: &#batch_in) -> #batch_out
        },
        forward_body,
    );
    let advance = model.drops().then(|| quote!(self.__dropout.advance();));
    let (kept, after) = after_step(model);
    // With work after the update, the forward pass also hands back what it needs.
    let forward_and_back = if after.is_empty() {
        quote! {
            let value = Self::__forward(&*self, xs, #[inline(always)] |this, c| {
                let (value, top) = loss.value_and_grad(c.#last, ys);
                this.__backward::<__B, false, true>(xs, c, top, &mut grads);
                value
            });
        }
    } else {
        quote! {
            let (value, kept) = Self::__forward(&*self, xs, #[inline(always)] |this, c| {
                let (value, top) = loss.value_and_grad(c.#last, ys);
                this.__backward::<__B, false, true>(xs, c, top, &mut grads);
                (value, #kept)
            });
        }
    };
    let gradients_into = multiversion(
        quote! {
            /// Like [`gradients`](Self::gradients), overwriting `grads`: no allocation, no large value on the stack.
            pub fn gradients_into<#loss, const __B: usize>(&self, xs: &#batch_in, ys: &#batch_out, loss: &__L, grads: &mut #grads) -> #scalar
        },
        quote! {
            let value = Self::__forward(self, xs, #[inline(always)] |this, c| {
                let (value, top) = loss.value_and_grad(c.#last, ys);
                this.__backward::<__B, false, true>(xs, c, top, grads);
                value
            });
            self.__clear_frozen(grads);
            value
        },
    );
    // Where dropout's key must advance after the step, the fused step's value is bound first.
    let (fused_head, fused_tail) = match &advance {
        Some(advance) => (
            quote!(let value = Self::__forward),
            quote!(#advance return value;),
        ),
        None => (quote!(return Self::__forward), TokenStream::new()),
    };
    let fused = fuses_sgd(model).then(|| {
        quote! {
            let rate = optimizer.plain_sgd_rate();
            if let ::core::option::Option::Some(rate) = rate {
                #fused_head(&mut *self, xs, #[inline(always)] |this, c| {
                    let (value, top) = loss.value_and_grad(c.#last, ys);
                    this.__backward_sgd(xs, c, top, rate);
                    value
                });
                #fused_tail
            }
        }
    });
    let train_step = multiversion(
        quote! {
            /// One training step on a batch: forward, loss, backward, the optimizer's update; returns
            /// the loss before the update. Allocates only on the first step (the gradients' space).
            pub fn train_step<#loss, #optimizer, const __B: usize>(&mut self, xs: &#batch_in, ys: &#batch_out, loss: &__L, optimizer: &mut __O) -> #scalar
        },
        quote! {
            #fused
            // The passes themselves, not `gradients_into`: this body is already the right copy.
            let mut grads = self.__scratch.take();
            #forward_and_back
            const TENSORS: usize = <#ident as #rt::Network>::TENSORS;
            #rt::optimizer_step::<_, _, TENSORS>(self, &mut grads, optimizer);
            self.__scratch.put(grads);
            #after
            #advance
            value
        },
    );
    quote! {
        /// Runs one sample (`IN` features) through the network, giving `OUT` features.
        pub fn forward(&self, x: &#one_in) -> #one_out {
            self.forward_batch(x)
        }

        #forward_batch

        /// The loss of a batch (one sample per column) and its gradient with respect to every
        /// parameter, by the backward pass `network!` derived through the chain rule. The
        /// fields of frozen layers (`freeze`) are zero: their gradients are not computed.
        pub fn gradients<#loss, const __B: usize>(&self, xs: &#batch_in, ys: &#batch_out, loss: &__L) -> (#scalar, #grads) {
            let mut grads = #grads::zeros();
            let value = self.gradients_into(xs, ys, loss, &mut grads);
            (value, grads)
        }

        #gradients_into
        #train_step
    }
}

/// What `train_step` keeps from its forward pass for the work after its update (a tuple of
/// copies of those caches), and that work (a batch norm's running statistics).
fn after_step(model: &Network) -> (TokenStream, TokenStream) {
    let pass = Pass::forward(model);
    let _ = pass.forward(&model.layers, "");
    let after = pass.after();
    let layers = model.all_layers();
    let indices = after.iter().map(|(i, _)| Literal::usize_unsuffixed(*i));
    let kept = quote!((#(::core::clone::Clone::clone(c.#indices),)*));
    let work: TokenStream = after
        .iter()
        .enumerate()
        .filter_map(|(k, (_, field))| {
            let layer = layers.iter().find(|l| l.field == *field)?;
            let k = Literal::usize_unsuffixed(k);
            layer
                .kind
                .after_step(layer, model.scalar, &quote!(&kept.#k))
        })
        .collect();
    (kept, work)
}

/// The inference pass of a network whose training and inference differ: batch norms use
/// their running statistics, dropout passes everything.
fn infer_pass(model: &Network) -> TokenStream {
    if !model.is_moded() || model.is_sequence() {
        return TokenStream::new();
    }
    let pass = Pass::infer(model);
    let (code, last) = pass.forward(&model.layers, "");
    let (input, output) = (model.input().tokens(), model.output().tokens());
    quote! {
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn __infer<const __B: usize>(&self, x0: &__M<#input, __B>) -> __M<#output, __B> {
            let this = self;
            #code
            #last
        }
    }
}

/// The number of activations the forward pass caches.
fn model_cached_len(model: &Network) -> usize {
    let pass = Pass::forward(model);
    let _ = pass.forward(&model.layers, "");
    pass.cached().len()
}

/// A public entry point (`signature` with its docs, `body`) whose body runs compiled for AVX2
/// and FMA where the processor has them, and portably elsewhere.
///
/// Users build with default flags (baseline x86-64: SSE2, no fused multiply-add), so this is
/// how the unrolled small-layer code gets 8-lane vectors and fused multiply-adds: the body is
/// a closure marked `#[inline(always)]`, which the runtime's `simd` inlines into a
/// `#[target_feature]` function and into its portable path, after one cached feature check.
/// The passes it calls are force-inlined too, so both copies are whole.
fn multiversion(signature: TokenStream, body: TokenStream) -> TokenStream {
    let rt = rt();
    // No `#[inline]`: every entry point is generic, so it is compiled in the caller's crate.
    quote! {
        #signature {
            #rt::simd(#[inline(always)] || { #body })
        }
    }
}

/// `impl Network`, `impl Nested` and `impl Tensors` for the network.
fn traits(model: &Network) -> TokenStream {
    let (rt, ident, scalar, grads) = (
        rt(),
        &model.ident,
        model.scalar.tokens(),
        model.grads_ident(),
    );
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let layers = model.param_layers();
    let tensors = Count::sum(
        layers
            .iter()
            .filter_map(|l| l.kind.params().map(|p| p.tensors())),
    );
    let each = |f: &dyn Fn(&crate::model::Layer, &dyn crate::layers::Params) -> TokenStream| -> TokenStream {
        layers.iter().filter_map(|l| l.kind.params().map(|p| f(l, p))).collect()
    };
    let resets = each(&|l, p| {
        let field = &l.field;
        p.reset(&quote!(self.#field))
    });
    // Every gradient field is a runtime block or a nested network's gradients, each of which
    // lists its own tensors in the order `pair` (or `nested_tensors`) gives them.
    let flat = each(&|l, p| {
        let field = &l.field;
        p.visit(l, model.scalar, &quote!(self.#field), Access::Flat)
    });
    // A frozen layer's tensors get empty gradients, which optimizers skip.
    let pairs: TokenStream = model
        .param_layers_by_top()
        .into_iter()
        .filter_map(|(j, l)| {
            let field = &l.field;
            let visit = l.kind.params()?.visit(
                l,
                model.scalar,
                &quote!(self.#field),
                Access::Paired {
                    grad: &quote!(gradients.#field),
                },
            );
            Some(quote! {
                let start = *at;
                #visit
                if frozen.contains(#j) {
                    #rt::skip_tensors(grads, start, *at);
                }
            })
        })
        .collect();
    let visits = |mutable: bool| {
        each(&|l, p| {
            let (field, prefix) = (&l.field, format!("{}.", l.prefix));
            let visit = p.visit(
                l,
                model.scalar,
                &quote!(self.#field),
                Access::Named {
                    name: &quote!(__name),
                    mutable,
                },
            );
            // The name is built on the stack: generated code needs no heap (no_std).
            quote!(#rt::with_prefix(prefix, #prefix, |__name| { #visit });)
        })
    };
    let (visit, visit_mut) = (visits(false), visits(true));
    // Integer buffers (a batch norm's count of batches), where a layer may hold some.
    let counted: Vec<_> = layers
        .iter()
        .filter(|l| l.kind.params().is_some_and(|p| p.counts()))
        .collect();
    let counts = (!counted.is_empty()).then(|| {
        let visits = |method: TokenStream, reference: TokenStream| -> TokenStream {
            counted
                .iter()
                .map(|l| {
                    let (field, prefix) = (&l.field, format!("{}.", l.prefix));
                    quote!(#rt::with_prefix(prefix, #prefix, |__name| {
                        #rt::Tensors::#method(#reference self.#field, __name, f);
                    });)
                })
                .collect()
        };
        let (counts, counts_mut) = (
            visits(quote!(visit_counts), quote!(&)),
            visits(quote!(visit_counts_mut), quote!(&mut)),
        );
        quote! {
            fn visit_counts(&self, prefix: &str, f: &mut #rt::CountVisitor) {
                #counts
            }

            fn visit_counts_mut(&mut self, prefix: &str, f: &mut #rt::CountVisitorMut) {
                #counts_mut
            }
        }
    });
    // `__backward` recomputes the forward pass, then goes down to the input's gradient.
    let nested_flops = Count::sum([
        chain_forward_flops(&model.layers),
        chain_backward_flops(&model.layers, true),
    ]);
    // A sequence network is not a layer of another yet: its state would have to nest too.
    let nested = (!model.is_sequence()).then(|| {
        quote! {
            impl #rt::Nested<#scalar, #input, #output> for #ident {
                #rt::nested_impl!(#scalar, #input, #output, #grads);
            }
        }
    });
    quote! {
        impl #rt::Tensors<#scalar> for #ident {
            fn visit(&self, prefix: &str, f: &mut #rt::Visitor<#scalar>) {
                #visit
            }

            fn visit_mut(&mut self, prefix: &str, f: &mut #rt::VisitorMut<#scalar>) {
                #visit_mut
            }

            #counts
        }

        #nested

        impl #rt::FlatTensors for #grads {
            type Scalar = #scalar;

            fn for_each_tensor_mut(&mut self, f: &mut impl ::core::ops::FnMut(&mut [#scalar])) {
                #flat
            }
        }

        impl #rt::Network for #ident {
            type Scalar = #scalar;
            type Grads = #grads;
            #rt::network_consts!();
            const TENSORS: usize = #tensors;
            const FLOPS_NESTED_BACKWARD: usize = #nested_flops;

            fn reset(&mut self, init: &mut #rt::Init) {
                #resets
            }

            #[allow(unused_variables)]
            fn tensors<'a>(&'a mut self, gradients: &'a #grads, params: &mut [&'a mut [#scalar]], grads: &mut [&'a [#scalar]], at: &mut usize) {
                let frozen = self.__frozen;
                #pairs
            }
        }
    }
}

/// `const` assertions for sizes that meet a nested network's, each spanned on the user's token
/// and saying in words what was expected. They go outside the generated block, so that rustc
/// names the failing constant `_` rather than `_::_`.
pub fn size_checks(model: &Network) -> TokenStream {
    let rt = super::rt_absolute();
    model
        .size_checks
        .iter()
        .map(|check| {
            let (actual, declared) = (check.actual.tokens(), check.declared.tokens());
            let parts = check.message.iter().map(|part| match part {
                Part::Text(text) => quote!(#text),
                // Suffixed: `concatcp!` must know the literal's type to print it.
                Part::Size(Size::Known(n)) => quote!(#n),
                Part::Size(size) => size.tokens(),
            });
            let name = format!("network `{}`: ", model.ident);
            quote_spanned! {check.span=>
                const _: () = ::core::assert!(
                    #actual == #declared,
                    "{}",
                    #rt::concatcp!(#name, #(#parts),*)
                );
            }
        })
        .collect()
}
