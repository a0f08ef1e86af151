//! Named activations defined in a `network!` invocation (`activation Swish(beta = 1.0) = |x|
//! x * sigmoid(beta * x);`): checked once, where they are written, and then used by name by
//! any network of the invocation, their constants overridable where they are used.

use std::collections::HashSet;

use syn::ExprClosure;

use crate::ast::{Arg, Definition, tidy};
use crate::errors::Errors;
use crate::expr;
use crate::layers::{self, ArgKind, ArgSpec, Entry, Kind, Lookup, Value, activation};
use crate::model::Scalar;
use crate::validate::number_value;

/// The checked definitions of one invocation.
#[derive(Default)]
pub struct Definitions {
    list: Vec<Defined>,
}

/// One checked definition.
pub struct Defined {
    /// Its name.
    pub name: String,
    /// Its constants with their defaults.
    constants: Vec<(String, f64)>,
    closure: ExprClosure,
    /// Whether it compiled; networks using one that did not are not reported again.
    pub ok: bool,
}

/// Checks every definition, reporting each mistake once.
pub fn check(definitions: Vec<Definition>, errors: &mut Errors) -> Definitions {
    let mut names = HashSet::new();
    let list = definitions
        .into_iter()
        .map(|d| check_one(d, &mut names, errors))
        .collect();
    Definitions { list }
}

fn check_one(d: Definition, names: &mut HashSet<String>, errors: &mut Errors) -> Defined {
    let name = d.name.to_string();
    let mut ok = true;
    if !matches!(layers::lookup(&name), Lookup::Nested | Lookup::Unknown(_)) {
        errors.at(
            d.name.span(),
            format!(
                "`{name}` is a layer `network!` knows already; give the activation another name"
            ),
        );
        ok = false;
    } else if !names.insert(name.clone()) {
        errors.at(
            d.name.span(),
            format!("an activation is already named `{name}`"),
        );
        ok = false;
    }
    let mut constants = Vec::new();
    let mut seen = HashSet::new();
    for arg in &d.constants {
        let Arg::Keyword(constant, value) = arg else {
            errors.over(
                arg,
                "an activation's constants are `name = number`, e.g. `beta = 1.0`",
            );
            ok = false;
            continue;
        };
        let text = constant.to_string();
        if !seen.insert(text.clone()) {
            errors.at(
                constant.span(),
                format!("the constant `{text}` is given twice"),
            );
            ok = false;
        }
        match number_value(&text, value, Scalar::F64) {
            Ok(v) => constants.push((text, v)),
            Err(e) => {
                errors.push(e);
                ok = false;
                // Still a name the expression may use: its uses are not mistakes too.
                constants.push((text, 1.0));
            }
        }
    }
    if let Err(e) = expr::compile(&d.closure, &constants, None) {
        errors.push(e);
        ok = false;
    }
    Defined {
        name,
        constants,
        closure: d.closure,
        ok,
    }
}

impl Definitions {
    /// The definition named `name`.
    pub fn find(&self, name: &str) -> Option<&Defined> {
        self.list.iter().find(|d| d.name == name)
    }
}

impl Defined {
    /// Its arguments, as the checker binds a layer's: its constants, by name or in order,
    /// with their defaults.
    pub fn args(&self) -> Vec<ArgSpec<'_>> {
        self.constants
            .iter()
            .map(|(name, default)| ArgSpec {
                name,
                kind: ArgKind::Number {
                    default: Some(*default),
                },
            })
            .collect()
    }

    /// The definition as a table entry over `args`, for the checker's argument binding.
    pub fn entry<'a>(&'a self, args: &'a [ArgSpec<'a>]) -> Entry<'a> {
        Entry {
            name: &self.name,
            args,
            // Never called: a definition is instantiated by `instantiate`, which has its
            // closure; this is the table's constructor for the identity, a harmless stand-in.
            build: |_| activation::identity_kind(),
        }
    }

    /// The activation with the checked values of its constants.
    pub fn instantiate(&self, values: &[Value]) -> Option<Box<dyn Kind>> {
        let constants: Vec<(String, f64)> = self
            .constants
            .iter()
            .zip(values)
            .map(|((name, default), value)| match value {
                Value::Number(v) => (name.clone(), *v),
                _ => (name.clone(), *default),
            })
            .collect();
        let written: Vec<String> = constants
            .iter()
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        let what = format!(
            "user-defined `{}({})`: `{}`",
            self.name,
            written.join(", "),
            tidy(&quote::ToTokens::to_token_stream(&self.closure).to_string())
        );
        activation::user(&self.closure, &constants, what).ok()
    }
}
