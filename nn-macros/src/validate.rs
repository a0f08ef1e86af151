//! From syntax to the checked model: every rule a declaration must follow, each mistake
//! reported on the token that breaks it, all of them at once.
//!
//! What a layer kind takes and does is the layer table's (`layers`); this module binds the
//! written arguments to a kind's (positional in torch's order, keywords by torch's names,
//! defaults filled in), names the layers, and chains their sizes.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::{Ident, Lit};

use crate::ast::{Arg, LayerSyntax, NetworkInput, Number};
use crate::definitions::Definitions;
use crate::errors::Errors;
use crate::layers::{self, ArgKind, ArgSpec, Entry, Lookup, Value};
use crate::model::{Layer, Network, Part, Scalar, Shape, Size, SizeCheck};

/// The largest size a layer may declare. Far above what fits in memory as a static matrix;
/// it exists so that size arithmetic cannot overflow.
const MAX_SIZE: usize = 1 << 24;

/// Derives the generated struct already has, which the user must not derive again.
const BUILT_IN_DERIVES: &[&str] = &["Clone", "Debug", "PartialEq"];

/// Checks a parsed declaration and builds its model, or returns every mistake in it.
pub fn check(input: NetworkInput, definitions: &Definitions) -> syn::Result<Network> {
    let NetworkInput {
        attrs,
        vis,
        ident,
        scalar,
        body_span,
        layers,
        errors,
        weights,
    } = input;
    let mut cx = Checker {
        definitions,
        scalar: Scalar::F32,
        errors,
        size_checks: Vec::new(),
        fields: HashSet::new(),
        generated: HashSet::new(),
    };
    check_derives(&attrs, &mut cx.errors);
    check_reserved(&ident, "network", &mut cx.errors);
    cx.scalar = check_scalar(scalar.as_ref(), &mut cx.errors);
    let mut checked = cx.list(&layers, None);
    if layers.is_empty() {
        // Layers that did not parse were reported already: "no layer" is for an empty list.
        if cx.errors.is_empty() {
            cx.errors.at(
                body_span,
                "a network needs at least one layer, e.g. `{ Linear(2, 8), ReLU, Linear(8, 1) }`",
            );
        }
    } else {
        match declared_input(&checked) {
            Some(input) => {
                cx.chain(&mut checked, Some(input));
            }
            None if checked.iter().all(Option::is_some) => {
                cx.errors.at(body_span, no_sizes_message())
            }
            // An unknown layer may have been meant to fix the sizes: its error is enough.
            None => {}
        }
    }
    let io_spans = io_spans(&checked);
    let Checker {
        scalar,
        errors,
        size_checks,
        ..
    } = cx;
    let layers: Vec<Layer> = checked.into_iter().flatten().collect();
    let mut errors = errors;
    sequence_modes(&layers, scalar, &mut errors);
    // Compared only against a declaration without mistakes, whose tensor list is right.
    let compare = errors.is_empty();
    let weights =
        weights.and_then(|lit| crate::compiled::check(&lit, &layers, scalar, compare, &mut errors));
    errors.finish(Network {
        attrs,
        vis,
        ident,
        scalar,
        layers,
        size_checks,
        io_spans,
        weights,
    })
}

/// The state of checking one declaration.
struct Checker<'d> {
    /// The activations the invocation defines.
    definitions: &'d Definitions,
    scalar: Scalar,
    errors: Errors,
    size_checks: Vec<SizeCheck>,
    /// The fields named so far, to catch a name given twice.
    fields: HashSet<String>,
    /// The fields of unnamed layers inside named blocks (`block_0`), which a name could take.
    generated: HashSet<String>,
}

/// Where a list of layers sits: the field and `state_dict` prefix of the block holding it.
struct Parent<'a> {
    field: &'a Ident,
    prefix: &'a str,
}

