//! `PReLU(num_parameters = 1, init = 0.25)`: `x` where positive, else `a x` with a learned
//! slope `a`, one shared or one per feature, as `nn.PReLU`.
//!
//! The function is an expression of `crate::expr` with the slope as a learned variable, so
//! both derivatives, with respect to `x` (passed down) and to the slope (its gradient), are
//! derived, computed together in one closure that shares what they have in common.

use super::TensorSpec;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ExprClosure;

use super::{
    Access, ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Params, Role, Site, Value, number,
};
use crate::expr::{self, Compiled, Var};
use crate::model::{Count, Layer, Scalar, Size};

/// The function, in terms of the learned slope `weight`.
const SOURCE: &str = "|x| if x > 0.0 { x } else { weight * x }";

/// The table entry.
pub const ENTRY: Entry<'static> = Entry {
    name: "PReLU",
    args: &[
        ArgSpec {
            name: "num_parameters",
            kind: ArgKind::OptionalSize { default: 1 },
        },
        ArgSpec {
            name: "init",
            kind: ArgKind::Number {
                default: Some(0.25),
            },
        },
    ],
    build: |args| {
        let (count, span) = match args.first() {
            Some(Value::Size(n, span)) => (*n, *span),
            _ => (1, Span::call_site()),
        };
        let init = args.get(1).map_or(0.25, number);
        // Fixed text, compiled by a unit test; the identity stands in were it broken.
        let compiled = syn::parse_str::<ExprClosure>(SOURCE)
            .and_then(|c| expr::compile(&c, &[], Some("weight")))
            .unwrap_or_else(|_| expr::identity());
        Box::new(PRelu {
            count,
            span,
            init,
            compiled,
        })
    },
};

/// A PReLU layer.
struct PRelu {
    /// `num_parameters`: 1, or the number of features.
    count: usize,
    /// Where `num_parameters` is written.
    span: Span,
    /// The slopes' initial value.
    init: f64,
    compiled: Compiled,
}

impl Kind for PRelu {
    fn torch(&self) -> String {
        format!(
            "`nn.PReLU(num_parameters={}, init={})`",
            self.count, self.init
        )
    }

    // One slope per feature needs that many features; one shared slope takes any.
    fn declared_input(&self) -> Option<Size> {
        (self.count > 1).then_some(Size::Known(self.count))
    }

    fn input_span(&self) -> Option<Span> {
        Some(self.span)
    }

    // One slope per feature: torch's per-channel slopes of shaped features are not these.
    fn flat_only(&self) -> bool {
        self.count > 1
    }

    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (rt, param, input) = (s.rt, &s.param, &s.input_ref);
        let body = self.compiled.value_tokens(s.scalar);
        s.bind(quote!(#rt::map_param(#input, &#param.weight, |x, a| #body)))
    }

    // dx = dy * df/dx, d(weight) = sum of dy * df/da over the elements each slope serves.
    fn backward(&self, s: &Site) -> TokenStream {
        let (rt, param, grad) = (s.rt, &s.param, &s.grad);
        let (input, dy) = (&s.input_ref, &s.grad_output);
        let x = self.compiled.variable(Var::X, true);
        let a = self.compiled.variable(Var::Param, true);
        match &s.grad_input {
            Some(dx) => {
                let both = self.compiled.both_derivatives_tokens(s.scalar);
                quote!(let #dx = #rt::chain_param(#dy, #input, &#param.weight, &mut #grad.weight, |#x, #a| #both);)
            }
            None => {
                let da = self.compiled.param_derivative_tokens(s.scalar);
                quote!(#rt::chain_param_only(&#dy, #input, &#param.weight, &mut #grad.weight, |#x, #a| #da);)
            }
        }
    }

    // A comparison and a multiply.
    fn forward_flops(&self, layer: &Layer) -> Count {
        layer.output.count().scaled(2)
    }

    // The slope's gradient (a comparison, a multiply, an add) and, passed down, a multiply.
    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        layer.output.count().scaled(if pass_down { 4 } else { 3 })
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let c = &self.compiled;
        let (input, output, field) = (&eq.input, &eq.output, &eq.field);
        let a = format!("{field}.weight");
        let mut backward = vec![format!(
            "∂L/∂{a} = Σ δ{output} ⊙ ∂f/∂a({input}), ∂f/∂a = {}",
            c.show_param_derivative(&a).unwrap_or_default()
        )];
        if eq.pass_down {
            backward.push(format!(
                "δ{input} = δ{output} ⊙ ∂f/∂x({input}), ∂f/∂x = {}",
                c.show_derivative(&a)
            ));
        }
        Lines {
            forward: vec![format!(
                "{output} = f({input}), f(x) = {} (a slope per {})",
                c.show_value(&a),
                if self.count == 1 { "layer" } else { "feature" }
            )],
            backward,
        }
    }
}

impl Params for PRelu {
    fn ty(&self, _: &Layer, scalar: Scalar, _: Role) -> TokenStream {
        let rt = crate::expand::rt_absolute();
        let (scalar, count) = (scalar.tokens(), self.count);
        quote!(#rt::PRelu<#scalar, #count>)
    }

    fn count(&self, _: &Layer) -> Count {
        Count::known(self.count)
    }

    fn tensors(&self) -> Count {
        Count::known(1)
    }

    // torch fills the slopes with `init`.
    fn reset(&self, place: &TokenStream) -> TokenStream {
        let (rt, init) = (crate::expand::rt(), self.init);
        quote!(#place.reset(#rt::Real::cast(#init));)
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
            " {what} layer `{p}`, `{}`: {} slope{} (`weight`); `state_dict` name `{p}.weight`.",
            layer.source,
            self.count,
            if self.count == 1 {
                ""
            } else {
                "s, one per feature"
            }
        )
    }

    fn tensor_list(&self, _: &Layer) -> Option<Vec<TensorSpec>> {
        Some(vec![TensorSpec::float(
            "weight",
            vec![self.count],
            quote!(.weight),
        )])
    }
}
