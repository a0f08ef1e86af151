//! From syntax to the checked model: every rule a declaration must follow, each mistake
//! reported on the token that breaks it, all of them at once.

use proc_macro2::Span;
use syn::{Ident, Lit};

use crate::ast::{Arg, LayerSyntax, NetworkInput, Number};
use crate::errors::Errors;
use crate::layers::{self, ArgKind, KINDS, LayerKind};
use crate::model::{Layer, Network, Op, Part, Port, Scalar, Size, SizeCheck};

/// The largest size a layer may declare. Far above what fits in memory as a static matrix;
/// it exists so that size arithmetic cannot overflow.
const MAX_SIZE: usize = 1 << 24;

/// Derives the generated struct already has, which the user must not derive again.
const BUILT_IN_DERIVES: &[&str] = &["Clone", "Debug", "PartialEq"];

/// The block layer whose arguments are layers.
const RESIDUAL: &str = "Residual";

/// PyTorch modules a user may reach for that `network!` does not have: named, they get an
/// error that says so, rather than being taken for a nested network that does not exist.
const UNSUPPORTED: &[&str] = &[
    "Dropout",
    "AlphaDropout",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "Embedding",
    "Flatten",
    "Unflatten",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "LSTM",
    "GRU",
    "RNN",
    "MultiheadAttention",
    "Transformer",
    "Softmax",
    "LogSoftmax",
    "GELU",
    "ELU",
    "SELU",
    "CELU",
    "SiLU",
    "Mish",
    "Softplus",
    "Softsign",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "PReLU",
    "RReLU",
    "ReLU6",
    "LogSigmoid",
    "Tanhshrink",
    "Bilinear",
    "Sequential",
    "ModuleList",
];

/// Checks a parsed declaration and builds its model, or returns every mistake in it.
pub fn check(input: NetworkInput) -> syn::Result<Network> {
    let NetworkInput {
        attrs,
        vis,
        ident,
        scalar,
        body_span,
        layers,
        errors,
    } = input;
    let mut cx = Checker {
        scalar: Scalar::F32,
        errors,
        size_checks: Vec::new(),
    };
    check_derives(&attrs, &mut cx.errors);
    cx.scalar = check_scalar(scalar.as_ref(), &mut cx.errors);
    let mut checked = cx.list(&layers, &[]);
    if layers.is_empty() {
        cx.errors.at(
            body_span,
            "a network needs at least one layer, e.g. `{ Linear(2, 8), ReLU, Linear(8, 1) }`",
        );
    } else {
        match declared_input(&checked) {
            Some(input) => {
                let syntax: Vec<&LayerSyntax> = layers.iter().collect();
                cx.chain(&mut checked, &syntax, Some(input));
            }
            None if checked.iter().all(Option::is_some) => {
                cx.errors.at(body_span, no_sizes_message())
            }
            // An unknown layer may have been meant to fix the sizes: its error is enough.
            None => {}
        }
    }
    let Checker {
        scalar,
        errors,
        size_checks,
    } = cx;
    let io_spans = io_spans(&layers);
    let layers = checked.into_iter().flatten().collect();
    errors.finish(Network {
        attrs,
        vis,
        ident,
        scalar,
        layers,
        size_checks,
        io_spans,
    })
}

/// The state of checking one declaration.
struct Checker {
    scalar: Scalar,
    errors: Errors,
    size_checks: Vec<SizeCheck>,
}

