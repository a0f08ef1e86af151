//! `Linear(in_features, out_features)`: `z = W x + b`, as `nn.Linear`.

use super::TensorSpec;
use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::{Access, ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Params, Role, Site, size};
use crate::model::{Count, Layer, Scalar, Size};

/// The table entry.
pub const ENTRY: Entry<'static> = Entry {
    name: "Linear",
    args: &[
        ArgSpec {
            name: "in_features",
            kind: ArgKind::Size,
        },
        ArgSpec {
            name: "out_features",
            kind: ArgKind::Size,
        },
    ],
    build: |args| {
        let ((input, span), (output, out_span)) = (size(&args, 0), size(&args, 1));
        Box::new(Linear {
            input,
            output,
            span,
            out_span,
        })
    },
};

/// A fully connected layer.
struct Linear {
    input: usize,
    output: usize,
    /// Where `in_features` is written.
    span: Span,
    /// Where `out_features` is written.
    out_span: Span,
}

impl Kind for Linear {
    fn torch(&self) -> String {
        format!("`nn.Linear({}, {})`", self.input, self.output)
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

    fn flat_only(&self) -> bool {
        true
    }

    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    // z = W x + b
    fn forward(&self, s: &Site) -> TokenStream {
        let (rt, param, input) = (s.rt, &s.param, &s.input_ref);
        s.bind(quote!(#rt::linear_forward(&#param, #input)))
    }

    // dW = dz x^T, db = sum_b dz, dx = W^T dz (only where a layer below needs it)
    fn backward(&self, s: &Site) -> TokenStream {
        let (rt, param, grad) = (s.rt, &s.param, &s.grad);
        let (input, dz) = (&s.input_ref, &s.grad_output);
        match (&s.grad_input, s.sgd_rate) {
            (Some(dx), None) => {
                quote!(let #dx = #rt::linear_backward(&#param, #input, &#dz, &mut #grad);)
            }
            (None, None) => quote!(#rt::linear_backward_params(#input, &#dz, &mut #grad);),
            (Some(dx), Some(rate)) => {
                quote!(let #dx = #rt::linear_backward_sgd(&mut #param, #input, &#dz, #rate);)
            }
            (None, Some(rate)) => quote!(#rt::linear_update_sgd(&mut #param, #input, &#dz, #rate);),
        }
    }

    fn backward_input(&self, s: &Site) -> Option<TokenStream> {
        let (rt, param, dz) = (s.rt, &s.param, &s.grad_output);
        let dx = s.grad_input.as_ref()?;
        Some(quote!(let #dx = #rt::linear_backward_input(&#param, &#dz);))
    }

    fn equations(&self, eq: &Equations<'_>) -> Lines {
        let (input, output, f) = (&eq.input, &eq.output, &eq.field);
        let mut backward = vec![
            format!("∂L/∂{f}.weight = δ{output} · {input}ᵀ"),
            format!("∂L/∂{f}.bias = Σ δ{output} over the batch"),
        ];
        if eq.pass_down {
            backward.push(format!("δ{input} = {f}.weightᵀ · δ{output}"));
        }
        Lines {
            forward: vec![format!("{output} = {f}.weight · {input} + {f}.bias")],
            backward,
        }
    }

    // A multiply-add per weight (the bias is the first add).
    fn forward_flops(&self, layer: &Layer) -> Count {
        Count::product(&layer.input, &layer.output).scaled(2)
    }

    // dW = dz x^T and db = sum of dz; dx = W^T dz.
    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        let weights = Count::product(&layer.input, &layer.output);
        let params = Count::sum([weights.scaled(2), layer.output.count()]);
        let input = weights.scaled(if pass_down { 2 } else { 0 });
        Count::sum([params, input])
    }
}

impl Params for Linear {
    fn ty(&self, layer: &Layer, scalar: Scalar, _role: Role) -> TokenStream {
        let rt = crate::expand::rt_absolute();
        let (scalar, input, output) =
            (scalar.tokens(), layer.input.tokens(), layer.output.tokens());
        quote!(#rt::Linear<#scalar, #input, #output>)
    }

    fn count(&self, layer: &Layer) -> Count {
        Count::sum([
            Count::product(&layer.input, &layer.output),
            layer.output.count(),
        ])
    }

    fn tensors(&self) -> Count {
        Count::known(2)
    }

    fn reset(&self, place: &TokenStream) -> TokenStream {
        quote!(#place.reset(init);)
    }

    fn visit(&self, _: &Layer, _: Scalar, place: &TokenStream, access: Access) -> TokenStream {
        super::visit_block(place, access)
    }

    fn fuses_sgd(&self) -> bool {
        true
    }

    fn doc(&self, layer: &Layer, role: Role) -> String {
        let what = match role {
            Role::Params => "Parameters of",
            Role::Grads => "Gradient of the loss with respect to the parameters of",
        };
        let p = &layer.prefix;
        format!(
            " {what} layer `{p}`, `{}`: weight `{} x {}` (out x in), bias `{}`; `state_dict` \
             names `{p}.weight`, `{p}.bias`.",
            layer.source,
            layer.output.describe(),
            layer.input.describe(),
            layer.output.describe(),
        )
    }

    fn tensor_list(&self, layer: &Layer) -> Option<Vec<TensorSpec>> {
        let (Size::Known(input), Size::Known(output)) = (&layer.input, &layer.output) else {
            return None;
        };
        Some(vec![
            TensorSpec::float("weight", vec![*output, *input], quote!(.weight)),
            TensorSpec::float("bias", vec![*output], quote!(.bias)),
        ])
    }
}
