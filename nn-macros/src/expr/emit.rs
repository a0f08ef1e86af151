//! Code generation: an expression's nodes as straight-line Rust.
//!
//! Every node that more than one other node (or root) uses is bound once to a `let`, in id
//! order (children first), and referred to by name after: the emitted code computes each
//! subexpression once. Parentheses are written only where precedence needs them, since the
//! generated code must compile without warnings (`unused_parens`) in a `#![deny(warnings)]`
//! crate. Elementary functions are calls into the runtime's `math` module, which picks the
//! fast vectorisable forms (`exp`, `tanh`, `sigmoid` in `f32`) and is one place to change them.

use std::collections::BTreeMap;

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use super::graph::{Cmp, Fun, Graph, Id, Node, Op, Var};
use crate::model::Scalar;

/// Tokens computing `roots` (a tuple when there are several), with `vars` naming the
/// variables they depend on.
pub fn emit(g: &Graph, roots: &[Id], scalar: Scalar, vars: &[(Var, Ident)]) -> TokenStream {
    let shared = shared(g, roots);
    let mut e = Emitter {
        g,
        scalar,
        rt: crate::expand::rt(),
        vars,
        bound: BTreeMap::new(),
    };
    let mut lets = TokenStream::new();
    for &id in &shared {
        let (value, _) = e.expr(id);
        let name = format_ident!("t{id}");
        lets.extend(quote!(let #name = #value;));
        e.bound.insert(id, name);
    }
    let results: Vec<TokenStream> = roots.iter().map(|&r| e.expr(r).0).collect();
    let result = match results.as_slice() {
        [one] => one.clone(),
        _ => quote!((#(#results),*)),
    };
    if lets.is_empty() {
        result
    } else {
        quote!({ #lets #result })
    }
}

/// The nodes to bind to a `let`: those used more than once, in id order.
fn shared(g: &Graph, roots: &[Id]) -> Vec<Id> {
    let mut uses = vec![0usize; g.len()];
    let mut seen = vec![false; g.len()];
    let mut stack = roots.to_vec();
    for &r in roots {
        uses[r] += 1;
    }
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        for c in g.children(n) {
            uses[c] += 1;
            stack.push(c);
        }
    }
    (0..g.len())
        .filter(|&n| uses[n] > 1 && !matches!(g.node(n), Node::Const(_) | Node::Var(_)))
        .collect()
}

/// Binding strength of an emitted expression: what may stand where without parentheses.
const IF: u8 = 0;
const SUM: u8 = 1;
const PRODUCT: u8 = 2;
const UNARY: u8 = 3;
const ATOM: u8 = 4;

struct Emitter<'a> {
    g: &'a Graph,
    scalar: Scalar,
    rt: TokenStream,
    vars: &'a [(Var, Ident)],
    bound: BTreeMap<Id, Ident>,
}

impl Emitter<'_> {
    /// The tokens of `id` and their binding strength.
    fn expr(&self, id: Id) -> (TokenStream, u8) {
        if let Some(name) = self.bound.get(&id) {
            return (quote!(#name), ATOM);
        }
        match *self.g.node(id) {
            Node::Const(bits) => self.constant(f64::from_bits(bits)),
            Node::Var(v) => match self.vars.iter().find(|(var, _)| *var == v) {
                Some((_, name)) => (quote!(#name), ATOM),
                // The model never asks for a variable it did not name; zero is a harmless
                // stand-in where a panic is not allowed.
                None => self.constant(0.0),
            },
            Node::Fun(Fun::Neg, a) => {
                let a = self.operand(a, UNARY);
                (quote!(-#a), UNARY)
            }
            Node::Fun(f, a) => {
                let (rt, name) = (&self.rt, format_ident!("{}", function_name(f)));
                let (a, _) = self.expr(a);
                (quote!(#rt::math::#name(#a)), ATOM)
            }
            Node::Powi(a, n) => self.powi(a, n),
            Node::Bin(Op::Powf, a, b) => {
                let rt = &self.rt;
                let ((a, _), (b, _)) = (self.expr(a), self.expr(b));
                (quote!(#rt::math::powf(#a, #b)), ATOM)
            }
            Node::Bin(op, a, b) => self.binary(op, a, b),
            Node::Select(cmp, a, b, then, otherwise) => {
                let (a, b) = (self.operand(a, SUM), self.operand(b, SUM));
                let ((t, _), (e, _)) = (self.expr(then), self.expr(otherwise));
                let cmp = match cmp {
                    Cmp::Gt => quote!(>),
                    Cmp::Ge => quote!(>=),
                    Cmp::Lt => quote!(<),
                    Cmp::Le => quote!(<=),
                };
                (quote!(if #a #cmp #b { #t } else { #e }), IF)
            }
        }
    }

    /// `id` where an expression binding at least as strongly as `strength` must stand.
    fn operand(&self, id: Id, strength: u8) -> TokenStream {
        let (tokens, own) = self.expr(id);
        if own >= strength {
            tokens
        } else {
            quote!((#tokens))
        }
    }

    /// `a op b`, keeping the graph's grouping exactly (floating-point addition is not
    /// associative): the right operand of any operator is parenthesised unless it binds
    /// more strongly.
    fn binary(&self, op: Op, a: Id, b: Id) -> (TokenStream, u8) {
        let (strength, token) = match op {
            Op::Add => (SUM, quote!(+)),
            Op::Sub => (SUM, quote!(-)),
            Op::Mul => (PRODUCT, quote!(*)),
            _ => (PRODUCT, quote!(/)),
        };
        let (a, b) = (self.operand(a, strength), self.operand(b, strength + 1));
        (quote!(#a #token #b), strength)
    }

    /// `a^n`: a product for a square or cube of a name, else the runtime's `powi`, which the
    /// compiler expands into multiplies for a constant `n`.
    fn powi(&self, a: Id, n: i32) -> (TokenStream, u8) {
        let (tokens, strength) = self.expr(a);
        match n {
            2 if strength == ATOM => (quote!(#tokens * #tokens), PRODUCT),
            3 if strength == ATOM => (quote!(#tokens * #tokens * #tokens), PRODUCT),
            _ => {
                let (rt, n) = (&self.rt, Literal::i32_unsuffixed(n));
                (quote!(#rt::math::powi(#tokens, #n)), ATOM)
            }
        }
    }

    /// A number as a literal of the scalar type; a negative one binds as a unary minus.
    fn constant(&self, v: f64) -> (TokenStream, u8) {
        let ty = self.scalar.tokens();
        // What the literal will hold: an `f64` too large for `f32` is infinite there.
        let v = match self.scalar {
            Scalar::F32 => f64::from(v as f32),
            Scalar::F64 => v,
        };
        if v.is_nan() {
            return (quote!(#ty::NAN), ATOM);
        }
        if v.is_infinite() {
            let inf = if v > 0.0 {
                quote!(#ty::INFINITY)
            } else {
                quote!(#ty::NEG_INFINITY)
            };
            return (inf, ATOM);
        }
        let lit = self.scalar.lit(v.abs());
        if v < 0.0 {
            (quote!(-#lit), UNARY)
        } else {
            (lit, ATOM)
        }
    }
}

/// The runtime function computing `f`, by the name the expression language gives it.
pub fn function_name(f: Fun) -> &'static str {
    match f {
        Fun::Neg => "neg",
        Fun::Sqrt => "sqrt",
        Fun::Exp => "exp",
        Fun::Ln => "ln",
        Fun::Tanh => "tanh",
        Fun::Sigmoid => "sigmoid",
        Fun::Sin => "sin",
        Fun::Cos => "cos",
        Fun::Abs => "abs",
        Fun::Erf => "erf",
        Fun::Ln1p => "ln_1p",
        Fun::ExpM1 => "exp_m1",
        Fun::Softplus => "softplus",
    }
}
