//! `Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)`,
//! and `Conv1d` on features of shape `(c, l)`: torch's convolutions over a sample's shape, the
//! shape checked and the output's computed at compile time.

use super::TensorSpec;
use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::geometry::{Geometry, Written, output_sizes, padding, tuple};
use super::{ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Params, Role, Site, Value, size};
use crate::model::{Count, Layer, Scalar, Shape, Size};

/// torch's arguments in torch's order, shared by `Conv1d` and `Conv2d`.
pub const ARGS: &[ArgSpec<'static>] = &[
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
        kind: ArgKind::Spatial {
            default: None,
            min: 1,
            words: &[],
        },
    },
    ArgSpec {
        name: "stride",
        kind: ArgKind::Spatial {
            default: Some(1),
            min: 1,
            words: &[],
        },
    },
    ArgSpec {
        name: "padding",
        kind: ArgKind::Spatial {
            default: Some(0),
            min: 0,
            words: &["same", "valid"],
        },
    },
    ArgSpec {
        name: "dilation",
        kind: ArgKind::Spatial {
            default: Some(1),
            min: 1,
            words: &[],
        },
    },
    ArgSpec {
        name: "groups",
        kind: ArgKind::OptionalSize { default: 1 },
    },
    ArgSpec {
        name: "bias",
        kind: ArgKind::Bool { default: true },
    },
];

/// `Conv2d(..)`.
pub const CONV2D: Entry<'static> = Entry {
    name: "Conv2d",
    args: ARGS,
    build: |args| Box::new(Conv::new(2, &args)),
};

/// Per axis: kernel, stride, dilation; and the geometry on the input.
type Checked = (Vec<usize>, Vec<usize>, Vec<usize>, Geometry);

/// A convolution over a sample's shape, as written, its geometry known once its input is.
pub struct Conv {
    /// Spatial axes: 1 (`Conv1d`) or 2 (`Conv2d`).
    axes: usize,
    cin: usize,
    cout: usize,
    /// Where `in_channels` is written, for errors about it.
    in_span: Span,
    out_span: Span,
    kernel: Written,
    stride: Written,
    padding: Written,
    dilation: Written,
    groups: usize,
    pub(super) bias: bool,
    /// Per axis: kernel, stride, dilation, and the geometry on the input; once checked.
    checked: Option<Checked>,
}

impl Conv {
    /// From checked arguments in [`ARGS`]' order.
    pub fn new(axes: usize, args: &[Value]) -> Self {
        let ((cin, in_span), (cout, out_span)) = (size(args, 0), size(args, 1));
        Conv {
            axes,
            cin,
            cout,
            in_span,
            out_span,
            kernel: Written::of(args.get(2)),
            stride: Written::of(args.get(3)),
            padding: Written::of(args.get(4)),
            dilation: Written::of(args.get(5)),
            groups: match args.get(6) {
                Some(Value::Size(g, _)) => *g,
                _ => 1,
            },
            bias: !matches!(args.get(7), Some(Value::Bool(false))),
            checked: None,
        }
    }

