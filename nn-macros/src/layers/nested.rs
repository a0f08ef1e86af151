//! A network declared elsewhere with `network!`, used by its name as one layer.
//!
//! Its code goes through the runtime's `Nested<T, IN, OUT>` trait, seen with the scalar type
//! and sizes the surrounding network gives it: a nested network of another scalar type is then
//! one clear error on its name rather than type mismatches inside the generated code.

use super::TensorSpec;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};

use super::{Access, Kind, Params, Role, Site};
use crate::model::{Count, Layer, Port, Scalar, Size};

/// The nested network, by its type name.
pub struct Nested(pub Ident);

impl Nested {
    /// A span with the macro's own hygiene, located at the nested network's name: code that
    /// involves that network reports its type errors on the user's token, while its
    /// variables still resolve as the macro's.
    fn at(&self) -> Span {
        Span::call_site().located_at(self.0.span())
    }

    /// `<Net as Nested<T, IN, OUT>>`.
    fn as_layer(&self, layer: &Layer, scalar: Scalar) -> TokenStream {
        let (rt, net) = (crate::expand::rt(), &self.0);
        let (t, i, o) = (scalar.tokens(), layer.input.tokens(), layer.output.tokens());
        quote_spanned!(self.at()=> <#net as #rt::Nested<#t, #i, #o>>)
    }

    /// One of the network's consts, through the `Network` trait.
    fn constant(&self, name: &str) -> TokenStream {
        let (rt, net, name) = (crate::expand::rt(), &self.0, quote::format_ident!("{name}"));
        quote!(<#net as #rt::Network>::#name)
    }
}

impl Kind for Nested {
    fn equations(&self, eq: &super::Equations<'_>) -> super::Lines {
        let (input, output, net) = (&eq.input, &eq.output, &self.0);
        let mut backward = vec![format!(
            "∂L/∂{}.* from δ{output}: the backward pass of [`{net}`] (see its docs)",
            eq.field
        )];
        if eq.pass_down {
            backward.push(format!(
                "δ{input} = the gradient [`{net}`]'s backward pass passes down"
            ));
        }
        super::Lines {
            forward: vec![format!("{output} = {net}({input})")],
            backward,
        }
    }

    // A nested network takes a flat vector of its `IN` features.
    fn flat_only(&self) -> bool {
        true
    }

    fn torch(&self) -> String {
        format!("the network [`{}`]", self.0)
    }

    fn declared_input(&self) -> Option<Size> {
        Some(Size::Of(self.0.clone(), Port::In))
    }

    fn input_span(&self) -> Option<Span> {
        Some(self.0.span())
    }

    fn output_span(&self) -> Option<Span> {
        Some(self.0.span())
    }

    fn adopts_input(&self) -> bool {
        false
    }

    fn output(&self, _input: &Size) -> Size {
        Size::Of(self.0.clone(), Port::Out)
    }

    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (layer, param, input) = (self.as_layer(s.layer, s.scalar), &s.param, &s.input_ref);
        s.bind(quote_spanned!(self.at()=> #layer::nested_forward(&#param, #input)))
    }

    fn backward(&self, s: &Site) -> TokenStream {
        let (layer, param, grad) = (self.as_layer(s.layer, s.scalar), &s.param, &s.grad);
        let (input, dy) = (&s.input_ref, &s.grad_output);
        let call =
            quote_spanned!(self.at()=> #layer::nested_backward(&#param, #input, &#dy, &mut #grad));
        match &s.grad_input {
            Some(dx) => quote!(let #dx = #call;),
            None => quote!(let _ = #call;),
        }
    }

    fn forward_flops(&self, _layer: &Layer) -> Count {
        Count::symbolic(self.constant("FLOPS_FORWARD"))
    }

    fn backward_flops(&self, _layer: &Layer, _pass_down: bool) -> Count {
        Count::symbolic(self.constant("FLOPS_NESTED_BACKWARD"))
    }

    fn activations(&self, _layer: &Layer) -> Count {
        let (rt, bytes) = (crate::expand::rt(), self.constant("ACTIVATION_BYTES"));
        let net = &self.0;
        Count::symbolic(quote!(#bytes / <<#net as #rt::Network>::Scalar as #rt::Real>::BYTES))
    }
}

impl Params for Nested {
    // It may hold a batch norm: its counts are asked for.
    fn counts(&self) -> bool {
        true
    }

    fn ty(&self, _layer: &Layer, _scalar: Scalar, role: Role) -> TokenStream {
        let net = &self.0;
        match role {
            Role::Params => quote!(#net),
            Role::Grads => {
                let rt = crate::expand::rt_absolute();
                quote!(<#net as #rt::Network>::Grads)
            }
        }
    }

    fn count(&self, _layer: &Layer) -> Count {
        Count::symbolic(self.constant("PARAMS"))
    }

    fn tensors(&self) -> Count {
        Count::symbolic(self.constant("TENSORS"))
    }

    fn reset(&self, place: &TokenStream) -> TokenStream {
        let rt = crate::expand::rt();
        quote_spanned!(self.at()=> #rt::Network::reset(&mut #place, init);)
    }

    fn visit(&self, layer: &Layer, t: Scalar, place: &TokenStream, access: Access) -> TokenStream {
        let layer = self.as_layer(layer, t);
        match access {
            Access::Named {
                name,
                mutable: false,
            } => quote_spanned!(self.at()=> #layer::nested_visit(&#place, #name, f);),
            Access::Named {
                name,
                mutable: true,
            } => quote_spanned!(self.at()=> #layer::nested_visit_mut(&mut #place, #name, f);),
            Access::Paired { grad } => quote_spanned!(self.at()=>
                #layer::nested_tensors(&mut #place, &#grad, params, grads, at);
            ),
            // Through `Nested`, as the pairing: a nested network of another scalar type is then
            // the one error `Nested` reports, not a second one about the closure's type.
            Access::Flat => quote_spanned!(self.at()=>
                #layer::nested_flat_grads(&mut #place, &mut *f);
            ),
        }
    }

    fn doc(&self, layer: &Layer, role: Role) -> String {
        let what = match role {
            Role::Params => "Parameters of",
            Role::Grads => "Gradient of the loss with respect to the parameters of",
        };
        let (p, net) = (&layer.prefix, &self.0);
        format!(" {what} layer `{p}`, the nested network [`{net}`]; `state_dict` names `{p}.*`.")
    }

    // Only the compiler knows a nested network's tensors.
    fn tensor_list(&self, _: &Layer) -> Option<Vec<TensorSpec>> {
        None
    }
}
