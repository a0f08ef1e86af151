//! The inherent methods of the network and gradient structs, and their `Network` impl.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::structs::{Role, field_type};
use super::{cost, passes};
use crate::model::{Layer, Network, Op, Part, Scalar, sum};

/// Everything generated besides the struct definitions.
pub fn impls(model: &Network) -> TokenStream {
    let ident = &model.ident;
    let grads = model.grads_ident();
    let consts = consts(model);
    let constructors = constructors(model);
    let inference = inference(model);
    let training = training(model);
    let nested = nested_backward(model);
    let network = network_impl(model);
    let checks = size_checks(model);
    let zeros = constructor(
        model,
        Role::Grads,
        |_| quote!(zeros()),
        |net| quote!(<#net as ::nn_runtime::__private::Network>::zero_grads()),
    );
    let boxed_grads_doc = format!(
        " All gradients zero, built directly on the heap: for networks too large for the stack \
         (see [`{ident}::gradients_into`])."
    );
    quote! {
        impl #ident {
            #consts
            #constructors
            #inference
            #training
            #nested
        }

        impl #grads {
            /// All gradients zero.
            pub fn zeros() -> Self {
                #zeros
            }

            #[doc = #boxed_grads_doc]
            pub fn boxed_zeros() -> ::std::boxed::Box<Self> {
                ::nn_runtime::__private::boxed_zeroed::<Self>()
            }
        }

        #network
        #checks
    }
}