impl Checker {
    /// Checks each layer of a list on its own; `None` for a layer with mistakes.
    fn list(&mut self, syntax: &[LayerSyntax], path: &[usize]) -> Vec<Option<Layer>> {
        syntax
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer(i, path, l))
            .collect()
    }

    /// Checks one layer: a known kind with valid arguments, a residual block, or a nested
    /// network. Sizes are chained afterwards.
    fn layer(&mut self, index: usize, parent: &[usize], syntax: &LayerSyntax) -> Option<Layer> {
        let name = syntax.name.to_string();
        let path = [parent, &[index]].concat();
        let args = syntax.args.as_ref().map_or(&[][..], |a| &a.list[..]);
        let (op, input, output) = if let Some(kind) = layers::lookup(&name) {
            let (numbers, sizes) = self.table_args(kind, syntax, args)?;
            let (input, output) = match sizes[..] {
                [input, output, ..] => (Size::Known(input), Size::Known(output)),
                // Shape-keeping layers get their sizes when the chain is resolved.
                _ => (Size::Known(0), Size::Known(0)),
            };
            (Op::Table(kind, numbers), input, output)
        } else if name == RESIDUAL {
            (
                Op::Residual(self.residual_body(syntax, args, &path)?),
                Size::Known(0),
                Size::Known(0),
            )
        } else {
            self.nested(syntax)?
        };
        Some(Layer {
            index,
            path,
            op,
            input,
            output,
            source: syntax.display(),
        })
    }

    /// The numeric arguments of a table kind (defaults filled in) and its sizes.
    fn table_args(
        &mut self,
        kind: &LayerKind,
        syntax: &LayerSyntax,
        args: &[Arg],
    ) -> Option<(Vec<f64>, Vec<usize>)> {
        if !check_arity(kind, syntax, args, &mut self.errors) {
            return None;
        }
        let mut numbers = Vec::with_capacity(kind.args.len());
        let mut sizes = Vec::new();
        let mut ok = true;
        for (i, spec) in kind.args.iter().enumerate() {
            let result = match (&spec.kind, args.get(i)) {
                (ArgKind::Size, Some(arg)) => {
                    size_value(kind, spec.name, arg).map(|n| sizes.push(n))
                }
                (ArgKind::Number { .. }, Some(arg)) => {
                    number_value(spec.name, arg, self.scalar).map(|v| numbers.push(v))
                }
                (ArgKind::Number { default: Some(d) }, None) => {
                    numbers.push(*d);
                    Ok(())
                }
                // Arity was checked: a missing argument without a default cannot get here.
                _ => Ok(()),
            };
            if let Err(error) = result {
                self.errors.push(error);
                ok = false;
            }
        }
        ok.then_some((numbers, sizes))
    }

    /// The layers of `Residual(layer, ...)`.
    fn residual_body(
        &mut self,
        syntax: &LayerSyntax,
        args: &[Arg],
        path: &[usize],
    ) -> Option<Vec<Layer>> {
        let mut inner = Vec::new();
        let mut ok = true;
        for arg in args {
            match arg {
                Arg::Layer(layer) => inner.push(layer),
                Arg::Number(_) => {
                    self.errors.over(
                        arg,
                        "`Residual` takes layers, e.g. `Residual(Linear(8, 8), ReLU)`",
                    );
                    ok = false;
                }
            }
        }
        if inner.is_empty() && ok {
            self.errors.over(
                syntax,
                "`Residual` needs at least one layer, e.g. `Residual(Linear(8, 8), ReLU)`",
            );
            return None;
        }
        let checked: Vec<Option<Layer>> = inner
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer(i, path, l))
            .collect();
        (ok && checked.iter().all(Option::is_some)).then(|| checked.into_iter().flatten().collect())
    }

    /// A network declared elsewhere, used by its name as one layer.
    fn nested(&mut self, syntax: &LayerSyntax) -> Option<(Op, Size, Size)> {
        let name = syntax.name.to_string();
        if UNSUPPORTED.contains(&name.as_str()) {
            self.errors.at(
                syntax.name.span(),
                format!(
                    "`{name}` is a PyTorch module that `network!` does not support; the supported layers are {}",
                    known_names().join(", ")
                ),
            );
            return None;
        }
        let known = known_names();
        if let Some(closest) = closest(&name, &known) {
            // Close to a layer kind: a typo far more likely than a network so named.
            self.errors.at(
                syntax.name.span(),
                unknown_layer_message(&name, Some(closest)),
            );
            return None;
        }
        if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            self.errors
                .at(syntax.name.span(), unknown_layer_message(&name, None));
            return None;
        }
        if let Some(args) = &syntax.args {
            self.errors.at(
                args.paren.span.join(),
                format!("`{name}` is used as a nested network, which takes no arguments: its sizes are its own"),
            );
            return None;
        }
        let net = syntax.name.clone();
        Some((
            Op::Nested(net.clone()),
            Size::Of(net.clone(), Port::In),
            Size::Of(net, Port::Out),
        ))
    }

    /// Resolves sizes along a checked list, starting from `input` (`None`: unknown, after a
    /// mistake). Layers that failed their own checks (`None`) break the chain: it is picked up
    /// again at the next layer that declares its input, so one typo does not also read as a
    /// size mismatch. Returns the size the list produces.
    fn chain(
        &mut self,
        layers: &mut [Option<Layer>],
        syntax: &[&LayerSyntax],
        input: Option<Size>,
    ) -> Option<Size> {
        let mut features = input;
        let mut producer: Option<usize> = None;
        for (i, slot) in layers.iter_mut().enumerate() {
            let Some(layer) = slot else {
                features = None;
                continue;
            };
            features = match &mut layer.op {
                Op::Table(kind, _) if !kind.resizes() => {
                    let size = features.clone().unwrap_or(Size::Known(0));
                    layer.input = size.clone();
                    layer.output = size;
                    features
                }
                Op::Residual(inner) => {
                    let size = features.clone().unwrap_or(Size::Known(0));
                    self.residual_sizes(inner, syntax[i], size.clone());
                    layer.input = size.clone();
                    layer.output = size;
                    features
                }
                op => {
                    if let Some(actual) = features {
                        let context = producer.map(|p| syntax[p].display());
                        self.meet(actual.clone(), &layer.input, syntax[i], context);
                        // A table layer takes the producer's size in its type, so a size only
                        // the compiler knows cannot also raise a type mismatch: the check
                        // above reports it in words.
                        if matches!(op, Op::Table(..)) {
                            layer.input = actual;
                        }
                    }
                    producer = Some(i);
                    Some(layer.output.clone())
                }
            };
        }
        features
    }

    /// Chains the inner layers of a residual block and checks they keep its size.
    fn residual_sizes(&mut self, inner: &mut Vec<Layer>, syntax: &LayerSyntax, input: Size) {
        let inner_syntax: Vec<&LayerSyntax> = syntax
            .args
            .iter()
            .flat_map(|a| &a.list)
            .filter_map(|a| if let Arg::Layer(l) = a { Some(l) } else { None })
            .collect();
        let mut slots: Vec<Option<Layer>> = std::mem::take(inner).into_iter().map(Some).collect();
        let output = self.chain(&mut slots, &inner_syntax, Some(input.clone()));
        *inner = slots.into_iter().flatten().collect();
        let Some(output) = output else { return };
        match (&input, &output) {
            (Size::Known(i), Size::Known(o)) if i != o => self.errors.at(
                syntax.name.span(),
                format!(
                    "a `Residual` block adds its input to its output, so it must keep its size: \
                     it takes {i} features and its layers produce {o}"
                ),
            ),
            (Size::Known(_), Size::Known(_)) => {}
            _ => self.size_checks.push(SizeCheck {
                actual: output.clone(),
                declared: input.clone(),
                message: vec![
                    Part::Text("a `Residual` block adds its input to its output, so it must keep its size: it takes ".into()),
                    Part::Size(input),
                    Part::Text(" features and its layers produce ".into()),
                    Part::Size(output),
                ],
                span: syntax.name.span(),
            }),
        }
    }

    /// Where the size a chain carries meets the size a layer declares: an error now if both
    /// are literals and differ, a check for the compiler if either is a nested network's.
    fn meet(
        &mut self,
        actual: Size,
        declared: &Size,
        syntax: &LayerSyntax,
        producer: Option<String>,
    ) {
        let span = first_arg_span(syntax);
        match (&actual, declared) {
            (Size::Known(a), Size::Known(d)) if a != d => {
                self.errors
                    .at(span, size_mismatch_message(*a, *d, producer.as_deref()));
            }
            (a, d) if a == d => {}
            (Size::Known(_), Size::Known(_)) => {}
            _ => {
                let from = match &producer {
                    Some(p) => format!(": the previous layer `{p}` produces "),
                    None => ": the network's input has ".to_string(),
                };
                self.size_checks.push(SizeCheck {
                    actual: actual.clone(),
                    declared: declared.clone(),
                    message: vec![
                        Part::Text(format!("`{}` expects ", syntax.display())),
                        Part::Size(declared.clone()),
                        Part::Text(" input features, found ".into()),
                        Part::Size(actual.clone()),
                        Part::Text(from),
                        Part::Size(actual),
                    ],
                    span,
                });
            }
        }
    }
}

