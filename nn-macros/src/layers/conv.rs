//! `Conv1d(in_channels, out_channels, kernel_size, dilation = d, bias = true)` on features with
//! no length axis: the causal streaming convolution of a sequence network. At each time step
//! it sees the last `(kernel_size - 1) * d + 1` inputs, kept in a ring buffer in the network's
//! state, which equals torch's `nn.Conv1d` applied to the sequence left-padded by
//! `(kernel_size - 1) * d`; a stack of them alone (a TCN) is a sequence network.
//!
//! Its steps follow the recurrent layers' contract (`recurrent.rs`): the forward step pushes
//! the input into the buffer, the backward step adds the parameters' gradients and leaves in
//! the state's gradient what earlier steps' inputs receive from later steps' outputs.

use super::TensorSpec;
use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::conv2d::{ARGS, Conv};
use super::{Access, Entry, Equations, Kind, Lines, Params, Role, Site, StateSpec};
use crate::model::{Count, Layer, Scalar, Shape, Size};

/// A causal convolution steps one sample at a time and pads the past itself: the only stride,
/// padding and groups it takes are torch's defaults.
const STEPS: &str = "the causal streaming `Conv1d` steps one time step at a time and pads the \
past itself (left, by (kernel_size - 1) * dilation)";

/// The table entry, with torch's arguments in torch's order (those of `Conv2d`).
pub const CONV1D: Entry<'static> = Entry {
    name: "Conv1d",
    args: ARGS,
    build: |args| {
        Box::new(Conv1d {
            shaped: Conv::new(1, &args),
            causal: None,
        })
    },
};

/// A `Conv1d`: over a sample's length where its features have the shape `(c, l)`, causal over
/// time where they are flat. Which one is known once its input's shape is.
struct Conv1d {
    shaped: Conv,
    causal: Option<CausalConv>,
}

impl Conv1d {
    /// The kind it turned out to be.
    fn kind(&self) -> &dyn Kind {
        match &self.causal {
            Some(causal) => causal,
            None => &self.shaped,
        }
    }

    /// The causal form, from the arguments as written.
    fn causal(&self) -> Result<CausalConv, String> {
        if let Some(argument) = self.shaped.non_default() {
            return Err(format!(
                "`{argument}` must be torch's default here: on flat features {STEPS}"
            ));
        }
        let (kernel, dilation) = self.shaped.causal_parts()?;
        let (input, output, span, out_span) = self.shaped.channels();
        Ok(CausalConv {
            input,
            output,
            kernel,
            dilation,
            bias: self.shaped.bias,
            span,
            out_span,
        })
    }
}

impl Kind for Conv1d {
    fn torch(&self) -> String {
        self.kind().torch()
    }

    fn shape(&mut self, input: &Shape, features: &Size) -> Result<Shape, String> {
        if *input == Shape::Flat {
            self.causal = Some(self.causal()?);
            return Ok(Shape::Flat);
        }
        self.shaped.shape(input, features)
    }

    // Before its input's shape is known it is taken for the causal form, whose input size it
    // states: a `Conv1d` over a length comes after the `Unflatten` that states one first.
    fn declared_input(&self) -> Option<Size> {
        match &self.causal {
            None if self.shaped.checked().is_none() => Some(Size::Known(self.shaped.channels().0)),
            _ => self.kind().declared_input(),
        }
    }

    fn input_span(&self) -> Option<Span> {
        self.kind().input_span()
    }

    fn output_span(&self) -> Option<Span> {
        self.kind().output_span()
    }

    fn output(&self, input: &Size) -> Size {
        self.kind().output(input)
    }

    fn params(&self) -> Option<&dyn Params> {
        self.kind().params()
    }

    fn state(&self, layer: &Layer, scalar: Scalar) -> Option<StateSpec> {
        self.kind().state(layer, scalar)
    }

    fn forward(&self, s: &Site) -> TokenStream {
        self.kind().forward(s)
    }

    fn backward(&self, s: &Site) -> TokenStream {
        self.kind().backward(s)
    }

    fn forward_flops(&self, layer: &Layer) -> Count {
        self.kind().forward_flops(layer)
    }

    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        self.kind().backward_flops(layer, pass_down)
    }

    fn activations(&self, layer: &Layer) -> Count {
        self.kind().activations(layer)
    }

    fn equations(&self, eq: &Equations) -> Lines {
        self.kind().equations(eq)
    }
}

/// A causal convolution over time.
struct CausalConv {
    input: usize,
    output: usize,
    kernel: usize,
    dilation: usize,
    bias: bool,
    span: Span,
    out_span: Span,
}

impl CausalConv {
    /// The inputs it sees at each step: the receptive field, the ring buffer's length.
    fn span(&self) -> usize {
        (self.kernel - 1) * self.dilation + 1
    }
}

