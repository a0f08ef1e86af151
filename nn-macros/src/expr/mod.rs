//! Activations as expressions the macro differentiates itself.
//!
//! An activation is a closure of one variable in a small language (`syntax`), built into a
//! shared graph (`graph`) that simplifies as it builds. Its derivative is derived by rules
//! (`diff`) into the same graph, so value and derivative share subexpressions; where the
//! derivative can be written in terms of the activation's output alone (tanh, sigmoid, exp),
//! it is, since the backward pass has that output cached. `emit` writes the graph as
//! straight-line Rust computing each shared subexpression once; `show` writes it as text for
//! the generated docs.
//!
//! Every builtin activation (`ReLU`, `GELU`, ...) is defined in this language too, so no
//! derivative in the crate is typed in by hand.

mod diff;
mod emit;
mod graph;
mod show;
mod syntax;

#[cfg(test)]
mod tests;

use proc_macro2::{Ident, TokenStream};
use quote::format_ident;
use syn::ExprClosure;

use crate::model::Scalar;
pub use graph::Var;
use graph::{Graph, Id, Node};

/// An activation compiled: its value and derivatives, in one graph.
pub struct Compiled {
    graph: Graph,
    /// `f(x)`.
    value: Id,
    /// `f'(x)`, in terms of `y = f(x)` alone where `from_output`.
    derivative: Id,
    /// Whether `derivative` depends on the output `y` rather than the input `x`.
    pub from_output: bool,
    /// `df/dp` for the learned parameter `p`, where the expression has one.
    param_derivative: Option<Id>,
}

/// Compiles `closure` with named constants and, optionally, a learned parameter's name.
pub fn compile(
    closure: &ExprClosure,
    constants: &[(String, f64)],
    param: Option<&str>,
) -> syn::Result<Compiled> {
    let mut graph = Graph::default();
    let scope = syntax::Scope { constants, param };
    let value = syntax::closure(&mut graph, closure, &scope)?;
    let dx = diff::derivative(&mut graph, value, Var::X);
    let param_derivative = param.map(|_| diff::derivative(&mut graph, value, Var::Param));
    // Written in terms of the output where that removes the input altogether.
    let y = graph.var(Var::Y);
    let of_output = graph.substitute(dx, value, y);
    let from_output =
        param.is_none() && !graph.mentions(of_output, Var::X) && graph.mentions(of_output, Var::Y);
    Ok(Compiled {
        derivative: if from_output { of_output } else { dx },
        graph,
        value,
        from_output,
        param_derivative,
    })
}

/// The identity, `|x| x`: derivative 1.
pub fn identity() -> Compiled {
    let mut graph = Graph::default();
    let value = graph.var(Var::X);
    let derivative = graph.constant(1.0);
    Compiled {
        graph,
        value,
        derivative,
        from_output: false,
        param_derivative: None,
    }
}

impl Compiled {
    /// The name of `var` in a generated closure: `_` where the expression (the value, or
    /// with `derivative` the derivatives) does not use it, so no variable goes unused.
    pub fn variable(&self, var: Var, derivative: bool) -> TokenStream {
        let mut roots = vec![];
        if derivative {
            roots.push(self.derivative);
            roots.extend(self.param_derivative);
        } else {
            roots.push(self.value);
        }
        if roots.iter().any(|&r| self.graph.mentions(r, var)) {
            let name = &names()[match var {
                Var::X => 0,
                Var::Y => 1,
                Var::Param => 2,
            }]
            .1;
            quote::quote!(#name)
        } else {
            quote::quote!(_)
        }
    }

    /// Whether the activation is the identity (`|x| x`).
    pub fn is_identity(&self) -> bool {
        *self.graph.node(self.value) == Node::Var(Var::X)
    }

    /// The constant derivative, where it is one (`1` for the identity).
    pub fn constant_derivative(&self) -> Option<f64> {
        self.graph.constant_of(self.derivative)
    }

    /// Tokens of `f(x)`, `x` named `x` and the parameter `a`.
    pub fn value_tokens(&self, scalar: Scalar) -> TokenStream {
        emit::emit(&self.graph, &[self.value], scalar, &names())
    }

    /// Tokens of `f'`, in terms of `y` (where `from_output`) or `x`.
    pub fn derivative_tokens(&self, scalar: Scalar) -> TokenStream {
        emit::emit(&self.graph, &[self.derivative], scalar, &names())
    }

    /// Tokens of the pair `(df/dx, df/dp)`, computing what they share once.
    pub fn both_derivatives_tokens(&self, scalar: Scalar) -> TokenStream {
        let roots = [
            self.derivative,
            self.param_derivative.unwrap_or(self.derivative),
        ];
        emit::emit(&self.graph, &roots, scalar, &names())
    }

    /// Tokens of `df/dp` alone.
    pub fn param_derivative_tokens(&self, scalar: Scalar) -> TokenStream {
        let root = self.param_derivative.unwrap_or(self.derivative);
        emit::emit(&self.graph, &[root], scalar, &names())
    }

    /// `f(x)` as text, the parameter named `param`.
    pub fn show_value(&self, param: &str) -> String {
        show::show(&self.graph, self.value, &text_names(param))
    }

    /// `f'` as text.
    pub fn show_derivative(&self, param: &str) -> String {
        show::show(&self.graph, self.derivative, &text_names(param))
    }

    /// `df/dp` as text.
    pub fn show_param_derivative(&self, param: &str) -> Option<String> {
        self.param_derivative
            .map(|d| show::show(&self.graph, d, &text_names(param)))
    }

    /// Operations per element of the forward pass and of the chain-rule step (the
    /// derivative and its product with the incoming gradient).
    pub fn cost(&self) -> (usize, usize) {
        let derivative = match self.constant_derivative() {
            Some(1.0) => 0,
            _ => self.graph.cost(&[self.derivative]) + 1,
        };
        (self.graph.cost(&[self.value]), derivative)
    }
}

/// The names of the variables in generated code.
fn names() -> [(Var, Ident); 3] {
    [
        (Var::X, format_ident!("x")),
        (Var::Y, format_ident!("y")),
        (Var::Param, format_ident!("a")),
    ]
}

fn text_names(param: &str) -> [(Var, &str); 3] {
    [(Var::X, "x"), (Var::Y, "y"), (Var::Param, param)]
}