/// The spans of the network's first declared input size and last declared output size (the
/// name of a nested network there); the call site where neither is found.
fn io_spans(layers: &[LayerSyntax]) -> (Span, Span) {
    let sized = |l: &&LayerSyntax| layers::lookup(&l.name.to_string()).is_none_or(|k| k.resizes());
    let input = layers
        .iter()
        .find(sized)
        .map_or(Span::call_site(), first_arg_span);
    let output = layers
        .iter()
        .rev()
        .find(sized)
        .map_or(Span::call_site(), |l| {
            match l.args.as_ref().and_then(|a| a.list.get(1)) {
                Some(Arg::Number(n)) => n.lit.span(),
                _ => l.name.span(),
            }
        });
    (input, output)
}

/// The span errors about a layer's input size go on: its first argument, else its name.
fn first_arg_span(syntax: &LayerSyntax) -> Span {
    match syntax.args.as_ref().and_then(|a| a.list.first()) {
        Some(Arg::Number(n)) => n.lit.span(),
        _ => syntax.name.span(),
    }
}

/// The input size of a list: that of its first layer that declares one.
fn declared_input(layers: &[Option<Layer>]) -> Option<Size> {
    for layer in layers {
        if let Some(size) = layer_declared_input(layer.as_ref()?) {
            return Some(size);
        }
    }
    None
}