impl Checker<'_> {
    /// Checks each layer of a list on its own; `None` for a layer with mistakes.
    fn list(&mut self, syntax: &[LayerSyntax], parent: Option<Parent>) -> Vec<Option<Layer>> {
        syntax
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer(i, parent.as_ref(), l))
            .collect()
    }

    /// Checks one layer: its name, its kind and its arguments. Sizes are chained afterwards.
    fn layer(
        &mut self,
        index: usize,
        parent: Option<&Parent>,
        syntax: &LayerSyntax,
    ) -> Option<Layer> {
        let (field, prefix) = self.place(index, parent, syntax);
        let here = Parent {
            field: &field,
            prefix: &prefix,
        };
        if let Some(closure) = &syntax.closure {
            let what = format!("user-defined: `{}`", syntax.display());
            let kind = layers::activation::user(closure, &[], what)
                .map_err(|e| self.errors.push(e))
                .ok()?;
            return Some(self.made(field, prefix, kind, syntax));
        }
        let name = syntax.name.to_string();
        if let Some(defined) = self.definitions.find(&name) {
            let args = defined.args();
            let entry = defined.entry(&args);
            let values = self.bind(&entry, syntax, &here)?;
            // A definition with mistakes was reported where it is written.
            let kind = defined.instantiate(&values).filter(|_| defined.ok)?;
            return Some(self.made(field, prefix, kind, syntax));
        }
        let kind = match layers::lookup(&name) {
            Lookup::Entry(entry) => {
                let values = self.bind(entry, syntax, &here)?;
                (entry.build)(values)
            }
            Lookup::Nested => self.nested(syntax)?,
            Lookup::Unsupported => {
                self.errors.at(
                    syntax.name.span(),
                    format!(
                        "`{}` is a PyTorch module that `network!` does not support; the supported layers are {}",
                        syntax.name,
                        layers::known()
                    ),
                );
                return None;
            }
            Lookup::Unknown(closest) => {
                self.errors.at(
                    syntax.name.span(),
                    unknown_layer_message(&syntax.name.to_string(), closest),
                );
                return None;
            }
        };
        Some(self.made(field, prefix, kind, syntax))
    }

    /// The layer of `kind`, its sizes yet to be chained.
    fn made(
        &self,
        field: Ident,
        prefix: String,
        kind: Box<dyn layers::Kind>,
        syntax: &LayerSyntax,
    ) -> Layer {
        Layer {
            field,
            prefix,
            kind,
            input: Size::Known(0),
            output: Size::Known(0),
            source: syntax.display(),
            span: syntax.name.span(),
        }
    }

    /// The field and `state_dict` prefix of a layer: its own name, or its position.
    fn place(
        &mut self,
        index: usize,
        parent: Option<&Parent>,
        syntax: &LayerSyntax,
    ) -> (Ident, String) {
        let own = syntax
            .label
            .as_ref()
            .map_or(index.to_string(), Ident::to_string);
        let prefix = match parent {
            Some(p) => format!("{}.{own}", p.prefix),
            None => own,
        };
        let field = match (&syntax.label, parent) {
            (Some(label), _) => {
                self.check_label(label);
                label.clone()
            }
            (None, Some(p)) => {
                let field = quote::format_ident!("{}_{index}", p.field);
                // Inside a named block the field is `{name}_{i}`, which a layer may be named.
                if self.fields.contains(&field.to_string())
                    || !self.generated.insert(field.to_string())
                {
                    self.errors.at(
                        syntax.name.span(),
                        format!("this layer's field is `{field}`, after its place in the block, but a layer is already named `{field}`; rename that layer"),
                    );
                }
                field
            }
            (None, None) => quote::format_ident!("l{index}"),
        };
        (field, prefix)
    }

    /// A layer's name must be a plain field name, not one the macro gives unnamed layers, and
    /// not given twice.
    fn check_label(&mut self, label: &Ident) {
        let text = label.to_string();
        let positional = text.strip_prefix('l').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .split('_')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if text.starts_with("r#") || text == "self" || text == "Self" {
            self.errors.at(label.span(), format!("`{text}` cannot name a layer: a layer's name is a field name, e.g. `encoder: Linear(2, 8)`"));
        } else if positional {
            self.errors.at(label.span(), format!("`{text}` is the name unnamed layers get from their position; choose another, e.g. `encoder`"));
        } else if !check_reserved(label, "layer", &mut self.errors) {
            // Reported.
        } else if self.generated.contains(&text) {
            self.errors.at(label.span(), format!("`{text}` is the field of an unnamed layer of a named block (`{{block}}_{{i}}`); choose another name"));
        } else if !self.fields.insert(text.clone()) {
            self.errors.at(label.span(), format!("a layer is already named `{text}`; each layer's name must be unique (it names a field and a `state_dict` prefix)"));
        }
    }

    /// Binds the written arguments of a table kind to its arguments: positional in order, then
    /// keywords by name, then defaults. Reports every mistake; `None` if there was one.
    fn bind(&mut self, entry: &Entry, syntax: &LayerSyntax, here: &Parent) -> Option<Vec<Value>> {
        let written = syntax.args.as_ref().map_or(&[][..], |a| &a.list[..]);
        let mut slots: Vec<Option<&Arg>> = vec![None; entry.args.len()];
        let mut ok = true;
        let mut rest_layers: Vec<&LayerSyntax> = Vec::new();
        let mut positional = 0;
        let mut seen_keyword = false;
        let takes_layers = entry.args.iter().any(|a| matches!(a.kind, ArgKind::Layers));
        for arg in written {
            match arg {
                Arg::Keyword(name, value) => {
                    seen_keyword = true;
                    ok &= self.keyword(entry, name, value, &mut slots);
                }
                _ if seen_keyword => {
                    self.errors.over(
                        arg,
                        "positional arguments go before keyword arguments (`name = value`)",
                    );
                    ok = false;
                }
                Arg::Layer(layer) if takes_layers => rest_layers.push(layer),
                _ if takes_layers => {
                    self.errors.over(
                        arg,
                        format!(
                            "`{}` takes layers, e.g. `{}(Linear(8, 8), ReLU)`",
                            entry.name, entry.name
                        ),
                    );
                    ok = false;
                }
                _ => {
                    if positional < slots.len() {
                        slots[positional] = Some(arg);
                    }
                    positional += 1;
                }
            }
        }
        if !takes_layers && !self.check_arity(entry, syntax, written, positional) {
            return None;
        }
        let mut values = Vec::with_capacity(entry.args.len());
        let mut missing = Vec::new();
        for (spec, slot) in entry.args.iter().zip(&slots) {
            if slot.is_none()
                && matches!(spec.kind, ArgKind::Size | ArgKind::Number { default: None })
            {
                missing.push(spec.name);
                continue;
            }
            match self.value(entry, spec, *slot, syntax, &rest_layers, here) {
                Some(value) => values.push(value),
                None => ok = false,
            }
        }
        // After a misplaced or unknown argument, what is missing may be that one: its error
        // is enough.
        if !missing.is_empty() && ok {
            self.missing(entry, syntax, &missing, seen_keyword);
        }
        (ok && missing.is_empty()).then_some(values)
    }

    /// Puts `name = value` in its slot; false (reported) for an unknown or repeated keyword.
    fn keyword<'a>(
        &mut self,
        entry: &Entry,
        name: &Ident,
        value: &'a Arg,
        slots: &mut [Option<&'a Arg>],
    ) -> bool {
        let text = name.to_string();
        let names: Vec<&str> = entry
            .args
            .iter()
            .filter(|a| !matches!(a.kind, ArgKind::Layers))
            .map(|a| a.name)
            .collect();
        match entry
            .args
            .iter()
            .position(|a| a.name == text && !matches!(a.kind, ArgKind::Layers))
        {
            Some(i) if slots[i].is_some() => {
                self.errors
                    .at(name.span(), format!("`{text}` is given twice"));
                false
            }
            Some(i) => {
                slots[i] = Some(value);
                true
            }
            None => {
                let mut message = if names.is_empty() {
                    format!("`{}` takes no keyword arguments", entry.name)
                } else {
                    format!(
                        "`{}` has no argument `{text}`; its arguments are {}",
                        entry.name,
                        quoted(&names)
                    )
                };
                if let Some(close) = layers::closest(&text, &names) {
                    message.push_str(&format!("\nhelp: did you mean `{close}`?"));
                }
                self.errors.at(name.span(), message);
                false
            }
        }
    }

    /// Checks the number of positional arguments against the kind; reports and returns false
    /// on a mismatch.
    fn check_arity(
        &mut self,
        entry: &Entry,
        syntax: &LayerSyntax,
        written: &[Arg],
        positional: usize,
    ) -> bool {
        let max = entry.args.len();
        if positional <= max {
            return true;
        }
        if max == 0 {
            let paren = syntax
                .args
                .as_ref()
                .map_or(syntax.name.span(), |a| a.paren.span.join());
            self.errors.at(
                paren,
                format!(
                    "`{}` takes no arguments; write `{}`",
                    entry.name, entry.name
                ),
            );
        } else {
            self.errors.over(
                &written[max],
                format!(
                    "`{}` takes {max} argument{}, found {positional}: write `{}`",
                    entry.name,
                    plural(max),
                    entry.signature()
                ),
            );
        }
        false
    }

    /// The checked value of one argument: written, or its default.
    fn value(
        &mut self,
        entry: &Entry,
        spec: &ArgSpec,
        arg: Option<&Arg>,
        syntax: &LayerSyntax,
        layers: &[&LayerSyntax],
        here: &Parent,
    ) -> Option<Value> {
        let result = match (&spec.kind, arg) {
            (ArgKind::Size, Some(arg)) => {
                size_value(entry, spec.name, arg).map(|(n, s)| Value::Size(n, s))
            }
            (ArgKind::Number { .. }, Some(arg)) => {
                number_value(spec.name, arg, self.scalar).map(Value::Number)
            }
            (ArgKind::Number { default: Some(d) }, None) => Ok(Value::Number(*d)),
            (ArgKind::Choice { choices, .. }, Some(arg)) => {
                choice_value(spec.name, arg, choices).map(Value::Str)
            }
            (ArgKind::Choice { default, .. }, None) => Ok(Value::Str(default.to_string())),
            (ArgKind::OptionalSize { .. }, Some(arg)) => {
                size_value(entry, spec.name, arg).map(|(n, s)| Value::Size(n, s))
            }
            (ArgKind::OptionalSize { default }, None) => {
                Ok(Value::Size(*default, Span::call_site()))
            }
            (ArgKind::Dim { allowed, why }, Some(arg)) => {
                dim_value(spec.name, arg, allowed, why).map(Value::Number)
            }
            (ArgKind::Dim { allowed, .. }, None) => Ok(Value::Number(allowed[0] as f64)),
            (ArgKind::Bool { .. }, Some(Arg::Bool(lit))) => Ok(Value::Bool(lit.value)),
            (ArgKind::Bool { .. }, Some(arg)) => Err(syn::Error::new_spanned(
                arg,
                format!(
                    "`{}` is `true` or `false`; found `{}`",
                    spec.name,
                    arg.display()
                ),
            )),
            (ArgKind::Bool { default }, None) => Ok(Value::Bool(*default)),
            (ArgKind::Spatial { min, words, .. }, Some(arg)) => {
                spatial_value(spec.name, arg, *min, words)
            }
            (
                ArgKind::Spatial {
                    default: Some(d), ..
                },
                None,
            ) => Ok(Value::Spatial(vec![*d], Span::call_site())),
            (ArgKind::Spatial { default: None, .. }, None) => Ok(Value::Absent),
            (ArgKind::Layers, _) => return self.block(entry, syntax, layers, here),
            // Required arguments left out are reported together, by `missing`.
            (_, None) => return None,
        };
        result.map_err(|e| self.errors.push(e)).ok()
    }

    /// Reports required arguments that were not given.
    fn missing(&mut self, entry: &Entry, syntax: &LayerSyntax, missing: &[&str], keywords: bool) {
        let message = if keywords {
            format!(
                "`{}` is missing {} {}: write `{}`",
                entry.name,
                if missing.len() == 1 {
                    "its argument"
                } else {
                    "its arguments"
                },
                quoted(missing),
                entry.signature()
            )
        } else {
            let (required, found) = (
                entry.required_args(),
                syntax.args.as_ref().map_or(0, |a| a.list.len()),
            );
            let found = if found == 0 {
                "none".to_string()
            } else {
                found.to_string()
            };
            format!(
                "`{}` takes {required} argument{}, found {found}: write `{}`",
                entry.name,
                plural(required),
                entry.signature()
            )
        };
        self.errors.over(syntax, message);
    }

    /// The checked layers of a block such as `Residual(layer, ...)`.
    fn block(
        &mut self,
        entry: &Entry,
        syntax: &LayerSyntax,
        layers: &[&LayerSyntax],
        here: &Parent,
    ) -> Option<Value> {
        if layers.is_empty() {
            if syntax.args.as_ref().is_none_or(|a| a.list.is_empty()) {
                self.errors.over(
                    syntax,
                    format!(
                        "`{}` needs at least one layer, e.g. `{}(Linear(8, 8), ReLU)`",
                        entry.name, entry.name
                    ),
                );
            }
            return None;
        }
        let checked: Vec<Option<Layer>> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer(i, Some(here), l))
            .collect();
        checked
            .iter()
            .all(Option::is_some)
            .then(|| Value::Layers(checked.into_iter().flatten().collect()))
    }

    /// A network declared elsewhere, used by its name as one layer.
    fn nested(&mut self, syntax: &LayerSyntax) -> Option<Box<dyn layers::Kind>> {
        if let Some(args) = &syntax.args {
            self.errors.at(
                args.paren.span.join(),
                format!(
                    "`{}` is used as a nested network, which takes no arguments: its sizes are its own",
                    syntax.name
                ),
            );
            return None;
        }
        check_reserved(&syntax.name, "network", &mut self.errors)
            .then(|| layers::nested(syntax.name.clone()))
    }

    /// Resolves sizes along a checked list, starting from `input` (`None`: unknown, after a
    /// mistake). Layers that failed their own checks (`None`) break the chain: it is picked up
    /// again at the next layer that declares its input, so one typo does not also read as a
    /// size mismatch. Returns the size the list produces.
    fn chain(&mut self, layers: &mut [Option<Layer>], input: Option<Size>) -> Option<Size> {
        self.chain_shaped(layers, input, Shape::Flat, &mut Vec::new())
            .map(|(size, _)| size)
    }

    /// Chains sizes and shapes through `layers` from `input` of shape `shape`; `shapes` is the
    /// story since a layer first gave the features a shape (`Unflatten(1, 8, 8) (1, 8, 8)`,
    /// `Conv2d(1, 8, 3) (8, 6, 6)`, ...), told in errors.
    fn chain_shaped(
        &mut self,
        layers: &mut [Option<Layer>],
        input: Option<Size>,
        mut shape: Shape,
        shapes: &mut Vec<String>,
    ) -> Option<(Size, Shape)> {
        let mut features = input;
        let mut producer: Option<String> = None;
        for slot in layers.iter_mut() {
            let Some(layer) = slot else {
                features = None;
                continue;
            };
            // The shape first: a kind may learn from it what it is (a `Conv1d` on flat
            // features is causal, on a length not) and so which size it declares.
            let arriving = features.clone().unwrap_or(Size::Known(0));
            let Some(next) = self.shape_layer(layer, &shape, &arriving, shapes) else {
                // Told. The layers after it are still checked, as if it kept the shape, but
                // with the number of features unknown, so that its mistake is not repeated.
                features = None;
                continue;
            };
            let declared = layer.kind.declared_input();
            let known = features.is_some() || declared.is_some();
            let incoming = match (&declared, features.take()) {
                (Some(declared), Some(actual)) => {
                    let told = told(shapes);
                    self.meet(actual.clone(), declared, layer, producer.as_deref(), &told);
                    if layer.kind.adopts_input() {
                        actual
                    } else {
                        declared.clone()
                    }
                }
                (Some(declared), None) => declared.clone(),
                (None, actual) => actual.unwrap_or(Size::Known(0)),
            };
            layer.input = incoming.clone();
            if let Some(inner) = layer.kind.inner_mut() {
                let mut slots: Vec<Option<Layer>> =
                    std::mem::take(inner).into_iter().map(Some).collect();
                let output =
                    self.chain_shaped(&mut slots, Some(incoming.clone()), shape.clone(), shapes);
                if let Some(inner) = layer.kind.inner_mut() {
                    *inner = slots.into_iter().flatten().collect();
                }
                if let Some((output, _)) = output {
                    self.check_block(layer, &incoming, output);
                }
            }
            layer.output = layer.kind.output(&incoming);
            shape = next;
            if shape != Shape::Flat || !shapes.is_empty() {
                // After a mistake the number of features is unknown: only the shape is told.
                let told = if known {
                    describe(&shape, &layer.output)
                } else {
                    shape.describe()
                };
                shapes.push(format!("`{}` {told}", layer.source));
            }
            // The layer the next size error names: the last that stated or changed the size.
            if declared.is_some() || layer.output != incoming {
                producer = Some(layer.source.clone());
            }
            // A layer that keeps its size passes on "unknown" after a mistake.
            features = known.then(|| layer.output.clone());
        }
        features.map(|f| (f, shape))
    }

    /// The shape `layer` gives from `shape`; `None` (reported, with the shapes so far) where
    /// it cannot take it.
    fn shape_layer(
        &mut self,
        layer: &mut Layer,
        shape: &Shape,
        incoming: &Size,
        shapes: &[String],
    ) -> Option<Shape> {
        let result = if layer.kind.flat_only() && *shape != Shape::Flat {
            Err(format!(
                "`{}` takes flat features, but here they have shape {}: add `Flatten` before it",
                layer.source,
                shape.describe()
            ))
        } else {
            layer.kind.shape(shape, incoming)
        };
        match result {
            Ok(next) => Some(next),
            Err(message) => {
                let told = told(shapes);
                self.errors.at(layer.span, format!("{message}{told}"));
                None
            }
        }
    }

    /// Whether a block's layers fit it: an error now where the sizes are known, a check for
    /// the compiler where a nested network's are involved.
    fn check_block(&mut self, layer: &Layer, input: &Size, output: Size) {
        let Some(message) = layer.kind.check_block(input, &output) else {
            return;
        };
        match (input, &output) {
            (Size::Known(i), Size::Known(o)) if i == o => {}
            (Size::Known(_), Size::Known(_)) => {
                let text: String = message
                    .iter()
                    .map(|part| match part {
                        Part::Text(text) => text.clone(),
                        Part::Size(size) => size.describe(),
                    })
                    .collect();
                self.errors.at(layer.span, text);
            }
            _ => self.size_checks.push(SizeCheck {
                actual: output,
                declared: input.clone(),
                message,
                span: layer.span,
            }),
        }
    }

    /// Where the size a chain carries meets the size a layer declares: an error now if both
    /// are literals and differ, a check for the compiler if either is a nested network's.
    fn meet(
        &mut self,
        actual: Size,
        declared: &Size,
        layer: &Layer,
        producer: Option<&str>,
        told: &str,
    ) {
        let span = layer.kind.input_span().unwrap_or_else(Span::call_site);
        match (&actual, declared) {
            (Size::Known(a), Size::Known(d)) if a != d => {
                self.errors.at(
                    span,
                    format!("{}{told}", size_mismatch_message(*a, *d, producer)),
                );
            }
            (a, d) if a == d => {}
            (Size::Known(_), Size::Known(_)) => {}
            _ => {
                let from = match producer {
                    Some(p) => format!(": the previous layer `{p}` produces "),
                    None => ": the network's input has ".to_string(),
                };
                self.size_checks.push(SizeCheck {
                    actual: actual.clone(),
                    declared: declared.clone(),
                    message: vec![
                        Part::Text(format!("`{}` expects ", layer.source)),
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
fn io_spans(layers: &[Option<Layer>]) -> (Span, Span) {
    let sized: Vec<&Layer> = layers
        .iter()
        .flatten()
        .filter(|l| l.kind.declared_input().is_some())
        .collect();
    let input = sized
        .first()
        .and_then(|l| l.kind.input_span())
        .unwrap_or_else(Span::call_site);
    let output = sized
        .last()
        .and_then(|l| l.kind.output_span())
        .unwrap_or_else(Span::call_site);
    (input, output)
}

/// The input size of a list: that of its first layer that declares one, looking inside blocks
/// (`None` also where a layer with mistakes comes first: it may have been meant to).
fn declared_input(layers: &[Option<Layer>]) -> Option<Size> {
    layers
        .iter()
        .map_while(Option::as_ref)
        .find_map(layer_declared_input)
}

/// The input size a layer declares, looking inside blocks.
fn layer_declared_input(layer: &Layer) -> Option<Size> {
    match layer.kind.inner() {
        Some(inner) => inner.iter().find_map(layer_declared_input),
        None => layer.kind.declared_input(),
    }
}

fn no_sizes_message() -> String {
    let mut names = layers::sized_names();
    names.push("a nested network");
    format!(
        "a network needs at least one layer that fixes its sizes ({}); every layer here keeps its input's size",
        names.join(", ")
    )
}

/// Names starting with `__` are the generated code's own: reserving them is what keeps the
/// generated identifiers from ever colliding with the user's. True if `ident` is fine.
fn check_reserved(ident: &Ident, what: &str, errors: &mut Errors) -> bool {
    let reserved = ident.to_string().starts_with("__");
    if reserved {
        errors.at(
            ident.span(),
            format!("a {what} name may not start with `__`: such names are reserved for the code `network!` generates"),
        );
    }
    !reserved
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

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `` `a`, `b` and `c` ``.
fn quoted(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    names.join(", ")
}

/// A size argument: a whole number from 1 to `MAX_SIZE`, and the span of its literal.
fn size_value(entry: &Entry, name: &str, arg: &Arg) -> syn::Result<(usize, Span)> {
    // A count of features or channels, or another count (a kernel's size, a dilation).
    let features = name != "kernel_size"
        && ["_features", "_size", "_channels"]
            .iter()
            .any(|end| name.ends_with(end));
    let what = format!(
        "`{name}` of `{}` must be a whole number{}, at least 1",
        entry.name,
        if features { " of features" } else { "" }
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
        Ok(n) if n <= MAX_SIZE => Ok((n, lit.span())),
        _ => Err(syn::Error::new(
            lit.span(),
            format!(
                "`{name}` of `{}` is too large: at most {MAX_SIZE}",
                entry.name
            ),
        )),
    }
}

/// A numeric argument: finite, and representable in the network's scalar type.
/// Batch statistics and dropout are not supported in a sequence network yet: its windows would
/// need them per time step.
fn sequence_modes(layers: &[Layer], scalar: Scalar, errors: &mut Errors) {
    let mut all = Vec::new();
    fn walk<'a>(layers: &'a [Layer], all: &mut Vec<&'a Layer>) {
        for layer in layers {
            all.push(layer);
            if let Some(inner) = layer.kind.inner() {
                walk(inner, all);
            }
        }
    }
    walk(layers, &mut all);
    if all.iter().any(|l| l.kind.state(l, scalar).is_some()) {
        for layer in all.iter().filter(|l| l.kind.moded()) {
            errors.at(
                layer.span,
                format!(
                    "`{}` in a sequence network is not supported yet (its training and inference differ per time step)",
                    layer.source
                ),
            );
        }
    }
}

/// The shapes a chain has gone through since a layer first gave its features a shape, as a
/// note for an error; nothing while they are flat.
fn told(shapes: &[String]) -> String {
    if shapes.is_empty() {
        return String::new();
    }
    format!("\nnote: the features' shapes: {}", shapes.join(" -> "))
}

/// A shape with its feature count: `(8, 3, 3)`, or `72 features` when flat.
fn describe(shape: &Shape, features: &Size) -> String {
    match shape {
        Shape::Flat => format!("{} features", features.describe()),
        shaped => shaped.describe(),
    }
}

/// A string argument, one of `choices`.
fn choice_value(name: &str, arg: &Arg, choices: &[&str]) -> syn::Result<String> {
    let listed: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
    match arg {
        Arg::Str(lit) if choices.contains(&lit.value().as_str()) => Ok(lit.value()),
        _ => Err(syn::Error::new_spanned(
            arg,
            format!(
                "`{name}` must be one of {}; found `{}`",
                listed.join(", "),
                arg.display()
            ),
        )),
    }
}

/// A spatial size: a whole number, a tuple of them, or one of `words`.
fn spatial_value(name: &str, arg: &Arg, min: usize, words: &[&str]) -> syn::Result<Value> {
    let number = |arg: &Arg| match arg {
        Arg::Number(Number {
            minus: None,
            lit: Lit::Int(lit),
        }) if lit.suffix().is_empty() => lit.base10_parse::<usize>().ok().filter(|n| *n >= min),
        _ => None,
    };
    let span = syn::spanned::Spanned::span(&quote::ToTokens::to_token_stream(arg));
    let found = match arg {
        Arg::Str(lit) if words.contains(&lit.value().as_str()) => {
            return Ok(Value::Str(lit.value()));
        }
        Arg::Tuple(_, list) if !list.is_empty() && list.len() <= 3 => {
            list.iter().map(number).collect::<Option<Vec<usize>>>()
        }
        Arg::Tuple(..) => None,
        other => number(other).map(|n| vec![n]),
    };
    match found {
        Some(values) if values.iter().all(|v| *v <= MAX_SIZE) => Ok(Value::Spatial(values, span)),
        _ => {
            let mut expected =
                format!("a whole number of at least {min}, or one per axis, e.g. `(3, 2)`");
            if !words.is_empty() {
                let words: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
                expected.push_str(&format!(", or {}", words.join(" or ")));
            }
            Err(syn::Error::new_spanned(
                arg,
                format!("`{name}` must be {expected}; found `{}`", arg.display()),
            ))
        }
    }
}

/// A dimension: an integer among `allowed`.
fn dim_value(name: &str, arg: &Arg, allowed: &[i64], why: &str) -> syn::Result<f64> {
    let value = number_value(name, arg, Scalar::F64).ok();
    match value {
        Some(v)
            if allowed.iter().any(|&a| a as f64 == v)
                && matches!(
                    arg,
                    Arg::Number(Number {
                        lit: Lit::Int(_),
                        ..
                    })
                ) =>
        {
            Ok(v)
        }
        _ => {
            let listed: Vec<String> = allowed.iter().map(i64::to_string).collect();
            Err(syn::Error::new_spanned(
                arg,
                format!(
                    "`{name}` must be {}; found `{}`: {why}",
                    listed.join(" or "),
                    arg.display()
                ),
            ))
        }
    }
}

/// A finite number for `scalar`.
pub fn number_value(name: &str, arg: &Arg, scalar: Scalar) -> syn::Result<f64> {
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

/// "unknown layer", with the known kinds and the closest one.
fn unknown_layer_message(name: &str, closest: Option<&str>) -> String {
    let mut message = format!(
        "unknown layer `{name}`; the known layers are {}, or a network declared with `network!` (by its name)",
        layers::known()
    );
    if let Some(closest) = closest {
        message.push_str(&format!("\nhelp: did you mean `{closest}`?"));
    }
    message
}
