//! `BatchNorm1d(num_features)` and `BatchNorm2d(num_features)` with `eps`, `momentum` and
//! `affine`: torch's batch normalisation. In training (`train_step`, `gradients`) each channel
//! is normalised by the batch's mean and biased variance, over the samples and their positions,
//! and `train_step` then updates the running statistics (with the unbiased variance, as torch);
//! in inference (`forward`) the running statistics are used.

use super::TensorSpec;
use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::{
    Access, ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Params, Role, Site, Value, number,
    size,
};
use crate::model::{Count, Layer, Scalar, Shape, Size};

const ARGS: &[ArgSpec<'static>] = &[
    ArgSpec {
        name: "num_features",
        kind: ArgKind::Size,
    },
    ArgSpec {
        name: "eps",
        kind: ArgKind::Number {
            default: Some(1e-5),
        },
    },
    ArgSpec {
        name: "momentum",
        kind: ArgKind::Number { default: Some(0.1) },
    },
    ArgSpec {
        name: "affine",
        kind: ArgKind::Bool { default: true },
    },
    ArgSpec {
        name: "track_running_stats",
        kind: ArgKind::Bool { default: true },
    },
];

macro_rules! batch_norm {
    ($name:literal, $axes:literal) => {
        Entry {
            name: $name,
            args: ARGS,
            build: |args| {
                let (channels, span) = size(&args, 0);
                Box::new(BatchNorm {
                    name: $name,
                    axes: $axes,
                    channels,
                    span,
                    eps: args.get(1).map_or(1e-5, number),
                    momentum: args.get(2).map_or(0.1, number),
                    affine: !matches!(args.get(3), Some(Value::Bool(false))),
                    tracks: !matches!(args.get(4), Some(Value::Bool(false))),
                    positions: None,
                })
            },
        }
    };
}

/// `BatchNorm1d(C)`: over flat features (C of them) or `(C, L)`.
pub const BATCH_NORM1D: Entry<'static> = batch_norm!("BatchNorm1d", 1);
/// `BatchNorm2d(C)`: over `(C, H, W)`.
pub const BATCH_NORM2D: Entry<'static> = batch_norm!("BatchNorm2d", 2);

/// A batch normalisation.
struct BatchNorm {
    name: &'static str,
    axes: usize,
    channels: usize,
    span: Span,
    eps: f64,
    momentum: f64,
    affine: bool,
    tracks: bool,
    /// Positions per channel in a sample (1 on flat features), once the input is known.
    positions: Option<usize>,
}

impl BatchNorm {
    /// `N, S, __B`: the sample's features, the positions per channel, the batch.
    fn sizes(&self) -> TokenStream {
        let s = self.positions.unwrap_or(1);
        let n = self.channels * s;
        quote!(#n, #s, __B)
    }
}

impl Kind for BatchNorm {
    fn torch(&self) -> String {
        let mut text = format!("nn.{}({}", self.name, self.channels);
        if self.eps != 1e-5 {
            text.push_str(&format!(", eps={}", self.eps));
        }
        if self.momentum != 0.1 {
            text.push_str(&format!(", momentum={}", self.momentum));
        }
        if !self.affine {
            text.push_str(", affine=False");
        }
        format!("`{text})`")
    }

    fn shape(&mut self, input: &Shape, _features: &Size) -> Result<Shape, String> {
        if !self.tracks {
            return Err(format!(
                "`{}(track_running_stats = false)` is not supported: inference uses the running statistics",
                self.name
            ));
        }
        let (c, s) = match (self.axes, input) {
            (1, Shape::Flat) => (self.channels, 1),
            (1, Shape::Length(c, l)) => (*c, *l),
            (2, Shape::Image(c, h, w)) => (*c, h * w),
            (1, _) => {
                return Err(format!(
                    "`BatchNorm1d` takes flat features or (channels, length), not {}: use `BatchNorm2d`",
                    input.describe()
                ));
            }
            _ => {
                return Err(format!(
                    "`BatchNorm2d` takes features of shape (channels, height, width), not {}",
                    input.describe()
                ));
            }
        };
        if c != self.channels {
            return Err(format!(
                "`{}({})` normalises {} channels, but the features have shape {} ({c} channels)",
                self.name,
                self.channels,
                self.channels,
                input.describe()
            ));
        }
        self.positions = Some(s);
        Ok(input.clone())
    }

    // On flat features it states their number, so a mismatch is the usual size error.
    fn declared_input(&self) -> Option<Size> {
        match self.positions {
            Some(s) if s != 1 => None,
            _ => Some(Size::Known(self.channels)),
        }
    }

    fn input_span(&self) -> Option<Span> {
        Some(self.span)
    }

    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    fn moded(&self) -> bool {
        true
    }

