//! `LayerNorm(normalized_shape, eps = 1e-5, elementwise_affine = true, bias = true)`: torch's
//! layer normalisation of each sample's last axis (all its features when they are flat), the
//! same in training and inference.

use super::TensorSpec;
use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::{
    ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Params, Role, Site, Value, number, size,
};
use crate::model::{Count, Layer, Scalar, Shape, Size};

/// The table entry, torch's arguments in torch's order.
pub const LAYER_NORM: Entry<'static> = Entry {
    name: "LayerNorm",
    args: &[
        ArgSpec {
            name: "normalized_shape",
            kind: ArgKind::Size,
        },
        ArgSpec {
            name: "eps",
            kind: ArgKind::Number {
                default: Some(1e-5),
            },
        },
        ArgSpec {
            name: "elementwise_affine",
            kind: ArgKind::Bool { default: true },
        },
        ArgSpec {
            name: "bias",
            kind: ArgKind::Bool { default: true },
        },
    ],
    build: |args| {
        let (group, span) = size(&args, 0);
        let flag = |i: usize| !matches!(args.get(i), Some(Value::Bool(false)));
        Box::new(LayerNorm {
            group,
            span,
            eps: args.get(1).map_or(1e-5, number),
            affine: flag(2),
            // As torch's flag: without `elementwise_affine` there is no bias either way.
            bias: flag(3),
            features: None,
        })
    },
};

/// A layer normalisation.
struct LayerNorm {
    /// `normalized_shape`: the length of the axis normalised.
    group: usize,
    span: Span,
    eps: f64,
    affine: bool,
    bias: bool,
    /// All the features of a sample, once its shape is known: a whole number of groups.
    features: Option<usize>,
}

impl LayerNorm {
    fn ty(&self, scalar: Scalar) -> TokenStream {
        let rt = crate::expand::rt_absolute();
        let (t, g, affine, bias) = (scalar.tokens(), self.group, self.affine, self.bias);
        quote!(#rt::LayerNorm<#t, #g, #affine, #bias>)
    }

    /// Its learned tensors: weight and bias, the weight alone, or none.
    fn tensor_count(&self) -> usize {
        match (self.affine, self.bias) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        }
    }

    fn n(&self) -> usize {
        self.features.unwrap_or(self.group)
    }
}

impl Kind for LayerNorm {
    fn torch(&self) -> String {
        let mut text = format!("nn.LayerNorm({}", self.group);
        if self.eps != 1e-5 {
            text.push_str(&format!(", eps={}", self.eps));
        }
        if !self.affine {
            text.push_str(", elementwise_affine=False");
        } else if !self.bias {
            text.push_str(", bias=False");
        }
        format!("`{text})`")
    }

    fn shape(&mut self, input: &Shape, _features: &Size) -> Result<Shape, String> {
        // Flat features are one group: their number is checked as any stated size is.
        let (last, all) = match input {
            Shape::Flat => (self.group, self.group),
            Shape::Length(c, l) => (*l, c * l),
            Shape::Image(c, h, w) => (*w, c * h * w),
        };
        if last != self.group && *input != Shape::Flat {
            return Err(format!(
                "`LayerNorm({})` normalises a sample's last axis, which here has {last} (shape {})",
                self.group,
                input.describe()
            ));
        }
        self.features = Some(all);
        Ok(input.clone())
    }

    // On flat features it states their number, so a mismatch is the usual size error.
    fn declared_input(&self) -> Option<Size> {
        match self.features {
            Some(n) if n != self.group => None,
            _ => Some(Size::Known(self.group)),
        }
    }

    fn input_span(&self) -> Option<Span> {
        Some(self.span)
    }

    // Its block is a field even without `elementwise_affine`, holding no tensor then.
    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (place, input, n, eps) = (&s.param, &s.input_ref, self.n(), s.scalar.lit(self.eps));
        s.bind(quote!(#place.forward::<#n, __B>(#input, #eps)))
    }

    // dx from the normalised input and dy; dw = sum of dy x_hat, db = sum of dy.
    fn backward(&self, s: &Site) -> TokenStream {
        let (place, grad, input, n) = (&s.param, &s.grad, &s.input_ref, self.n());
        let (dy, eps) = (&s.grad_output, s.scalar.lit(self.eps));
        match &s.grad_input {
            Some(dx) => {
                quote!(let #dx = #place.backward::<#n, __B>(#input, &#dy, #eps, &mut #grad);)
            }
            None => quote!(#place.backward_params::<#n, __B>(#input, &#dy, #eps, &mut #grad);),
        }
    }

    // Mean, variance, normalise, scale and shift: about five operations per feature.
    fn forward_flops(&self, _layer: &Layer) -> Count {
        Count::known(5 * self.n())
    }

    fn backward_flops(&self, _layer: &Layer, pass_down: bool) -> Count {
        Count::known(if pass_down { 8 } else { 3 } * self.n())
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output, f) = (&eq.input, &eq.output, &eq.field);
        let scale = if self.affine {
            format!(" ⊙ {f}.weight + {f}.bias")
        } else {
            String::new()
        };
        Lines {
            forward: vec![format!(
                "{output} = ({input} - mean) / sqrt(var + {}){scale}, over each group of {} features",
                self.eps, self.group
            )],
            backward: eq
                .pass_down
                .then(|| format!("δ{input} = (δx̂ - mean(δx̂) - x̂ mean(δx̂ ⊙ x̂)) / sqrt(var + eps), δx̂ = δ{output}{}", if self.affine { format!(" ⊙ {f}.weight") } else { String::new() }))
                .into_iter()
                .collect(),
        }
    }
}

impl Params for LayerNorm {
    fn ty(&self, _: &Layer, scalar: Scalar, _: Role) -> TokenStream {
        LayerNorm::ty(self, scalar)
    }

    fn count(&self, _: &Layer) -> Count {
        Count::known(self.group * self.tensor_count())
    }

    fn tensors(&self) -> Count {
        Count::known(self.tensor_count())
    }

    fn reset(&self, place: &TokenStream) -> TokenStream {
        quote!(#place.reset(init);)
    }

    fn visit(
        &self,
        _: &Layer,
        _: Scalar,
        place: &TokenStream,
        access: super::Access,
    ) -> TokenStream {
        super::visit_block(place, access)
    }

    fn doc(&self, layer: &Layer, role: Role) -> String {
        let what = match role {
            Role::Params => "Parameters of",
            Role::Grads => "Gradient of the loss with respect to the parameters of",
        };
        let p = &layer.prefix;
        format!(
            " {what} layer `{p}`, `{}`: weight{} of {} features; `state_dict` names `{p}.weight`{}.",
            layer.source,
            if self.tensor_count() == 2 {
                " and bias"
            } else if self.affine {
                ""
            } else {
                " (none: no elementwise affine)"
            },
            self.group,
            if self.bias {
                format!(", `{p}.bias`")
            } else {
                String::new()
            }
        )
    }

    fn tensor_list(&self, _: &Layer) -> Option<Vec<TensorSpec>> {
        let names = ["weight", "bias"];
        let places = [quote!(.weight), quote!(.bias)];
        Some(
            names
                .iter()
                .zip(places)
                .take(self.tensor_count())
                .map(|(name, place)| TensorSpec::float(*name, vec![self.group], place))
                .collect(),
        )
    }
}
