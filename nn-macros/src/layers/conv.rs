//! `Conv1d(in_channels, out_channels, kernel_size, dilation = d, bias = true)` on features with
//! no length axis: the causal streaming convolution of a sequence network. At each time step
//! it sees the last `(kernel_size - 1) * d + 1` inputs, kept in a ring buffer in the network's
//! state, which equals torch's `nn.Conv1d` applied to the sequence left-padded by
//! `(kernel_size - 1) * d`; a stack of them alone (a TCN) is a sequence network.
//!
//! Its steps follow the recurrent layers' contract (`recurrent.rs`): the forward step pushes
//! the input into the buffer, the backward step adds the parameters' gradients and leaves in
//! the state's gradient what earlier steps' inputs receive from later steps' outputs.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::{
    Access, ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Params, Role, Site, StateSpec, Value,
    size,
};
use crate::model::{Count, Layer, Scalar, Size};

/// A causal convolution steps one sample at a time and pads the past itself: the only stride,
/// padding and groups it takes are torch's defaults.
const STEPS: &str = "the causal streaming `Conv1d` steps one time step at a time and pads the \
past itself (left, by (kernel_size - 1) * dilation)";

/// The table entry, with torch's arguments in torch's order.
pub const CONV1D: Entry<'static> = Entry {
    name: "Conv1d",
    args: &[
        ArgSpec {
            name: "in_channels",
            kind: ArgKind::Size,
        },
        ArgSpec {
            name: "out_channels",
            kind: ArgKind::Size,
        },
        ArgSpec {
            name: "kernel_size",
            kind: ArgKind::Size,
        },
        ArgSpec {
            name: "stride",
            kind: ArgKind::Dim {
                allowed: &[1],
                why: STEPS,
            },
        },
        ArgSpec {
            name: "padding",
            kind: ArgKind::Dim {
                allowed: &[0],
                why: STEPS,
            },
        },
        ArgSpec {
            name: "dilation",
            kind: ArgKind::OptionalSize { default: 1 },
        },
        ArgSpec {
            name: "groups",
            kind: ArgKind::Dim {
                allowed: &[1],
                why: "grouped convolutions are not supported yet",
            },
        },
        ArgSpec {
            name: "bias",
            kind: ArgKind::Bool { default: true },
        },
    ],
    build: |args| {
        let ((input, span), (output, out_span), (kernel, _)) =
            (size(&args, 0), size(&args, 1), size(&args, 2));
        let dilation = match args.get(5) {
            Some(Value::Size(d, _)) => *d,
            _ => 1,
        };
        let bias = !matches!(args.get(7), Some(Value::Bool(false)));
        Box::new(CausalConv {
            input,
            output,
            kernel,
            dilation,
            bias,
            span,
            out_span,
        })
    },
};

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
}
