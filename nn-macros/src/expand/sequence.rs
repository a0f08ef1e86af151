//! What a sequence network (one holding a recurrent layer or a causal convolution) gets
//! besides the rest: its state struct, stepping, and training through time.
//!
//! The passes are the same as every network's, with the state threaded through: the forward
//! pass reads each sequence layer's state as the previous step's and leaves the new one; the
//! backward pass takes the gradient with respect to the new state from later steps (`carry`)
//! and leaves the one with respect to the previous state. `__sequence` runs a window forward
//! step by step, keeping each step's cache on a tape, then backward from the last step to the
//! first, adding each step's parameter gradients: backpropagation through time, unrolled by
//! the loop, each step's chain rule the generated `__backward`.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{quote, quote_spanned};

use super::passes::Pass;
use super::{rt, rt_absolute};
use crate::layers::{Access, Chain};
use crate::model::{Network, Size};

/// The owned copy of one step's cache: the types the forward pass caches, in order.
fn step_types(model: &Network) -> Vec<TokenStream> {
    let pass = Pass::forward(model);
    let _ = pass.forward(&model.layers, "");
    pass.cached().into_iter().map(|(_, ty)| ty).collect()
}

/// `tokens` with the generated batch parameter `__B` renamed `B`, for the public struct.
fn public_b(tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            proc_macro2::TokenTree::Ident(i) if i == "__B" => {
                proc_macro2::TokenTree::Ident(Ident::new("B", i.span()))
            }
            proc_macro2::TokenTree::Group(g) => {
                let mut group = proc_macro2::Group::new(g.delimiter(), public_b(g.stream()));
                group.set_span(g.span());
                proc_macro2::TokenTree::Group(group)
            }
            other => other,
        })
        .collect()
}

/// `struct {Name}State<const B: usize = 1>`, outside the generated block.
pub fn state_struct(model: &Network) -> TokenStream {
    if !model.is_sequence() {
        return TokenStream::new();
    }
    let (rt, scalar, vis) = (rt_absolute(), model.scalar.tokens(), &model.vis);
    let (ident, state, grads) = (&model.ident, model.state_ident(), model.grads_ident());
    let fields: TokenStream = model
        .state_layers()
        .into_iter()
        .filter_map(|layer| {
            let spec = layer.kind.state(layer, model.scalar)?;
            let (field, ty, doc) = (&layer.field, public_b(spec.ty), spec.doc);
            let doc = format!(" Layer `{}`, `{}`:{doc}", layer.prefix, layer.source);
            Some(quote!(#[doc = #doc] pub #field: #ty,))
        })
        .collect();
    // The tape's steps: the cache types, with the alias `__M` spelled out (it is private to
    // the generated block).
    let steps = step_types(model).into_iter().map(|ty| {
        let text = ty.to_string();
        if let Some(size) = text
            .strip_prefix("__M <")
            .and_then(|rest| rest.strip_suffix(", __B >"))
        {
            let size: TokenStream = size.parse().unwrap_or_default();
            quote!(#rt::SMatrix<#scalar, #size, B>)
        } else {
            public_b(ty)
        }
    });
    let doc = format!(
        " The state [`{ident}`] carries from one time step to the next, for `B` streams at \
         once (one column each; `B = 1` for one stream): each sequence layer's field, torch's \
         `h_0` (and `c_0`) of that layer. Start from [`zeros`]({state}::zeros); \
         [`{ident}::step`] and [`{ident}::step_batch`] advance it, [`{ident}::train_sequence`] \
         reads it as a window's initial state and leaves the final one. One set of weights \
         serves any number of states (stereo channels, many robots)."
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #state<const B: usize = 1> {
            #fields
            /// `train_sequence`'s kept steps of a window; not part of the value.
            #[doc(hidden)]
            pub __tape: #rt::Tape<(#(#steps,)*)>,
            /// `train_sequence`'s reusable gradients of one step; not part of the value.
            #[doc(hidden)]
            pub __step: #rt::Scratch<#grads>,
        }
    }
}

/// `{Name}State::zeros`, inside the generated block.
pub fn state_impl(model: &Network) -> TokenStream {
    if !model.is_sequence() {
        return TokenStream::new();
    }
    let (rt, state) = (rt(), model.state_ident());
    let fields: Vec<&Ident> = model.state_layers().iter().map(|l| &l.field).collect();
    quote! {
        impl<const __B: usize> #state<__B> {
            /// The zero state (torch's default `h_0 = 0`, `c_0 = 0`) of every sequence layer.
            pub fn zeros() -> Self {
                Self {
                    #(#fields: #rt::zeroed(),)*
                    __tape: #rt::Tape::new(),
                    __step: #rt::Scratch::new(),
                }
            }
        }

        impl<const __B: usize> ::core::default::Default for #state<__B> {
            fn default() -> Self {
                Self::zeros()
            }
        }
    }
}

