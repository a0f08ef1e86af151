//! From syntax to the checked model: every rule a declaration must follow, each mistake
//! reported on the token that breaks it, all of them at once.

use proc_macro2::Span;
use syn::{Ident, Lit};

use crate::ast::{Arg, LayerSyntax, NetworkInput};
use crate::errors::Errors;
use crate::layers::{self, ArgKind, KINDS, LayerKind};
use crate::model::{Layer, Network, Scalar};

/// The largest size a layer may declare. Far above what fits in memory as a static matrix;
/// it exists so that size arithmetic cannot overflow.
const MAX_SIZE: usize = 1 << 24;

/// Derives the generated struct already has, which the user must not derive again.
const BUILT_IN_DERIVES: &[&str] = &["Clone", "Debug", "PartialEq"];

/// Checks a parsed declaration and builds its model, or returns every mistake in it.
pub fn check(input: NetworkInput) -> syn::Result<Network> {
    let NetworkInput {
        attrs,
        vis,
        ident,
        scalar,
        body_span,
        layers,
        mut errors,
    } = input;
    check_derives(&attrs, &mut errors);
    let scalar = check_scalar(scalar.as_ref(), &mut errors);
    let mut checked: Vec<Option<Layer>> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| check_layer(i, l, scalar, &mut errors))
        .collect();
    if layers.is_empty() {
        errors.at(
            body_span,
            "a network needs at least one layer, e.g. `{ Linear(2, 8), ReLU, Linear(8, 1) }`",
        );
    } else {
        chain_sizes(&mut checked, &layers, body_span, &mut errors);
    }
    let layers = checked.into_iter().flatten().collect();
    errors.finish(Network {
        attrs,
        vis,
        ident,
        scalar,
        layers,
    })
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

/// Checks one layer on its own: a known kind with valid arguments. Sizes are chained later.
fn check_layer(
    index: usize,
    syntax: &LayerSyntax,
    scalar: Scalar,
    errors: &mut Errors,
) -> Option<Layer> {
    let name = syntax.name.to_string();
    let Some(kind) = layers::lookup(&name) else {
        errors.at(syntax.name.span(), unknown_layer_message(&name));
        return None;
    };
    let args = syntax.args.as_ref().map_or(&[][..], |a| &a.list[..]);
    if !check_arity(kind, syntax, args, errors) {
        return None;
    }
    let mut numbers = Vec::with_capacity(kind.args.len());
    let mut sizes = Vec::new();
    let mut ok = true;
    for (spec, i) in kind.args.iter().zip(0..) {
        match (&spec.kind, args.get(i)) {
            (ArgKind::Size, Some(arg)) => match size_value(kind, spec.name, arg) {
                Ok(size) => sizes.push(size),
                Err(e) => {
                    errors.push(e);
                    ok = false;
                }
            },
            (ArgKind::Number { .. }, Some(arg)) => match number_value(spec.name, arg, scalar) {
                Ok(value) => numbers.push(value),
                Err(e) => {
                    errors.push(e);
                    ok = false;
                }
            },
            (ArgKind::Number { default: Some(d) }, None) => numbers.push(*d),
            // Arity was checked: a missing argument without a default cannot get here.
            _ => ok = false,
        }
    }
    let (input, output) = match sizes[..] {
        [input, output, ..] => (input, output),
        // Sizes of shape-keeping layers are filled in when the chain is resolved.
        _ => (0, 0),
    };
    ok.then(|| Layer {
        index,
        kind,
        numbers,
        input,
        output,
        source: syntax.display(),
    })
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
                "`{}` takes {} argument{}: `{}`",
                kind.name,
                max,
                plural(max),
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
    let Lit::Int(lit) = &arg.lit else {
        return Err(syn::Error::new_spanned(
            arg,
            format!("{what}; found `{}`", arg.display()),
        ));
    };
    if arg.minus.is_some() {
        return Err(syn::Error::new_spanned(
            arg,
            format!("{what}; found `{}`", arg.display()),
        ));
    }
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
    let parsed = match &arg.lit {
        Lit::Float(lit) if matches!(lit.suffix(), "" | "f32" | "f64") => lit.base10_parse::<f64>(),
        Lit::Int(lit) if lit.suffix().is_empty() => lit.base10_parse::<f64>(),
        _ => Err(syn::Error::new(arg.lit.span(), "")),
    };
    let value = match parsed {
        Ok(v) if arg.minus.is_some() => -v,
        Ok(v) => v,
        Err(_) => {
            return Err(syn::Error::new_spanned(
                arg,
                format!("`{name}` must be a number such as `0.01`"),
            ));
        }
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

/// Resolves every layer's sizes along the chain: a resizing layer must take what the layer
/// before it produces; shape-keeping layers pass their input on.
///
/// A layer that failed its own checks (`None`) breaks the chain: sizes are checked again from
/// the next resizing layer on, so one typo does not also read as a size mismatch.
fn chain_sizes(
    layers: &mut [Option<Layer>],
    syntax: &[LayerSyntax],
    body_span: Span,
    errors: &mut Errors,
) {
    let Some(first_input) = layers
        .iter()
        .flatten()
        .find(|l| l.kind.resizes())
        .map(|l| l.input)
    else {
        if layers.iter().any(Option::is_none) {
            return; // an unknown layer may have been meant to fix the sizes
        }
        let names: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.resizes())
            .map(|k| k.name)
            .collect();
        errors.at(
            body_span,
            format!("a network needs at least one layer that fixes its sizes ({}); every layer here keeps its input's size", names.join(", ")),
        );
        return;
    };
    // Layers before the first resizing one work on the network's input.
    let mut features = Some(first_input);
    let mut producer: Option<usize> = None;
    for (i, slot) in layers.iter_mut().enumerate() {
        let Some(layer) = slot else {
            features = None;
            continue;
        };
        if layer.kind.resizes() {
            match features {
                Some(n) if n != layer.input => errors.push(size_mismatch(
                    layer,
                    &syntax[i],
                    n,
                    producer.map(|p| &syntax[p]),
                )),
                _ => {}
            }
            features = Some(layer.output);
            producer = Some(i);
        } else if let Some(n) = features {
            layer.input = n;
            layer.output = n;
        }
    }
}

/// The error for a layer whose declared input size differs from what reaches it.
fn size_mismatch(
    layer: &Layer,
    syntax: &LayerSyntax,
    features: usize,
    producer: Option<&LayerSyntax>,
) -> syn::Error {
    let found = layer.input;
    let from = match producer {
        Some(p) => format!("the previous layer `{}` produces {features}", p.display()),
        None => format!("the network's input has {features}"),
    };
    let message = format!(
        "expected {features} input features, found {found}: {from}\nhelp: change `{found}` to `{features}`"
    );
    let span = syntax
        .args
        .as_ref()
        .and_then(|a| a.list.first())
        .map_or(syntax.name.span(), |a| a.lit.span());
    syn::Error::new(span, message)
}

/// "unknown layer", with the known kinds and the closest one.
fn unknown_layer_message(name: &str) -> String {
    let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    let mut message = format!(
        "unknown layer `{name}`; the known layers are {}",
        known.join(", ")
    );
    if let Some(closest) = closest(name, &known) {
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