    /// The stride, padding, dilation and groups as written, for the causal convolution, which
    /// takes only torch's defaults: `None` if they are those.
    pub fn non_default(&self) -> Option<&'static str> {
        let one = |w: &Written| matches!(w, Written::Values(v) if v.iter().all(|x| *x == 1));
        let zero = matches!(&self.padding, Written::Values(v) if v.iter().all(|x| *x == 0));
        if !one(&self.stride) {
            Some("stride")
        } else if !zero {
            Some("padding")
        } else if self.groups != 1 {
            Some("groups")
        } else {
            None
        }
    }

    /// The kernel size and dilation of a one-axis convolution, for the causal form.
    pub fn causal_parts(&self) -> Result<(usize, usize), String> {
        let kernel = self.kernel.per_axis("kernel_size", 1)?;
        let dilation = self.dilation.per_axis("dilation", 1)?;
        Ok((kernel[0], dilation[0]))
    }

    /// Whether its geometry is known (it has met its input's shape).
    pub fn checked(&self) -> Option<&Geometry> {
        self.checked.as_ref().map(|(.., g)| g)
    }

    /// The channels in and out, where they are written.
    pub fn channels(&self) -> (usize, usize, Span, Span) {
        (self.cin, self.cout, self.in_span, self.out_span)
    }

    fn name(&self) -> &'static str {
        if self.axes == 1 { "Conv1d" } else { "Conv2d" }
    }

    /// The input's channels and spatial sizes, from its shape.
    fn spatial(&self, input: &Shape) -> Result<(usize, Vec<usize>), String> {
        match (self.axes, input) {
            (1, Shape::Length(c, l)) => Ok((*c, vec![*l])),
            (2, Shape::Image(c, h, w)) => Ok((*c, vec![*h, *w])),
            (1, _) => Err(format!(
                "`Conv1d` here needs features of shape (channels, length), but they are {}: put `Unflatten(c, l)` before it (on flat features, `Conv1d` is the causal convolution of a sequence network)",
                input.describe()
            )),
            (_, _) => Err(format!(
                "`Conv2d` needs features of shape (channels, height, width), but they are {}: put `Unflatten(c, h, w)` before it",
                input.describe()
            )),
        }
    }

    /// The const generic arguments of the runtime's forward and backward:
    /// `CIN, G, (HI, WI, HO, WO, SH, SW, PH, PW, DH, DW | LI, LO, S, P, D), NI, NO, __B`.
    fn geometry_args(&self) -> TokenStream {
        let Some((_, stride, dilation, g)) = &self.checked else {
            return TokenStream::new();
        };
        let (cin, groups) = (self.cin, self.groups);
        let ni = self.cin * g.input.iter().product::<usize>();
        let no = self.cout * g.output.iter().product::<usize>();
        let (input, output, pad) = (&g.input, &g.output, &g.padding);
        quote!(#cin, #groups, #(#input,)* #(#output,)* #(#stride,)* #(#pad,)* #(#dilation,)* #ni, #no, __B)
    }

    fn ck(&self) -> usize {
        let kernel: usize = match &self.checked {
            Some((k, ..)) => k.iter().product(),
            None => 1,
        };
        self.cin / self.groups.max(1) * kernel
    }

    fn positions(&self) -> usize {
        self.checked
            .as_ref()
            .map_or(1, |(.., g)| g.output.iter().product())
    }
}

impl Kind for Conv {
    fn torch(&self) -> String {
        let mut text = format!("nn.{}({}, {}", self.name(), self.cin, self.cout);
        if let Some((kernel, stride, dilation, g)) = &self.checked {
            text.push_str(&format!(", {}", tuple(kernel)));
            if stride.iter().any(|s| *s != 1) {
                text.push_str(&format!(", stride={}", tuple(stride)));
            }
            if g.padding.iter().any(|p| *p != 0) {
                text.push_str(&format!(", padding={}", tuple(&g.padding)));
            }
            if dilation.iter().any(|d| *d != 1) {
                text.push_str(&format!(", dilation={}", tuple(dilation)));
            }
        }
        if self.groups != 1 {
            text.push_str(&format!(", groups={}", self.groups));
        }
        if !self.bias {
            text.push_str(", bias=False");
        }
        format!("`{text})`")
    }

    fn shape(&mut self, input: &Shape, _features: &Size) -> Result<Shape, String> {
        let name = self.name();
        let (channels, spatial) = self.spatial(input)?;
        if channels != self.cin {
            return Err(format!(
                "`{name}({}, ..)` takes {} channels, but the features have shape {}",
                self.cin,
                self.cin,
                input.describe()
            ));
        }
        if !self.cin.is_multiple_of(self.groups) || !self.cout.is_multiple_of(self.groups) {
            return Err(format!(
                "`{name}`'s channels must divide by `groups = {}`: {} in, {} out",
                self.groups, self.cin, self.cout
            ));
        }
        let axes = self.axes;
        let kernel = self.kernel.per_axis("kernel_size", axes)?;
        let stride = self.stride.per_axis("stride", axes)?;
        let dilation = self.dilation.per_axis("dilation", axes)?;
        let pad = padding(name, &self.padding, &kernel, &stride, &dilation)?;
        let output = output_sizes(name, &spatial, &kernel, &stride, &pad, &dilation)?;
        let shape = match output.as_slice() {
            [l] => Shape::Length(self.cout, *l),
            [h, w] => Shape::Image(self.cout, *h, *w),
            _ => Shape::Flat,
        };
        let geometry = Geometry {
            input: spatial,
            padding: pad,
            output,
        };
        self.checked = Some((kernel, stride, dilation, geometry));
        Ok(shape)
    }

