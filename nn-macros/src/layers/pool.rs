//! Pooling over a sample's shape: `MaxPool1d/2d` and `AvgPool1d/2d(kernel_size, stride =
//! kernel_size, padding = 0)`, and the global averages `AdaptiveAvgPool1d/2d(1)`, as torch's.
//! No parameters: the forward and backward passes are the runtime's kernels, the geometry
//! const generics computed here.

use proc_macro2::TokenStream;
use quote::quote;

use super::geometry::{Geometry, Written, output_sizes, tuple};
use super::{ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Site};
use crate::model::{Count, Layer, Shape, Size};

/// What a pooling layer takes of each window.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Max,
    Avg,
    /// The mean of the whole map (`AdaptiveAvgPool(1)`).
    Global,
}

const WINDOW: &[ArgSpec<'static>] = &[
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
            default: None,
            min: 1,
            words: &[],
        },
    },
    ArgSpec {
        name: "padding",
        kind: ArgKind::Spatial {
            default: Some(0),
            min: 0,
            words: &[],
        },
    },
];

const OUTPUT_SIZE: &[ArgSpec<'static>] = &[ArgSpec {
    name: "output_size",
    kind: ArgKind::Spatial {
        default: None,
        min: 1,
        words: &[],
    },
}];

macro_rules! pool {
    ($name:literal, $args:expr, $op:expr, $axes:literal) => {
        Entry {
            name: $name,
            args: $args,
            build: |args| {
                Box::new(Pool {
                    name: $name,
                    op: $op,
                    axes: $axes,
                    kernel: Written::of(args.first()),
                    stride: Written::of(args.get(1)),
                    padding: Written::of(args.get(2)),
                    checked: None,
                })
            },
        }
    };
}

pub const MAX_POOL1D: Entry<'static> = pool!("MaxPool1d", WINDOW, Op::Max, 1);
pub const MAX_POOL2D: Entry<'static> = pool!("MaxPool2d", WINDOW, Op::Max, 2);
pub const AVG_POOL1D: Entry<'static> = pool!("AvgPool1d", WINDOW, Op::Avg, 1);
pub const AVG_POOL2D: Entry<'static> = pool!("AvgPool2d", WINDOW, Op::Avg, 2);
pub const ADAPTIVE_AVG_POOL1D: Entry<'static> =
    pool!("AdaptiveAvgPool1d", OUTPUT_SIZE, Op::Global, 1);
pub const ADAPTIVE_AVG_POOL2D: Entry<'static> =
    pool!("AdaptiveAvgPool2d", OUTPUT_SIZE, Op::Global, 2);

/// A pooling layer, its geometry known once its input's shape is.
struct Pool {
    name: &'static str,
    op: Op,
    axes: usize,
    /// `kernel_size` (or, for the global average, `output_size`), `stride`, `padding`.
    kernel: Written,
    stride: Written,
    padding: Written,
    /// Channels, kernel, stride and the geometry; once checked.
    checked: Option<(usize, Vec<usize>, Vec<usize>, Geometry)>,
}