impl Kind for CausalConv {
    fn torch(&self) -> String {
        let mut text = format!("nn.Conv1d({}, {}, {}", self.input, self.output, self.kernel);
        if self.dilation > 1 {
            text.push_str(&format!(", dilation={}", self.dilation));
        }
        if !self.bias {
            text.push_str(", bias=False");
        }
        format!(
            "`{text})` on the sequence left-padded by {}",
            self.span() - 1
        )
    }

    fn declared_input(&self) -> Option<Size> {
        Some(Size::Known(self.input))
    }

    fn input_span(&self) -> Option<Span> {
        Some(self.span)
    }

    fn output_span(&self) -> Option<Span> {
        Some(self.out_span)
    }

    fn output(&self, _input: &Size) -> Size {
        Size::Known(self.output)
    }

    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    fn state(&self, _layer: &Layer, scalar: Scalar) -> Option<StateSpec> {
        let rt = crate::expand::rt_absolute();
        let (t, input, span, kernel) = (scalar.tokens(), self.input, self.span(), self.kernel);
        Some(StateSpec {
            ty: quote!(#rt::ConvState<#t, #input, #span, __B>),
            cache: quote!(#rt::ConvCache<#t, #input, #kernel, __B>),
            doc: format!(
                " The last {span} inputs (`{input} x B` each, one column per stream) in a ring \
                 buffer, `buffer`, whose next slot is `next`: the left padding torch's \
                 `Conv1d` would see."
            ),
        })
    }

    // The step: the previous state in, the new one left, what the backward step needs kept.
    fn forward(&self, s: &Site) -> TokenStream {
        super::step_forward(s, self.state(s.layer, s.scalar))
    }

    // Backpropagation through one step: parameters' gradients added, the state's carried back.
    fn backward(&self, s: &Site) -> TokenStream {
        super::step_backward(s)
    }

    fn forward_flops(&self, _layer: &Layer) -> Count {
        Count::known(2 * self.output * self.input * self.kernel)
    }

    // The weights' gradient and the inputs': twice the forward.
    fn backward_flops(&self, _layer: &Layer, _pass_down: bool) -> Count {
        Count::known(4 * self.output * self.input * self.kernel)
    }

    fn activations(&self, layer: &Layer) -> Count {
        Count::sum([layer.output.count(), Count::known(self.input * self.kernel)])
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output, f) = (&eq.input, &eq.output, &eq.field);
        let (k, d) = (self.kernel, self.dilation);
        let mut backward = vec![format!(
            "∂L/∂{f}.weight[:, :, k] += δ{output} · {input}(t - ({k} - 1 - k)·{d})ᵀ, ∂L/∂{f}.bias += Σ δ{output}; the taps' gradients of earlier inputs wait in δstate.{f}"
        )];
        if eq.pass_down {
            backward.push(format!(
                "δ{input} = Σ_k {f}.weight[:, :, k]ᵀ · δ{output}(t + ({k} - 1 - k)·{d}), from this step and the later ones"
            ));
        }
        Lines {
            forward: vec![format!(
                "{output} = {f}.bias + Σ_k {f}.weight[:, :, k] · {input}(t - ({k} - 1 - k)·{d}), the past in state.{f}"
            )],
            backward,
        }
    }
}

impl Params for CausalConv {
    fn ty(&self, _: &Layer, scalar: Scalar, _: Role) -> TokenStream {
        let rt = crate::expand::rt_absolute();
        let (t, input, output, kernel) = (scalar.tokens(), self.input, self.output, self.kernel);
        let (ik, dilation, span, bias) = (input * kernel, self.dilation, self.span(), self.bias);
        quote!(#rt::CausalConv1d<#t, #input, #output, #kernel, #ik, #dilation, #span, #bias>)
    }

    fn count(&self, _: &Layer) -> Count {
        let bias = if self.bias { self.output } else { 0 };
        Count::known(self.output * self.input * self.kernel + bias)
    }

    fn tensors(&self) -> Count {
        Count::known(if self.bias { 2 } else { 1 })
    }

    fn reset(&self, place: &TokenStream) -> TokenStream {
        quote!(#place.reset(init);)
    }

    fn visit(&self, _: &Layer, _: Scalar, place: &TokenStream, access: Access) -> TokenStream {
        super::visit_block(place, access)
    }

    fn doc(&self, layer: &Layer, role: Role) -> String {
        let what = match role {
            Role::Params => "Parameters of",
            Role::Grads => "Gradient of the loss with respect to the parameters of",
        };
        let p = &layer.prefix;
        format!(
            " {what} layer `{p}`, `{}`: weight `{} x {} x {}` (out x in x kernel, stored as \
             `out x (in * kernel)`), bias `{}`; `state_dict` names `{p}.weight`, `{p}.bias`.",
            layer.source, self.output, self.input, self.kernel, self.output
        )
    }

    fn tensor_list(&self, _: &Layer) -> Option<Vec<TensorSpec>> {
        let shape = vec![self.output, self.input, self.kernel];
        let mut list = vec![TensorSpec::float("weight", shape, quote!(.weight))];
        if self.bias {
            list.push(TensorSpec::float("bias", vec![self.output], quote!(.bias)));
        }
        Some(list)
    }
}
