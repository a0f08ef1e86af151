//! Symbolic differentiation: the chain rule applied to an expression at compile time.
//!
//! Each rule builds the derivative of one node from its children's derivatives, into the same
//! graph, so the derivative reuses the value's subexpressions (`d tanh(u) = (1 - tanh(u)^2) du`
//! shares `tanh(u)`). A piecewise expression's derivative is piecewise with the same condition:
//! at a kink the derivative is that of the branch the expression takes there, which is how
//! PyTorch defines its kinked functions' gradients (`ReLU'(0) = 0` from `if x > 0 { x } else
//! { 0 }`).

use std::collections::HashMap;
use std::f64::consts::PI;

use super::graph::{Cmp, Fun, Graph, Id, Node, Op, Var};

/// The derivative of `id` with respect to `var`.
pub fn derivative(g: &mut Graph, id: Id, var: Var) -> Id {
    let mut memo = HashMap::new();
    d(g, id, var, &mut memo)
}

/// `d id / d var`, memoised so that a shared subexpression is differentiated once.
fn d(g: &mut Graph, id: Id, var: Var, memo: &mut HashMap<Id, Id>) -> Id {
    if let Some(&done) = memo.get(&id) {
        return done;
    }
    let result = match *g.node(id) {
        Node::Const(_) => g.constant(0.0),
        Node::Var(v) => g.constant(if v == var { 1.0 } else { 0.0 }),
        Node::Fun(f, u) => {
            let du = d(g, u, var, memo);
            if g.constant_of(du) == Some(0.0) {
                du
            } else {
                let outer = outer_derivative(g, f, u, id);
                g.bin(Op::Mul, outer, du)
            }
        }
        Node::Bin(op, u, v) => {
            let (du, dv) = (d(g, u, var, memo), d(g, v, var, memo));
            binary(g, op, (u, du), (v, dv))
        }
        Node::Powi(u, n) => {
            let du = d(g, u, var, memo);
            // n u^(n-1) du
            let lower = g.powi(u, n - 1);
            let n = g.constant(f64::from(n));
            let outer = g.bin(Op::Mul, n, lower);
            g.bin(Op::Mul, outer, du)
        }
        Node::Select(cmp, a, b, then, otherwise) => {
            let (dt, de) = (d(g, then, var, memo), d(g, otherwise, var, memo));
            g.select(cmp, a, b, dt, de)
        }
    };
    memo.insert(id, result);
    result
}

/// `f'(u)`, where `fu` is the node `f(u)` itself (reused where the derivative is written in
/// terms of the value: exp, tanh, sigmoid, sqrt).
fn outer_derivative(g: &mut Graph, f: Fun, u: Id, fu: Id) -> Id {
    let one = g.constant(1.0);
    match f {
        Fun::Neg => g.constant(-1.0),
        // 1 / (2 sqrt(u))
        Fun::Sqrt => {
            let two = g.constant(2.0);
            let denominator = g.bin(Op::Mul, two, fu);
            g.bin(Op::Div, one, denominator)
        }
        Fun::Exp => fu,
        Fun::Ln => g.bin(Op::Div, one, u),
        // 1 - tanh(u)^2
        Fun::Tanh => {
            let square = g.powi(fu, 2);
            g.bin(Op::Sub, one, square)
        }
        // s (1 - s)
        Fun::Sigmoid => {
            let rest = g.bin(Op::Sub, one, fu);
            g.bin(Op::Mul, fu, rest)
        }
        Fun::Sin => g.fun(Fun::Cos, u),
        Fun::Cos => {
            let sin = g.fun(Fun::Sin, u);
            g.neg(sin)
        }
        // sign(u), 0 at 0 (PyTorch's `abs` backward).
        Fun::Abs => {
            let (zero, minus) = (g.constant(0.0), g.constant(-1.0));
            let negative = g.select(Cmp::Lt, u, zero, minus, zero);
            g.select(Cmp::Gt, u, zero, one, negative)
        }
        // 2 / sqrt(pi) e^(-u^2)
        Fun::Erf => {
            let square = g.powi(u, 2);
            let minus = g.neg(square);
            let gauss = g.fun(Fun::Exp, minus);
            let scale = g.constant(2.0 / PI.sqrt());
            g.bin(Op::Mul, scale, gauss)
        }
        // 1 / (1 + u)
        Fun::Ln1p => {
            let denominator = g.bin(Op::Add, one, u);
            g.bin(Op::Div, one, denominator)
        }
        Fun::ExpM1 => g.fun(Fun::Exp, u),
        Fun::Softplus => g.fun(Fun::Sigmoid, u),
    }
}

/// The derivative of `u op v`, given `du` and `dv`.
fn binary(g: &mut Graph, op: Op, (u, du): (Id, Id), (v, dv): (Id, Id)) -> Id {
    match op {
        Op::Add => g.bin(Op::Add, du, dv),
        Op::Sub => g.bin(Op::Sub, du, dv),
        // du v + u dv
        Op::Mul => {
            let left = g.bin(Op::Mul, du, v);
            let right = g.bin(Op::Mul, u, dv);
            g.bin(Op::Add, left, right)
        }
        // du / v - u dv / v^2: with a constant denominator, just du / v.
        Op::Div => {
            let left = g.bin(Op::Div, du, v);
            if g.constant_of(dv) == Some(0.0) {
                return left;
            }
            let square = g.powi(v, 2);
            let top = g.bin(Op::Mul, u, dv);
            let right = g.bin(Op::Div, top, square);
            g.bin(Op::Sub, left, right)
        }
        // c u^(c - 1) du, the exponent a constant (the parser ensures it).
        Op::Powf => {
            let c = g.constant_of(v).unwrap_or(1.0);
            let lower_exponent = g.constant(c - 1.0);
            let lower = g.bin(Op::Powf, u, lower_exponent);
            let scale = g.constant(c);
            let outer = g.bin(Op::Mul, scale, lower);
            g.bin(Op::Mul, outer, du)
        }
    }
}