    fn extra_cache(&self, _layer: &Layer, scalar: Scalar) -> Option<TokenStream> {
        let (rt, t, c) = (crate::expand::rt_absolute(), scalar.tokens(), self.channels);
        Some(quote!(#rt::BnStats<#t, #c>))
    }

    // The running statistics, from the batch's: `n` values per channel.
    fn after_step(&self, layer: &Layer, scalar: Scalar, kept: &TokenStream) -> Option<TokenStream> {
        let (field, momentum) = (&layer.field, scalar.lit(self.momentum));
        let s = self.positions.unwrap_or(1);
        Some(quote!(self.#field.update_running(#kept, #momentum, __B * #s);))
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (param, input, sizes, eps) =
            (&s.param, &s.input_ref, self.sizes(), s.scalar.lit(self.eps));
        if !s.keep {
            return s.bind(quote!(#param.eval_forward::<#sizes>(#input, #eps)));
        }
        let (output, stats) = (&s.output, &s.step_cache);
        quote!(let (#output, #stats) = #param.train_forward::<#sizes>(#input, #eps);)
    }

    // In inference (the input sensitivities' pass), only the input's gradient: the running
    // statistics' affine map's.
    fn backward_input(&self, s: &Site) -> Option<TokenStream> {
        if s.keep {
            return None;
        }
        let (param, sizes, eps) = (&s.param, self.sizes(), s.scalar.lit(self.eps));
        let (dy, dx) = (&s.grad_output, s.grad_input.as_ref()?);
        Some(quote!(let #dx = #param.eval_backward::<#sizes>(&#dy, #eps);))
    }

    fn backward(&self, s: &Site) -> TokenStream {
        if !s.keep {
            // Inference has no parameter gradients to give: its pass asks for none.
            return self.backward_input(s).unwrap_or_default();
        }
        let (param, grad, input, sizes) = (&s.param, &s.grad, &s.input_ref, self.sizes());
        let (dy, stats) = (&s.grad_output, &s.step_cache);
        match &s.grad_input {
            Some(dx) => {
                quote!(let #dx = #param.backward::<#sizes>(#input, &#dy, #stats, &mut #grad);)
            }
            None => quote!(#param.backward_params::<#sizes>(#input, &#dy, #stats, &mut #grad);),
        }
    }

    // Mean, variance, normalise, scale and shift: about five operations per feature.
    fn forward_flops(&self, layer: &Layer) -> Count {
        layer.output.count().scaled(5)
    }

    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        layer.output.count().scaled(if pass_down { 8 } else { 3 })
    }

    fn activations(&self, layer: &Layer) -> Count {
        Count::sum([layer.output.count(), Count::known(3 * self.channels)])
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output, f) = (&eq.input, &eq.output, &eq.field);
        Lines {
            forward: vec![format!(
                "{output} = ({input} - mean) / sqrt(var + {}) ⊙ {f}.weight + {f}.bias per channel: the batch's mean and variance in training (then running statistics updated with momentum {}), the running ones in inference",
                self.eps, self.momentum
            )],
            backward: vec![
                format!("∂L/∂{f}.weight = Σ δ{output} ⊙ x̂, ∂L/∂{f}.bias = Σ δ{output} per channel"),
                format!(
                    "δ{input} = (δx̂ - mean(δx̂) - x̂ mean(δx̂ ⊙ x̂)) / sqrt(var + eps) per channel, δx̂ = δ{output} ⊙ {f}.weight"
                ),
            ],
        }
    }
}

impl Params for BatchNorm {
    fn counts(&self) -> bool {
        true
    }

    fn ty(&self, _: &Layer, scalar: Scalar, _: Role) -> TokenStream {
        let rt = crate::expand::rt_absolute();
        let (t, c, affine) = (scalar.tokens(), self.channels, self.affine);
        quote!(#rt::BatchNorm<#t, #c, #affine>)
    }

    fn count(&self, _: &Layer) -> Count {
        Count::known(if self.affine { 2 * self.channels } else { 0 })
    }

    fn tensors(&self) -> Count {
        Count::known(if self.affine { 2 } else { 0 })
    }

    // torch's: weight 1, bias 0, running mean 0, running variance 1.
    fn reset(&self, place: &TokenStream) -> TokenStream {
        quote!(#place.reset(init);)
    }

    fn visit(&self, _: &Layer, _: Scalar, place: &TokenStream, access: Access) -> TokenStream {
        super::visit_block(place, access)
    }

    fn doc(&self, layer: &Layer, role: Role) -> String {
        let (p, c) = (&layer.prefix, self.channels);
        match role {
            Role::Params => format!(
                " Parameters and running statistics of layer `{p}`, `{}`: weight and bias \
                 (`{c}`, learned), `running_mean`, `running_var` and `num_batches_tracked` \
                 (updated by `train_step`, used by `forward`); `state_dict` names `{p}.weight`, \
                 `{p}.bias`, `{p}.running_mean`, `{p}.running_var`, `{p}.num_batches_tracked`.",
                layer.source
            ),
            Role::Grads => format!(
                " Gradient of the loss with respect to the weight and bias of layer `{p}`, `{}` \
                 (its running statistics are not learned).",
                layer.source
            ),
        }
    }

    // As the runtime's `Tensors` impl: the affine pair if any, the running statistics, then
    // the count.
    fn tensor_list(&self, _: &Layer) -> Option<Vec<TensorSpec>> {
        let c = self.channels;
        let mut list = Vec::new();
        if self.affine {
            list.push(TensorSpec::float("weight", vec![c], quote!(.weight)));
            list.push(TensorSpec::float("bias", vec![c], quote!(.bias)));
        }
        list.push(TensorSpec::float(
            "running_mean",
            vec![c],
            quote!(.running_mean),
        ));
        list.push(TensorSpec::float(
            "running_var",
            vec![c],
            quote!(.running_var),
        ));
        list.push(TensorSpec::count(
            "num_batches_tracked",
            quote!(.num_batches_tracked),
        ));
        Some(list)
    }
}