/// `__clear` and `__accumulate` on the gradient struct: a window's gradient is the sum of its
/// steps'.
pub fn grads_methods(model: &Network) -> TokenStream {
    if !model.is_sequence() {
        return TokenStream::new();
    }
    let (rt, scalar, ident) = (rt(), model.scalar.tokens(), &model.ident);
    let pairs: TokenStream = model
        .param_layers()
        .into_iter()
        .filter_map(|l| {
            let (field, params) = (&l.field, l.kind.params()?);
            Some(params.visit(
                l,
                model.scalar,
                &quote!(self.#field),
                Access::Paired {
                    grad: &quote!(gradients.#field),
                },
            ))
        })
        .collect();
    quote! {
        #rt::if_std! {
        /// Adds `gradients`, tensor by tensor (for backpropagation through time, which needs
        /// the runtime's `std`).
        fn __accumulate(&mut self, gradients: &Self) {
            const TENSORS: usize = <#ident as #rt::Network>::TENSORS;
            let mut params: [&mut [#scalar]; TENSORS] = ::core::array::from_fn(|_| ::core::default::Default::default());
            let mut grads: [&[#scalar]; TENSORS] = [&[]; TENSORS];
            let at = &mut 0usize;
            {
                let (params, grads) = (&mut params[..], &mut grads[..]);
                #pairs
            }
            for (mine, theirs) in params.iter_mut().zip(grads.iter()) {
                for (a, b) in mine.iter_mut().zip(theirs.iter()) {
                    *a += *b;
                }
            }
        }
        }

        /// Sets every gradient to zero, in place.
        fn __clear(&mut self) {
            #rt::zero_in_place(self);
        }
    }
}

/// The inference step, `__step`: the forward pass with the state, keeping nothing for a
/// backward pass (sequence layers step without a cache).
pub fn step_pass(model: &Network) -> TokenStream {
    let pass = Pass::infer(model);
    let (code, last) = pass.forward(&model.layers, "");
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let state = model.state_ident();
    quote! {
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn __step<const __B: usize>(&self, x0: &__M<#input, __B>, state: &mut #state<__B>) -> __M<#output, __B> {
            let this = self;
            #code
            #last
        }
    }
}

/// The entry points of a sequence network.
pub fn entry_points(model: &Network, last: &Literal) -> TokenStream {
    let (rt, scalar, grads, ident, state) = (
        rt(),
        model.scalar.tokens(),
        model.grads_ident(),
        &model.ident,
        model.state_ident(),
    );
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let (input_span, output_span) = model.io_spans;
    let batch_in = quote_spanned!(input_span=> #rt::SMatrix<#scalar, #input, __B>);
    let batch_out = quote_spanned!(output_span=> #rt::SMatrix<#scalar, #output, __B>);
    let one_in = quote_spanned!(input_span=> #rt::SVector<#scalar, #input>);
    let one_out = quote_spanned!(output_span=> #rt::SVector<#scalar, #output>);
    let loss = quote!(__L: #rt::Loss<#scalar>);
    let optimizer = quote!(__O: #rt::Optimizer<#scalar>);
    let steps = (0..=last.to_string().parse::<usize>().unwrap_or(0)).map(Literal::usize_unsuffixed);
    let owned = steps
        .clone()
        .map(|i| quote!(::core::clone::Clone::clone(c.#i)));
    let refs = steps.map(|i| quote!(&step.#i));
    let block = block_form(model, &one_in, &one_out);
    quote! {
        /// One time step of one stream: `x` in, the output out, `state` advanced. `&self`:
        /// the weights are shared, each stream has its own state. Allocates nothing.
        pub fn step(&self, x: &#one_in, state: &mut #state<1>) -> #one_out {
            self.step_batch(x, state)
        }

        /// One time step of `B` streams at once, one column each, each with its column of
        /// `state`. Allocates nothing.
        pub fn step_batch<const __B: usize>(&self, xs: &#batch_in, state: &mut #state<__B>) -> #batch_out {
            #rt::simd(#[inline(always)] || self.__step(xs, state))
        }

        #block

        /// Runs a batch as one time step of `B` streams from the zero state (a sequence
        /// network's `forward_batch`; [`step_batch`](Self::step_batch) carries a state).
        pub fn forward_batch<const __B: usize>(&self, xs: &#batch_in) -> #batch_out {
            self.step_batch(xs, &mut #state::zeros())
        }

        /// One sample as one time step from the zero state; see [`step`](Self::step).
        pub fn forward(&self, x: &#one_in) -> #one_out {
            self.forward_batch(x)
        }

        /// The loss of a batch taken as one time step from the zero state, and its gradient
        /// with respect to every parameter (windows of several steps:
        /// [`sequence_gradients`](Self::sequence_gradients)).
        pub fn gradients<#loss, const __B: usize>(&self, xs: &#batch_in, ys: &#batch_out, loss: &__L) -> (#scalar, #grads) {
            let mut grads = #grads::zeros();
            let value = self.gradients_into(xs, ys, loss, &mut grads);
            (value, grads)
        }

        /// Like [`gradients`](Self::gradients), overwriting `grads`. Allocates nothing.
        pub fn gradients_into<#loss, const __B: usize>(&self, xs: &#batch_in, ys: &#batch_out, loss: &__L, grads: &mut #grads) -> #scalar {
            #rt::simd(#[inline(always)] || {
                let (mut state, mut carry) = (#state::<__B>::zeros(), #state::<__B>::zeros());
                grads.__clear();
                let value = Self::__forward(self, xs, &mut state, #[inline(always)] |this, c| {
                    let (value, top) = loss.value_and_grad(c.#last, ys);
                    this.__backward::<__B, false, true>(xs, c, top, grads, &mut carry);
                    value
                });
                self.__clear_frozen(grads);
                value
            })
        }

        /// One training step on a batch taken as one time step from the zero state (windows:
        /// [`train_sequence`](Self::train_sequence)); returns the loss before the update.
        pub fn train_step<#loss, #optimizer, const __B: usize>(&mut self, xs: &#batch_in, ys: &#batch_out, loss: &__L, optimizer: &mut __O) -> #scalar {
            let mut grads = self.__scratch.take();
            let value = self.gradients_into(xs, ys, loss, &mut grads);
            const TENSORS: usize = <#ident as #rt::Network>::TENSORS;
            #rt::optimizer_step::<_, _, TENSORS>(self, &mut grads, optimizer);
            self.__scratch.put(grads);
            value
        }

        // Backpropagation through time keeps every step of a window on a heap tape: with the
        // runtime's `std` feature only (the test is the runtime's, hence its macro).
        #rt::if_std! {
        /// The loss of a window and its gradient with respect to every parameter, by
        /// backpropagation through time: `xs[t]` and `ys[t]` are step `t`'s inputs and targets
        /// (one column per sequence of the batch), `state` the state before the first step.
        /// The loss is the mean over the steps of each step's loss: for `Mse`, torch's
        /// `nn.MSELoss()` of the `(L, B, OUT)` output. Steps beyond the shorter slice are
        /// ignored.
        pub fn sequence_gradients<#loss, const __B: usize>(&self, xs: &[#batch_in], ys: &[#batch_out], loss: &__L, state: &#state<__B>) -> (#scalar, #grads) {
            let (value, grads, _) = self.sequence_gradients_and_state(xs, ys, loss, state);
            (value, grads)
        }

        /// Like [`sequence_gradients`](Self::sequence_gradients), and the gradient of the loss
        /// with respect to the initial `state`, as a state (each field the gradient of that
        /// field).
        pub fn sequence_gradients_and_state<#loss, const __B: usize>(&self, xs: &[#batch_in], ys: &[#batch_out], loss: &__L, state: &#state<__B>) -> (#scalar, #grads, #state<__B>) {
            let mut grads = #grads::zeros();
            let (mut state, mut carry) = (::core::clone::Clone::clone(state), #state::<__B>::zeros());
            let mut tape = #rt::Tape::new();
            let mut step = #grads::zeros();
            let value = #rt::simd(#[inline(always)] || {
                self.__sequence(xs, ys, loss, &mut state, &mut grads, &mut carry, &mut tape, &mut step)
            });
            (value, grads, carry)
        }

        /// One training step on a window (truncated backpropagation through time): the loss
        /// of [`sequence_gradients`](Self::sequence_gradients) before the update, then the
        /// optimizer's update. `state` is the window's initial state on entry and its final
        /// state on return, detached, ready for the next window. After the first window of a
        /// length, windows up to that length allocate nothing.
        pub fn train_sequence<#loss, #optimizer, const __B: usize>(&mut self, xs: &[#batch_in], ys: &[#batch_out], loss: &__L, optimizer: &mut __O, state: &mut #state<__B>) -> #scalar {
            let mut grads = self.__scratch.take();
            let mut step = state.__step.take();
            let mut tape = ::core::mem::take(&mut state.__tape);
            let mut carry = #state::<__B>::zeros();
            let value = #rt::simd(#[inline(always)] || {
                self.__sequence(xs, ys, loss, state, &mut grads, &mut carry, &mut tape, &mut step)
            });
            state.__tape = tape;
            state.__step.put(step);
            const TENSORS: usize = <#ident as #rt::Network>::TENSORS;
            #rt::optimizer_step::<_, _, TENSORS>(self, &mut grads, optimizer);
            self.__scratch.put(grads);
            value
        }

        /// Backpropagation through time over a window: forward step by step keeping each
        /// step's cache on `tape`, then backward from the last step, each step's parameter
        /// gradients added into `grads` and the state's gradient carried back in `carry`.
        #[allow(clippy::too_many_arguments)]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn __sequence<#loss, const __B: usize>(
            &self,
            xs: &[#batch_in],
            ys: &[#batch_out],
            loss: &__L,
            state: &mut #state<__B>,
            grads: &mut #grads,
            carry: &mut #state<__B>,
            tape: &mut #rt::Tape<__Step<__B>>,
            step_grads: &mut #grads,
        ) -> #scalar {
            let steps = xs.len().min(ys.len());
            grads.__clear();
            tape.clear();
            for x in &xs[..steps] {
                Self::__forward(self, x, state, #[inline(always)] |_, c| {
                    tape.push((#(#owned,)*));
                });
            }
            let scale = <#scalar as #rt::Real>::cast(1.0 / steps.max(1) as f64);
            let mut total = <#scalar as #rt::Real>::cast(0.0);
            for (t, step) in tape.steps().iter().enumerate().rev() {
                let c: __Cache<'_, __B> = (#(#refs,)*);
                let (value, top) = loss.value_and_grad(c.#last, &ys[t]);
                total += value;
                step_grads.__clear();
                self.__backward::<__B, false, true>(&xs[t], c, top * scale, step_grads, carry);
                grads.__accumulate(step_grads);
            }
            self.__clear_frozen(grads);
            total * scale
        }
        }
    }
}

/// The block form for audio callbacks: a slice of inputs into a slice of outputs, as plain
/// scalars when the network has one input and one output.
fn block_form(model: &Network, one_in: &TokenStream, one_out: &TokenStream) -> TokenStream {
    let (scalar, state) = (model.scalar.tokens(), model.state_ident());
    let scalar_io = *model.input() == Size::Known(1) && *model.output() == Size::Known(1);
    if scalar_io {
        quote! {
            /// Runs `input` through the network one sample per time step into `output` (as
            /// many samples as the shorter of the two), advancing `state`: the form for an
            /// audio callback. Allocates nothing, branches on nothing but the length.
            pub fn process_block(&self, input: &[#scalar], output: &mut [#scalar], state: &mut #state<1>) {
                for (x, y) in input.iter().zip(output.iter_mut()) {
                    *y = self.step(&[*x].into(), state)[0];
                }
            }
        }
    } else {
        quote! {
            /// Runs `input` through the network one vector per time step into `output` (as
            /// many steps as the shorter of the two), advancing `state`. Allocates nothing.
            pub fn process_block(&self, input: &[#one_in], output: &mut [#one_out], state: &mut #state<1>) {
                for (x, y) in input.iter().zip(output.iter_mut()) {
                    *y = self.step(x, state);
                }
            }
        }
    }
}

/// `type __Step<__B>`, the owned copy of a step's cache, inside the generated block.
pub fn step_alias(model: &Network) -> TokenStream {
    if !model.is_sequence() {
        return TokenStream::new();
    }
    let types = step_types(model);
    let rt = rt();
    // Used by backpropagation through time only, which needs the runtime's `std`.
    quote!(#rt::if_std! { type __Step<const __B: usize> = (#(#types,)*); })
}