    fn output_span(&self) -> Option<Span> {
        Some(self.out_span)
    }

    fn output(&self, _input: &Size) -> Size {
        Size::Known(self.cout * self.positions())
    }

    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (param, input, args) = (&s.param, &s.input_ref, self.geometry_args());
        s.bind(quote!(#param.forward::<#args>(#input)))
    }

    // dW = dy x^T over every position, db = sum of dy, dx = W^T dy (col2im).
    fn backward(&self, s: &Site) -> TokenStream {
        let (param, grad, input, args) = (&s.param, &s.grad, &s.input_ref, self.geometry_args());
        let dy = &s.grad_output;
        match &s.grad_input {
            Some(dx) => quote!(let #dx = #param.backward::<#args>(#input, &#dy, &mut #grad);),
            None => quote!(#param.backward_params::<#args>(#input, &#dy, &mut #grad);),
        }
    }

    // A multiply-add per weight per output position.
    fn forward_flops(&self, _layer: &Layer) -> Count {
        Count::known(2 * self.cout * self.ck() * self.positions())
    }

    fn backward_flops(&self, _layer: &Layer, pass_down: bool) -> Count {
        let products = if pass_down { 2 } else { 1 };
        Count::known(2 * products * self.cout * self.ck() * self.positions())
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output, f) = (&eq.input, &eq.output, &eq.field);
        let mut backward = vec![
            format!(
                "∂L/∂{f}.weight = Σ over positions and the batch of δ{output} · (the input patch)ᵀ"
            ),
            format!("∂L/∂{f}.bias = Σ δ{output} over positions and the batch"),
        ];
        if eq.pass_down {
            backward.push(format!(
                "δ{input} = each position's {f}.weightᵀ · δ{output} added back into its patch"
            ));
        }
        Lines {
            forward: vec![format!(
                "{output} = {f}.weight ⊛ {input} + {f}.bias ({})",
                self.torch()
            )],
            backward,
        }
    }
}

impl Params for Conv {
    fn ty(&self, _: &Layer, scalar: Scalar, _: Role) -> TokenStream {
        let rt = crate::expand::rt_absolute();
        let (t, cout, cing, ck, bias) = (
            scalar.tokens(),
            self.cout,
            self.cin / self.groups.max(1),
            self.ck(),
            self.bias,
        );
        let kernel = self
            .checked
            .as_ref()
            .map(|(k, ..)| k.clone())
            .unwrap_or_else(|| vec![1; self.axes]);
        match self.axes {
            1 => quote!(#rt::Conv1d<#t, #cout, #cing, #(#kernel,)* #ck, #bias>),
            _ => quote!(#rt::Conv2d<#t, #cout, #cing, #(#kernel,)* #ck, #bias>),
        }
    }

    fn count(&self, _: &Layer) -> Count {
        let bias = if self.bias { self.cout } else { 0 };
        Count::known(self.cout * self.ck() + bias)
    }

    fn tensors(&self) -> Count {
        Count::known(if self.bias { 2 } else { 1 })
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
            " {what} layer `{p}`, `{}`: weight `{} x {}` (out x in/groups*kernel, torch's \
             `[out, in/groups, kernel..]` row-major), bias; `state_dict` names `{p}.weight`, \
             `{p}.bias`.",
            layer.source,
            self.cout,
            self.ck()
        )
    }

    // torch's `[out, in/groups, kernel..]`.
    fn tensor_list(&self, _: &Layer) -> Option<Vec<TensorSpec>> {
        let (kernel, ..) = self.checked.as_ref()?;
        let mut shape = vec![self.cout, self.cin / self.groups.max(1)];
        shape.extend(kernel.iter().copied());
        let mut list = vec![TensorSpec::float("weight", shape, quote!(.weight))];
        if self.bias {
            list.push(TensorSpec::float("bias", vec![self.cout], quote!(.bias)));
        }
        Some(list)
    }
}