/// `IN`, `OUT` and `PARAMS`.
fn consts(model: &Network) -> TokenStream {
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let params = sum(model.layers.iter().map(Layer::param_count));
    let flops_forward = cost::forward(&model.layers);
    let flops_backward = cost::backward(&model.layers, false);
    let activations = cost::activations(&model.layers);
    let bytes = proc_macro2::Literal::usize_unsuffixed(match model.scalar {
        Scalar::F32 => 4,
        Scalar::F64 => 8,
    });
    quote! {
        /// Number of input features: the rows of an input batch.
        pub const IN: usize = #input;
        /// Number of output features: the rows of an output batch.
        pub const OUT: usize = #output;
        /// Number of learned scalars (weights and biases of every layer).
        pub const PARAMS: usize = #params;
        /// Floating-point operations of the forward pass, per sample (a multiply-add counts
        /// 2, any other operation or elementary function 1).
        pub const FLOPS_FORWARD: usize = #flops_forward;
        /// Floating-point operations of the backward pass of `gradients` and `train_step`, per
        /// sample, counted as [`FLOPS_FORWARD`](Self::FLOPS_FORWARD) is. It stops where the
        /// chain rule does: the first layer with parameters passes no gradient down.
        pub const FLOPS_BACKWARD: usize = #flops_backward;
        /// Floating-point operations of a training step per sample: forward and backward.
        /// The loss and the optimizer's update (a few operations per parameter, once per
        /// step, not per sample) come on top.
        pub const FLOPS_TRAIN: usize = Self::FLOPS_FORWARD + Self::FLOPS_BACKWARD;
        /// Bytes of the parameters.
        pub const PARAM_BYTES: usize = Self::PARAMS * #bytes;
        /// Bytes of one set of gradients (as many as the parameters).
        pub const GRAD_BYTES: usize = Self::PARAM_BYTES;
        /// Bytes of activations the forward pass keeps for the backward pass, per sample: every
        /// layer's output.
        pub const ACTIVATION_BYTES: usize = (#activations) * #bytes;

        /// Bytes of an optimizer's state for this network, given the scalars it keeps per
        /// parameter: 0 for `Sgd` (1 with momentum), 2 for `Adam` and `AdamW`, 3 for
        /// `RmsProp`. These are the values themselves; the runtime's optimizers start each
        /// tensor's run of them on a cache line, which adds less than 64 bytes of padding per
        /// tensor and run (and 60 more per tensor) on top.
        pub const fn optimizer_state_bytes(slots_per_param: usize) -> usize {
            slots_per_param * Self::PARAM_BYTES
        }
    }
}

/// `Self { l0: ..., ... }` over every layer with parameters: `table(call)` builds a table
/// layer's value by calling its type, `nested(net)` a nested network's.
fn constructor(
    model: &Network,
    role: Role,
    table: impl Fn(&Layer) -> TokenStream,
    nested: impl Fn(&Ident) -> TokenStream,
) -> TokenStream {
    let fields = model.param_layers().into_iter().map(|layer| {
        let field = layer.field();
        let value = match &layer.op {
            Op::Nested(net) => nested(net),
            _ => {
                let ty = field_type(model, layer, role);
                let call = table(layer);
                quote!(<#ty>::#call)
            }
        };
        quote!(#field: #value,)
    });
    let scratch = matches!(role, Role::Params)
        .then(|| quote!(__scratch: ::nn_runtime::__private::Scratch::new(),));
    quote!(Self { #(#fields)* #scratch })
}

/// `zeros()` and `seeded(seed)`.
fn constructors(model: &Network) -> TokenStream {
    let ident = &model.ident;
    quote! {
        /// A network whose weights and biases are all zero.
        pub fn zeros() -> Self {
            <Self as ::nn_runtime::__private::Network>::zeros()
        }

        /// PyTorch's default `nn.Linear` initialisation, reproducibly from `seed`: every weight
        /// and bias uniform in `+-1/sqrt(in_features)` of its layer. The same seed gives the
        /// same network on every run and machine.
        pub fn seeded(seed: u64) -> Self {
            <#ident as ::nn_runtime::__private::Network>::init(&mut ::nn_runtime::__private::Init::new(seed))
        }

        /// Like [`zeros`](Self::zeros), built directly on the heap: for networks too large
        /// for the stack.
        pub fn boxed_zeros() -> ::std::boxed::Box<Self> {
            ::nn_runtime::__private::boxed_zeroed::<Self>()
        }

        /// Like [`seeded`](Self::seeded) (the same parameters for the same seed), built and
        /// initialised directly on the heap: for networks too large for the stack.
        pub fn boxed_seeded(seed: u64) -> ::std::boxed::Box<Self> {
            let mut net = Self::boxed_zeros();
            ::nn_runtime::__private::Network::reset(&mut *net, &mut ::nn_runtime::__private::Init::new(seed));
            net
        }
    }
}

/// The batch types of the signatures, `SMatrix<T, IN, B>` and `SMatrix<T, OUT, B>` (with
/// `columns` for `B`), spanned on the sizes in the user's declaration, so that type errors
/// about them that rustc places on the definition point at the declared size.
fn io_types(model: &Network, columns: TokenStream) -> (TokenStream, TokenStream) {
    let scalar = model.scalar.tokens();
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let (input_span, output_span) = model.io_spans;
    (
        quote_spanned!(input_span=> ::nn_runtime::__private::SMatrix<#scalar, #input, #columns>),
        quote_spanned!(output_span=> ::nn_runtime::__private::SMatrix<#scalar, #output, #columns>),
    )
}

/// `forward` and `forward_batch`.
fn inference(model: &Network) -> TokenStream {
    let (one_in, one_out) = io_types(model, quote!(1));
    let (batch_in, batch_out) = io_types(model, quote!(B));
    let (statements, result) = passes::forward(model);
    // Parameter names keep the macro's own hygiene (the body must see them even when the
    // declaration comes from a user's `macro_rules!`); only their types carry user spans.
    let (one_ty, batch_ty) = (quote!(&#one_in), quote!(&#batch_in));
    let (x, x0) = (quote!(x: #one_ty), quote!(x0: #batch_ty));
    let forward_batch = multiversion(&Version {
        doc: quote! {
            /// Runs a batch through the network: `xs` is `IN x B`, one column per sample; the
            /// result is `OUT x B`, column `b` the output for sample `b`.
        },
        name: "forward_batch",
        generics: quote!(<const B: usize>),
        turbofish: quote!(::<B>),
        receiver: quote!(&self),
        params: quote!(#x0),
        args: quote!(x0),
        ret: batch_out,
        body: &|_| quote!(#statements #result),
    });
    quote! {
        /// Runs one sample (`IN` features) through the network, giving `OUT` features.
        pub fn forward(&self, #x) -> #one_out {
            self.forward_batch(x)
        }

        #forward_batch
    }
}

/// `gradients` and `train_step`.
fn training(model: &Network) -> TokenStream {
    let (ident, scalar) = (&model.ident, model.scalar.tokens());
    let (batch_in, batch_out) = io_types(model, quote!(B));
    let grads = model.grads_ident();
    let (forward, result) = passes::forward(model);
    let backward = passes::backward(model, false);
    let loss_grad = format_ident!("d{}", model.layers.len());
    let loss_bound = quote!(::nn_runtime::__private::Loss<#scalar>);
    let gradients_into = multiversion(&Version {
        doc: quote! {
            /// Like [`gradients`](Self::gradients), writing every gradient into `grads` (all of
            /// it is overwritten) and returning the loss: no allocation, no large value on the
            /// stack.
        },
        name: "gradients_into",
        generics: quote!(<L: #loss_bound, const B: usize>),
        turbofish: quote!(::<L, B>),
        receiver: quote!(&self),
        params: quote!(xs: &#batch_in, ys: &#batch_out, loss: &L, grads: &mut #grads),
        args: quote!(xs, ys, loss, grads),
        ret: scalar.clone(),
        body: &|_| {
            quote! {
                let x0 = xs;
                #forward
                let (value, #loss_grad) = loss.value_and_grad(&#result, ys);
                #backward
                value
            }
        },
    });
    let train_step = multiversion(&Version {
        doc: quote! {
            /// One training step on a batch: forward, loss, backward, and the optimizer's
            /// update of every parameter. Returns the batch loss before the update.
            ///
            /// The gradients go to space the network keeps on the heap, made on the first
            /// step: later steps allocate nothing.
        },
        name: "train_step",
        generics: quote!(<L: #loss_bound, O: ::nn_runtime::__private::Optimizer<#scalar>, const B: usize>),
        turbofish: quote!(::<L, O, B>),
        receiver: quote!(&mut self),
        params: quote!(xs: &#batch_in, ys: &#batch_out, loss: &L, optimizer: &mut O),
        args: quote!(xs, ys, loss, optimizer),
        ret: scalar.clone(),
        body: &|copy| {
            let gradients = format_ident!("__gradients_into{copy}");
            let fused = fused_sgd_step(model);
            quote! {
                #fused
                const TENSORS: usize = <#ident as ::nn_runtime::__private::Network>::TENSORS;
                let mut grads = self.__scratch.take();
                // SAFETY (AVX2 copy): called from the copy compiled for the same features.
                #[allow(unused_unsafe)]
                let value = unsafe { self.#gradients::<L, B>(xs, ys, loss, &mut grads) };
                let mut params: [&mut [#scalar]; TENSORS] =
                    ::core::array::from_fn(|_| -> &mut [#scalar] { &mut [] });
                let mut slices: [&[#scalar]; TENSORS] = [&[]; TENSORS];
                ::nn_runtime::__private::Network::tensors(self, &grads, &mut params, &mut slices, &mut 0);
                optimizer.step(&mut params, &slices);
                self.__scratch.put(grads);
                value
            }
        },
    });
    quote! {
        /// The loss of a batch and its gradient with respect to every parameter.
        ///
        /// `xs` is `IN x B` and `ys` `OUT x B`, one column per sample. The backward pass is
        /// straight-line code derived by `network!` through the chain rule. The gradients are
        /// returned by value; for a network too large for the stack use
        /// [`gradients_into`](Self::gradients_into) with a boxed gradient struct.
        pub fn gradients<L: ::nn_runtime::__private::Loss<#scalar>, const B: usize>(
            &self,
            xs: &#batch_in,
            ys: &#batch_out,
            loss: &L,
        ) -> (#scalar, #grads) {
            let mut grads = #grads::zeros();
            let value = self.gradients_into(xs, ys, loss, &mut grads);
            (value, grads)
        }

        #gradients_into
        #train_step
    }
}

/// The start of `train_step`'s body for a plain SGD optimizer: the whole step with the update
/// fused into the backward pass, returning early. A network nesting another takes the general
/// path (gradients, then `Optimizer::step`), since a nested network's backward pass stores
/// its gradients.
fn fused_sgd_step(model: &Network) -> TokenStream {
    if model.nests_networks() {
        return TokenStream::new();
    }
    let (forward, result) = passes::forward(model);
    let backward = passes::backward_sgd(model, &quote!(rate));
    let loss_grad = format_ident!("d{}", model.layers.len());
    quote! {
        if let ::core::option::Option::Some(rate) =
            ::nn_runtime::__private::Optimizer::plain_sgd_rate(optimizer)
        {
            let x0 = xs;
            #forward
            let (value, #loss_grad) = loss.value_and_grad(&#result, ys);
            #backward
            return value;
        }
    }
}

/// One hot entry point: its signature and body, for [`multiversion`].
struct Version<'a> {
    doc: TokenStream,
    name: &'a str,
    generics: TokenStream,
    turbofish: TokenStream,
    receiver: TokenStream,
    params: TokenStream,
    args: TokenStream,
    ret: TokenStream,
    /// The body, given the suffix of the copy it is in (`_avx2` or `_portable`), so that it
    /// can call the same copy of the other entry points.
    body: &'a dyn Fn(&str) -> TokenStream,
}

/// A public entry point that runs a copy of its body compiled for AVX2 and FMA where the
/// processor has them, and a portable copy elsewhere.
///
/// Users build with default flags (baseline x86-64: SSE2, no fused multiply-add), so this is
/// how the unrolled small-layer code gets 8-lane vectors and fused multiply-adds: the body and
/// every kernel it inlines are compiled twice, and one cached feature check picks the copy.
fn multiversion(v: &Version) -> TokenStream {
    let Version {
        doc,
        name,
        generics,
        turbofish,
        receiver,
        params,
        args,
        ret,
        body,
    } = v;
    let public = format_ident!("{name}");
    let (fast, portable) = (
        format_ident!("__{name}_avx2"),
        format_ident!("__{name}_portable"),
    );
    let (fast_body, portable_body) = (body("_avx2"), body("_portable"));
    quote! {
        #doc
        #[inline]
        pub fn #public #generics(#receiver, #params) -> #ret {
            #[cfg(target_arch = "x86_64")]
            {
                if ::nn_runtime::__private::has_avx2_fma() {
                    // SAFETY: the processor has AVX2 and FMA, as just checked.
                    return unsafe { self.#fast #turbofish(#args) };
                }
            }
            self.#portable #turbofish(#args)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn #fast #generics(#receiver, #params) -> #ret {
            #fast_body
        }

        #[inline(always)]
        fn #portable #generics(#receiver, #params) -> #ret {
            #portable_body
        }
    }
}

/// The backward pass as a network nested in another needs it: from the gradient of its output
/// to the gradient of its input.
fn nested_backward(model: &Network) -> TokenStream {
    let scalar = model.scalar.tokens();
    let (input, output) = (model.input().tokens(), model.output().tokens());
    let grads = model.grads_ident();
    let (forward, _) = passes::forward(model);
    let backward = passes::backward(model, true);
    let top = format_ident!("d{}", model.layers.len());
    quote! {
        /// Backward pass from `d_output` (the gradient of a loss with respect to this
        /// network's output, `OUT x B`) to the gradient with respect to `x0` (`IN x B`),
        /// writing the parameter gradients into `grads`. For networks nesting this one.
        #[doc(hidden)]
        #[allow(unused_variables)]
        pub fn __backward<const B: usize>(
            &self,
            x0: &::nn_runtime::__private::SMatrix<#scalar, #input, B>,
            d_output: &::nn_runtime::__private::SMatrix<#scalar, #output, B>,
            grads: &mut #grads,
        ) -> ::nn_runtime::__private::SMatrix<#scalar, #input, B> {
            #forward
            let #top = *d_output;
            #backward
            d0
        }
    }
}

/// `impl Network for Name`.
fn network_impl(model: &Network) -> TokenStream {
    let (ident, scalar, grads) = (&model.ident, model.scalar.tokens(), model.grads_ident());
    let tensors = sum(model
        .param_layers()
        .into_iter()
        .map(|layer| match &layer.op {
            Op::Nested(net) => quote!(<#net as ::nn_runtime::__private::Network>::TENSORS),
            Op::Table(kind, _) => {
                let n = proc_macro2::Literal::usize_unsuffixed(
                    kind.params.map_or(0, |p| p.tensors.len()),
                );
                quote!(#n)
            }
            Op::Residual(_) => quote!(0),
        }));
    let zeros = constructor(
        model,
        Role::Params,
        |_| quote!(zeros()),
        |net| quote!(<#net as ::nn_runtime::__private::Network>::zeros()),
    );
    let resets = model.param_layers().into_iter().map(|layer| {
        let field = layer.field();
        match &layer.op {
            Op::Nested(net) => {
                quote_spanned!(passes::at(net)=> ::nn_runtime::__private::Network::reset(&mut self.#field, init);)
            }
            _ => quote!(self.#field.reset(init);),
        }
    });
    let visits = model.param_layers().into_iter().map(|layer| {
        let field = layer.field();
        match &layer.op {
            Op::Table(kind, _) => {
                let names = kind
                    .params
                    .map_or(&[][..], |p| p.tensors)
                    .iter()
                    .map(|t| format_ident!("{t}"));
                quote!(#(
                    params[*at] = self.#field.#names.as_mut_slice();
                    grads[*at] = gradients.#field.#names.as_slice();
                    *at += 1;
                )*)
            }
            Op::Nested(net) => {
                let nested = passes::nested(model, layer, net);
                quote_spanned!(passes::at(net)=>
                    #nested::nested_tensors(&mut self.#field, &gradients.#field, params, grads, at);
                )
            }
            Op::Residual(_) => TokenStream::new(),
        }
    });
    let tensors_impl = tensors_impl(model);
    // `__backward` recomputes the forward pass, then goes down to the input's gradient.
    let nested_backward_flops = sum([
        cost::forward(&model.layers),
        cost::backward(&model.layers, true),
    ]
    .into_iter());
    let (input, output) = (model.input().tokens(), model.output().tokens());
    quote! {
        #tensors_impl

        impl ::nn_runtime::__private::Nested<#scalar, #input, #output> for #ident {
            #[inline(always)]
            fn nested_forward<const B: usize>(
                &self,
                x: &::nn_runtime::__private::SMatrix<#scalar, #input, B>,
            ) -> ::nn_runtime::__private::SMatrix<#scalar, #output, B> {
                self.forward_batch(x)
            }

            #[inline(always)]
            fn nested_backward<const B: usize>(
                &self,
                x: &::nn_runtime::__private::SMatrix<#scalar, #input, B>,
                d_output: &::nn_runtime::__private::SMatrix<#scalar, #output, B>,
                grads: &mut #grads,
            ) -> ::nn_runtime::__private::SMatrix<#scalar, #input, B> {
                self.__backward(x, d_output, grads)
            }

            fn nested_tensors<'a>(
                &'a mut self,
                gradients: &'a #grads,
                params: &mut [&'a mut [#scalar]],
                grads: &mut [&'a [#scalar]],
                at: &mut usize,
            ) {
                ::nn_runtime::__private::Network::tensors(self, gradients, params, grads, at);
            }

            fn nested_visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &[usize], &[#scalar])) {
                ::nn_runtime::__private::Tensors::visit(self, prefix, f);
            }

            fn nested_visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &[usize], &mut [#scalar])) {
                ::nn_runtime::__private::Tensors::visit_mut(self, prefix, f);
            }
        }

        impl ::nn_runtime::__private::Network for #ident {
            type Scalar = #scalar;
            type Grads = #grads;
            const IN: usize = #ident::IN;
            const OUT: usize = #ident::OUT;
            const PARAMS: usize = #ident::PARAMS;
            const TENSORS: usize = #tensors;
            const FLOPS_FORWARD: usize = #ident::FLOPS_FORWARD;
            const FLOPS_BACKWARD: usize = #ident::FLOPS_BACKWARD;
            const FLOPS_NESTED_BACKWARD: usize = #nested_backward_flops;
            const ACTIVATION_BYTES: usize = #ident::ACTIVATION_BYTES;

            fn zeros() -> Self {
                #zeros
            }

            fn reset(&mut self, init: &mut ::nn_runtime::__private::Init) {
                #(#resets)*
            }

            fn zero_grads() -> #grads {
                #grads::zeros()
            }

            fn tensors<'a>(
                &'a mut self,
                gradients: &'a #grads,
                params: &mut [&'a mut [#scalar]],
                grads: &mut [&'a [#scalar]],
                at: &mut usize,
            ) {
                #(#visits)*
            }
        }
    }
}

/// `impl Tensors for Name`: every tensor by its `state_dict` name, delegating to each layer's
/// parameters (a `Linear`, or a nested network) with the layer's place as the prefix.
fn tensors_impl(model: &Network) -> TokenStream {
    let (ident, scalar) = (&model.ident, model.scalar.tokens());
    let (mut visits, mut visits_mut) = (TokenStream::new(), TokenStream::new());
    for layer in model.param_layers() {
        let field = layer.field();
        let prefix = format!("{}.", layer.state_dict_prefix());
        let name = quote!(&::std::format!("{prefix}{}", #prefix));
        match &layer.op {
            Op::Nested(net) => {
                let nested = passes::nested(model, layer, net);
                visits.extend(quote_spanned!(passes::at(net)=> #nested::nested_visit(&self.#field, #name, f);));
                visits_mut.extend(quote_spanned!(passes::at(net)=> #nested::nested_visit_mut(&mut self.#field, #name, f);));
            }
            _ => {
                visits.extend(
                    quote!(::nn_runtime::__private::Tensors::visit(&self.#field, #name, f);),
                );
                visits_mut.extend(quote!(::nn_runtime::__private::Tensors::visit_mut(&mut self.#field, #name, f);));
            }
        }
    }
    quote! {
        impl ::nn_runtime::__private::Tensors<#scalar> for #ident {
            fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &[usize], &[#scalar])) {
                #visits
            }

            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &[usize], &mut [#scalar])) {
                #visits_mut
            }
        }
    }
}

/// `const` assertions for sizes that meet a nested network's, each spanned on the user's token
/// and saying in words what was expected.
fn size_checks(model: &Network) -> TokenStream {
    model
        .size_checks
        .iter()
        .map(|check| {
            let (actual, declared) = (check.actual.tokens(), check.declared.tokens());
            let parts = check.message.iter().map(|part| match part {
                Part::Text(text) => quote!(#text),
                // Suffixed: `concatcp!` must know the literal's type to print it.
                Part::Size(crate::model::Size::Known(n)) => quote!(#n),
                Part::Size(size) => size.tokens(),
            });
            let name = format!("network `{}`: ", model.ident);
            quote_spanned! {check.span=>
                const _: () = ::core::assert!(
                    #actual == #declared,
                    "{}",
                    ::nn_runtime::__private::concatcp!(#name, #(#parts),*)
                );
            }
        })
        .collect()
}