impl Pool {
    /// The runtime's function and its const generic arguments (the scalar's in front).
    fn call(&self, scalar: &TokenStream, backward: bool) -> TokenStream {
        let rt = crate::expand::rt();
        let Some((c, kernel, stride, g)) = &self.checked else {
            return TokenStream::new();
        };
        let ni = c * g.input.iter().product::<usize>();
        let no = c * g.output.iter().product::<usize>();
        let (input, output, pad) = (&g.input, &g.output, &g.padding);
        let dims = if self.axes == 1 { "1d" } else { "2d" };
        let base = match self.op {
            Op::Max => format!("max_pool{dims}"),
            Op::Avg => format!("avg_pool{dims}"),
            Op::Global => format!("adaptive_avg_pool{dims}_1"),
        };
        let name = quote::format_ident!("{base}{}", if backward { "_backward" } else { "" });
        match self.op {
            Op::Global => {
                let area: usize = g.input.iter().product();
                quote!(#rt::#name::<#scalar, #c, #area, #ni, __B>)
            }
            _ => {
                quote!(#rt::#name::<#scalar, #c, #(#input,)* #(#output,)* #(#kernel,)* #(#stride,)* #(#pad,)* #ni, #no, __B>)
            }
        }
    }

    fn outputs(&self) -> usize {
        self.checked
            .as_ref()
            .map_or(0, |(c, _, _, g)| c * g.output.iter().product::<usize>())
    }
}

impl Kind for Pool {
    fn torch(&self) -> String {
        match (&self.checked, self.op) {
            (_, Op::Global) => format!("`nn.{}(1)`", self.name),
            (Some((_, kernel, stride, g)), _) => {
                let mut text = format!("nn.{}({}", self.name, tuple(kernel));
                if stride != kernel {
                    text.push_str(&format!(", stride={}", tuple(stride)));
                }
                if g.padding.iter().any(|p| *p != 0) {
                    text.push_str(&format!(", padding={}", tuple(&g.padding)));
                }
                format!("`{text})`")
            }
            (None, _) => format!("`nn.{}`", self.name),
        }
    }

    fn shape(&mut self, input: &Shape, _features: &Size) -> Result<Shape, String> {
        let (name, axes) = (self.name, self.axes);
        let (c, spatial) = match (axes, input) {
            (1, Shape::Length(c, l)) => (*c, vec![*l]),
            (2, Shape::Image(c, h, w)) => (*c, vec![*h, *w]),
            _ => {
                let wanted = if axes == 1 {
                    "(channels, length): put `Unflatten(c, l)` before it"
                } else {
                    "(channels, height, width): put `Unflatten(c, h, w)` before it"
                };
                return Err(format!(
                    "`{name}` needs features of shape {wanted}; they are {}",
                    input.describe()
                ));
            }
        };
        let (kernel, stride, pad) = if self.op == Op::Global {
            let size = self.kernel.per_axis("output_size", axes)?;
            if size.iter().any(|s| *s != 1) {
                return Err(format!(
                    "`{name}` supports `output_size = 1` (the global average) only; found {}",
                    tuple(&size)
                ));
            }
            (spatial.clone(), spatial.clone(), vec![0; axes])
        } else {
            let kernel = self.kernel.per_axis("kernel_size", axes)?;
            let stride = match &self.stride {
                Written::Absent => kernel.clone(),
                written => written.per_axis("stride", axes)?,
            };
            let pad = self.padding.per_axis("padding", axes)?;
            if let Some(a) = (0..axes).find(|a| 2 * pad[*a] > kernel[*a]) {
                return Err(format!(
                    "`{name}`'s padding {} along axis {a} is more than half its kernel {}, which torch does not allow",
                    pad[a], kernel[a]
                ));
            }
            (kernel, stride, pad)
        };
        let ones = vec![1; axes];
        let output = output_sizes(name, &spatial, &kernel, &stride, &pad, &ones)?;
        let shape = match output.as_slice() {
            [l] => Shape::Length(c, *l),
            [h, w] => Shape::Image(c, *h, *w),
            _ => Shape::Flat,
        };
        let geometry = Geometry {
            input: spatial,
            padding: pad,
            output,
        };
        self.checked = Some((c, kernel, stride, geometry));
        Ok(shape)
    }

    fn output(&self, _input: &Size) -> Size {
        Size::Known(self.outputs())
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (call, input) = (self.call(&s.scalar.tokens(), false), &s.input_ref);
        s.bind(quote!(#call(#input)))
    }

    fn backward(&self, s: &Site) -> TokenStream {
        let Some(dx) = &s.grad_input else {
            return TokenStream::new();
        };
        let (call, input, dy) = (
            self.call(&s.scalar.tokens(), true),
            &s.input_ref,
            &s.grad_output,
        );
        match self.op {
            // The largest input of each window is found again, from the cached input.
            Op::Max => quote!(let #dx = #call(#input, &#dy);),
            Op::Avg | Op::Global => quote!(let #dx = #call(&#dy);),
        }
    }

    // Per output, a comparison or an add per element of its window.
    fn forward_flops(&self, _layer: &Layer) -> Count {
        let window: usize = self
            .checked
            .as_ref()
            .map_or(1, |(_, k, ..)| k.iter().product());
        Count::known(self.outputs() * window)
    }

    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        if pass_down {
            self.forward_flops(layer)
        } else {
            Count::default()
        }
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output) = (&eq.input, &eq.output);
        let (forward, backward) = match self.op {
            Op::Max => (
                "the largest of each window",
                "δ of each window's output to the place of its largest input",
            ),
            Op::Avg => (
                "the mean of each window",
                "δ of each window's output shared equally by its places",
            ),
            Op::Global => (
                "the mean of each channel's map",
                "δ of each channel's mean shared equally by its map",
            ),
        };
        Lines {
            forward: vec![format!(
                "{output} = {forward} of {input} ({})",
                self.torch()
            )],
            backward: eq
                .pass_down
                .then(|| format!("δ{input} = {backward}"))
                .into_iter()
                .collect(),
        }
    }
}