/// The input size a layer declares, looking inside residual blocks; `None` for shape-keeping
/// layers.
fn layer_declared_input(layer: &Layer) -> Option<Size> {
    match &layer.op {
        Op::Table(kind, _) if !kind.resizes() => None,
        Op::Residual(inner) => inner.iter().find_map(layer_declared_input),
        _ => Some(layer.input.clone()),
    }
}

fn no_sizes_message() -> String {
    let mut names: Vec<&str> = KINDS
        .iter()
        .filter(|k| k.resizes())
        .map(|k| k.name)
        .collect();
    names.push("a nested network");
    format!(
        "a network needs at least one layer that fixes its sizes ({}); every layer here keeps its input's size",
        names.join(", ")
    )
}

/// `: f32` or `: f64`, or `f32` when left out.
fn check_scalar(scalar: Option<&Ident>, errors: &mut Errors) -> Scalar {
    match scalar {
        None => Scalar::F32,
        Some(ty) if ty == "f32" => Scalar::F32,
        Some(ty) if ty == "f64" => Scalar::F64,
        Some(ty) => {
            errors.at(
                ty.span(),
                format!("unsupported scalar type `{ty}`: expected `f32` or `f64`"),
            );
            Scalar::F32
        }
    }
}

/// Rejects `#[derive(Clone)]` and the like, which would collide with the generated derives.
fn check_derives(attrs: &[syn::Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            if let Some(name) = BUILT_IN_DERIVES.iter().find(|d| meta.path.is_ident(d)) {
                errors.over(
                    &meta.path,
                    format!("`network!` already derives `{name}` for the generated struct; remove it here"),
                );
            }
            Ok(())
        });
    }
}

