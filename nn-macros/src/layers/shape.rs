//! `Unflatten` and `Flatten`: they give a sample's features a shape and take it away. A sample
//! stays one column of features either way (row-major, channel first, as torch's
//! `x.view(N, C, H, W)`), so both copy nothing a later layer could not read in place: their
//! forward and backward passes hand the values on, and the shape lives in the checker only.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::{ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Site, Value};
use crate::model::{Count, Layer, Shape, Size};

const AXIS: ArgKind = ArgKind::Spatial {
    default: None,
    min: 1,
    words: &[],
};

/// `Unflatten(c, l)`, `Unflatten(c, h, w)`, or torch's own `Unflatten(1, (c, h, w))`.
pub const UNFLATTEN: Entry<'static> = Entry {
    name: "Unflatten",
    args: &[
        ArgSpec {
            name: "dim",
            kind: AXIS,
        },
        ArgSpec {
            name: "unflattened_size",
            kind: AXIS,
        },
        ArgSpec {
            name: "width",
            kind: AXIS,
        },
    ],
    build: |args| {
        let written: Vec<(Vec<usize>, Span)> = args
            .into_iter()
            .filter_map(|v| match v {
                Value::Spatial(values, span) => Some((values, span)),
                _ => None,
            })
            .collect();
        Box::new(Unflatten { written })
    },
};

/// `Flatten`: the features flat again, as `nn.Flatten()`.
pub const FLATTEN: Entry<'static> = Entry {
    name: "Flatten",
    args: &[],
    build: |_| Box::new(Flatten),
};

/// An `Unflatten`, as written; its shape is read when its input is known.
struct Unflatten {
    written: Vec<(Vec<usize>, Span)>,
}

impl Unflatten {
    /// The shape written: `(c, l)` or `(c, h, w)`, from either form.
    fn dims(&self) -> Result<Vec<usize>, String> {
        let usage = "`Unflatten` takes the shape of a sample: `Unflatten(c, l)`, \
                     `Unflatten(c, h, w)`, or torch's `Unflatten(1, (c, h, w))`";
        let dims: Vec<usize> = match self.written.as_slice() {
            [(dim, _), (size, _)] if size.len() > 1 => {
                if dim.as_slice() != [1] {
                    return Err(format!(
                        "{usage}: a sample's features are dimension 1 of torch's batch, not {}",
                        dim.first().copied().unwrap_or(0)
                    ));
                }
                size.clone()
            }
            written if written.iter().all(|(v, _)| v.len() == 1) => {
                written.iter().map(|(v, _)| v[0]).collect()
            }
            _ => return Err(usage.into()),
        };
        match dims.len() {
            2 | 3 => Ok(dims),
            _ => Err(usage.into()),
        }
    }
}

impl Kind for Unflatten {
    // It states its input's size: the product of the shape it gives.
    fn declared_input(&self) -> Option<Size> {
        let dims = self.dims().ok()?;
        Some(Size::Known(dims.iter().product()))
    }

    fn input_span(&self) -> Option<Span> {
        self.written.first().map(|(_, span)| *span)
    }

    fn torch(&self) -> String {
        match self.dims() {
            Ok(dims) => {
                let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
                format!("`nn.Unflatten(1, ({}))`", dims.join(", "))
            }
            Err(_) => "`nn.Unflatten`".into(),
        }
    }

    fn shape(&mut self, input: &Shape, features: &Size) -> Result<Shape, String> {
        let dims = self.dims()?;
        if *input != Shape::Flat {
            return Err(format!(
                "`Unflatten` takes flat features, but they have shape {} already: `Flatten` them first",
                input.describe()
            ));
        }
        let shape = match dims.as_slice() {
            [c, l] => Shape::Length(*c, *l),
            [c, h, w] => Shape::Image(*c, *h, *w),
            _ => return Err("`Unflatten` takes two or three sizes".into()),
        };
        let wanted = shape.features().unwrap_or(0);
        match features {
            Size::Known(n) if *n == wanted => Ok(shape),
            Size::Known(n) => Err(format!(
                "`Unflatten` to {} needs {wanted} features, but it gets {n}",
                shape.describe()
            )),
            Size::Of(..) => Err(format!(
                "`Unflatten` needs a number of features the macro knows ({wanted} for {}), not a nested network's",
                shape.describe()
            )),
        }
    }

    fn forward(&self, s: &Site) -> TokenStream {
        pass_on(s)
    }

    fn backward(&self, s: &Site) -> TokenStream {
        pass_back(s)
    }

    fn forward_flops(&self, _layer: &Layer) -> Count {
        Count::default()
    }

    fn backward_flops(&self, _layer: &Layer, _pass_down: bool) -> Count {
        Count::default()
    }

    fn equations(&self, eq: &Equations) -> Lines {
        same(eq, "its features given a shape")
    }
}

/// A `Flatten`.
struct Flatten;

impl Kind for Flatten {
    fn torch(&self) -> String {
        "`nn.Flatten()`".into()
    }

    fn shape(&mut self, _input: &Shape, _features: &Size) -> Result<Shape, String> {
        Ok(Shape::Flat)
    }

    fn forward(&self, s: &Site) -> TokenStream {
        pass_on(s)
    }

    fn backward(&self, s: &Site) -> TokenStream {
        pass_back(s)
    }

    fn forward_flops(&self, _layer: &Layer) -> Count {
        Count::default()
    }

    fn backward_flops(&self, _layer: &Layer, _pass_down: bool) -> Count {
        Count::default()
    }

    fn equations(&self, eq: &Equations) -> Lines {
        same(eq, "its features flat again")
    }
}

/// The output is the input: the same column of features.
fn pass_on(s: &Site) -> TokenStream {
    let input = &s.input_ref;
    s.bind(quote!(::core::clone::Clone::clone(#input)))
}

/// The input's gradient is the output's.
fn pass_back(s: &Site) -> TokenStream {
    let dy = &s.grad_output;
    match &s.grad_input {
        Some(dx) => quote!(let #dx = #dy;),
        None => TokenStream::new(),
    }
}

fn same(eq: &Equations, what: &str) -> Lines {
    let (input, output) = (&eq.input, &eq.output);
    Lines {
        forward: vec![format!("{output} = {input} ({what})")],
        backward: eq
            .pass_down
            .then(|| format!("δ{input} = δ{output}"))
            .into_iter()
            .collect(),
    }
}
