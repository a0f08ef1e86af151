//! `Residual(layer, ...)`: `y = x + f(x)` for the chain `f` of its layers.

use proc_macro2::TokenStream;
use quote::quote;

use super::chain_forward_flops;
use super::{
    ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Site, Value, chain_activations,
    chain_backward_flops,
};
use crate::model::{Count, Layer, Part, Size, has_params};

/// The table entry.
pub const ENTRY: Entry<'static> = Entry {
    name: "Residual",
    args: &[ArgSpec {
        name: "layers",
        kind: ArgKind::Layers,
    }],
    build: |args| {
        let inner = args
            .into_iter()
            .flat_map(|v| match v {
                Value::Layers(layers) => layers,
                _ => Vec::new(),
            })
            .collect();
        Box::new(Residual(inner))
    },
};

/// A residual block over its layers.
struct Residual(Vec<Layer>);

impl Kind for Residual {
    fn torch(&self) -> String {
        "`x + nn.Sequential(...)(x)`".into()
    }

    fn inner(&self) -> Option<&[Layer]> {
        Some(&self.0)
    }

    fn inner_mut(&mut self) -> Option<&mut Vec<Layer>> {
        Some(&mut self.0)
    }

    fn check_block(&self, input: &Size, output: &Size) -> Option<Vec<Part>> {
        Some(vec![
            Part::Text(
                "a `Residual` block adds its input to its output, so it must keep its size: \
                 it takes "
                    .into(),
            ),
            Part::Size(input.clone()),
            Part::Text(" features and its layers produce ".into()),
            Part::Size(output.clone()),
        ])
    }

    // y = x + f(x)
    fn forward(&self, s: &Site) -> TokenStream {
        let (first, _) = s.chain.var_ref(&s.inner_prefix, 0);
        let input = &s.input_ref;
        let (body, last) = s.chain.forward(&self.0, &s.inner_prefix);
        let sum = s.bind(quote!(#last + #first));
        quote!(let #first = #input; #body #sum)
    }

    // Both paths of y = x + f(x) carry the gradient: dx = dy + f'(x)^T dy.
    fn backward(&self, s: &Site) -> TokenStream {
        let (first, _) = s.chain.var_ref(&s.inner_prefix, 0);
        let input = &s.input_ref;
        let n = self.0.len();
        let (top, bottom) = (
            quote::format_ident!("d{}{n}", s.inner_prefix),
            quote::format_ident!("d{}0", s.inner_prefix),
        );
        let dy = &s.grad_output;
        let body = s
            .chain
            .backward(&self.0, &s.inner_prefix, s.grad_input.is_some());
        let merge = s
            .grad_input
            .as_ref()
            .map(|dx| quote!(let #dx = #bottom + &#dy;));
        quote!(let #first = #input; let #top = #dy; #body #merge)
    }

    // f(x), then the addition of x.
    fn forward_flops(&self, layer: &Layer) -> Count {
        Count::sum([chain_forward_flops(&self.0), layer.output.count()])
    }

    // The block's own chain, then the sum of its two paths' gradients.
    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        if !(pass_down || has_params(&self.0)) {
            return Count::default();
        }
        let merge = if pass_down {
            layer.output.count()
        } else {
            Count::default()
        };
        Count::sum([chain_backward_flops(&self.0, pass_down), merge])
    }

    fn activations(&self, layer: &Layer) -> Count {
        Count::sum([chain_activations(&self.0), layer.output.count()])
    }

    fn equations(&self, eq: &Equations<'_>) -> Lines {
        let (input, output) = (&eq.input, &eq.output);
        let prefix = format!("{}_", eq.output);
        let first = format!("{prefix}0");
        let (inner, last) = (eq.chain)(&self.0, &first, &prefix, eq.pass_down);
        let mut forward = vec![format!("{first} = {input} (the block's input)")];
        forward.extend(inner.forward);
        forward.push(format!("{output} = {input} + {last} (the skip connection)"));
        let mut backward = vec![format!("δ{last} = δ{output} (into the block)")];
        backward.extend(inner.backward);
        if eq.pass_down {
            backward.push(format!("δ{input} = δ{output} + δ{first} (both paths)"));
        }
        Lines { forward, backward }
    }
}