/// Checks the number of arguments against the kind; reports and returns false on a mismatch.
fn check_arity(kind: &LayerKind, syntax: &LayerSyntax, args: &[Arg], errors: &mut Errors) -> bool {
    let (min, max) = (kind.required_args(), kind.args.len());
    if (min..=max).contains(&args.len()) {
        return true;
    }
    if max == 0 {
        let paren = syntax
            .args
            .as_ref()
            .map_or(syntax.name.span(), |a| a.paren.span.join());
        errors.at(
            paren,
            format!("`{}` takes no arguments; write `{}`", kind.name, kind.name),
        );
    } else if args.len() > max {
        errors.over(
            &args[max],
            format!(
                "`{}` takes {} argument{}, found {}: write `{}`",
                kind.name,
                max,
                plural(max),
                args.len(),
                kind.signature()
            ),
        );
    } else {
        let found = if args.is_empty() {
            "none".to_string()
        } else {
            args.len().to_string()
        };
        errors.over(
            syntax,
            format!(
                "`{}` takes {} argument{}, found {found}: write `{}`",
                kind.name,
                min,
                plural(min),
                kind.signature()
            ),
        );
    }
    false
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A size argument: a whole number from 1 to `MAX_SIZE`.
fn size_value(kind: &LayerKind, name: &str, arg: &Arg) -> syn::Result<usize> {
    let what = format!(
        "`{name}` of `{}` must be a whole number of features, at least 1",
        kind.name
    );
    let Arg::Number(Number {
        minus: None,
        lit: Lit::Int(lit),
    }) = arg
    else {
        return Err(syn::Error::new_spanned(
            arg,
            format!("{what}; found `{}`", arg.display()),
        ));
    };
    if !matches!(lit.suffix(), "" | "usize") {
        return Err(syn::Error::new(
            lit.span(),
            format!("{what}; write it without the `{}` suffix", lit.suffix()),
        ));
    }
    match lit.base10_parse::<usize>() {
        Ok(0) => Err(syn::Error::new(lit.span(), format!("{what}; found `0`"))),
        Ok(n) if n <= MAX_SIZE => Ok(n),
        _ => Err(syn::Error::new(
            lit.span(),
            format!(
                "`{name}` of `{}` is too large: at most {MAX_SIZE}",
                kind.name
            ),
        )),
    }
}

/// A numeric argument: finite, and representable in the network's scalar type.
fn number_value(name: &str, arg: &Arg, scalar: Scalar) -> syn::Result<f64> {
    let invalid =
        || syn::Error::new_spanned(arg, format!("`{name}` must be a number such as `0.01`"));
    let Arg::Number(Number { minus, lit }) = arg else {
        return Err(invalid());
    };
    let parsed = match lit {
        Lit::Float(lit) if matches!(lit.suffix(), "" | "f32" | "f64") => {
            lit.base10_parse::<f64>().ok()
        }
        Lit::Int(lit) if lit.suffix().is_empty() => lit.base10_parse::<f64>().ok(),
        _ => None,
    };
    let value = match parsed {
        Some(v) if minus.is_some() => -v,
        Some(v) => v,
        None => return Err(invalid()),
    };
    let finite = match scalar {
        Scalar::F32 => (value as f32).is_finite(),
        Scalar::F64 => value.is_finite(),
    };
    if finite {
        Ok(value)
    } else {
        Err(syn::Error::new_spanned(
            arg,
            format!("`{name}` is out of range for `{}`", scalar.tokens()),
        ))
    }
}

/// The error for a layer whose declared input size differs from what reaches it.
fn size_mismatch_message(actual: usize, declared: usize, producer: Option<&str>) -> String {
    let from = match producer {
        Some(p) => format!("the previous layer `{p}` produces {actual}"),
        None => format!("the network's input has {actual}"),
    };
    format!(
        "expected {actual} input features, found {declared}: {from}\nhelp: change `{declared}` to `{actual}`"
    )
}

/// Every name a layer can be written with.
fn known_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.push(RESIDUAL);
    names
}

/// "unknown layer", with the known kinds and the closest one.
fn unknown_layer_message(name: &str, closest: Option<&str>) -> String {
    let mut message = format!(
        "unknown layer `{name}`; the known layers are {}, or a network declared with `network!` (by its name)",
        known_names().join(", ")
    );
    if let Some(closest) = closest {
        message.push_str(&format!("\nhelp: did you mean `{closest}`?"));
    }
    message
}

/// The known name nearest to `name` by case-insensitive edit distance, if near enough to be a
/// likely typo.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
