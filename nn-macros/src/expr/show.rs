//! Expressions as text for the generated docs, in the expression language itself: what the
//! docs show is what a user could write, and exactly what the generated code computes.

use super::emit::function_name;
use super::graph::{Cmp, Fun, Graph, Id, Node, Op, Var};

/// `id` as text, variables named by `vars`.
pub fn show(g: &Graph, id: Id, vars: &[(Var, &str)]) -> String {
    Shower { g, vars }.expr(id).0
}

const IF: u8 = 0;
const SUM: u8 = 1;
const PRODUCT: u8 = 2;
const UNARY: u8 = 3;
const ATOM: u8 = 4;

struct Shower<'a> {
    g: &'a Graph,
    vars: &'a [(Var, &'a str)],
}

impl Shower<'_> {
    fn expr(&self, id: Id) -> (String, u8) {
        match *self.g.node(id) {
            Node::Const(bits) => number(f64::from_bits(bits)),
            Node::Var(v) => {
                let name = self.vars.iter().find(|(var, _)| *var == v);
                (name.map_or("?", |(_, n)| n).to_string(), ATOM)
            }
            Node::Fun(Fun::Neg, a) => (format!("-{}", self.operand(a, UNARY)), UNARY),
            Node::Fun(f, a) => (format!("{}({})", function_name(f), self.expr(a).0), ATOM),
            Node::Powi(a, n) => (format!("{}.powi({n})", self.operand(a, ATOM)), ATOM),
            Node::Bin(Op::Powf, a, b) => (
                format!("{}.powf({})", self.operand(a, ATOM), self.expr(b).0),
                ATOM,
            ),
            Node::Bin(op, a, b) => {
                let (strength, sign) = match op {
                    Op::Add => (SUM, "+"),
                    Op::Sub => (SUM, "-"),
                    Op::Mul => (PRODUCT, "*"),
                    _ => (PRODUCT, "/"),
                };
                let (a, b) = (self.operand(a, strength), self.operand(b, strength + 1));
                (format!("{a} {sign} {b}"), strength)
            }
            Node::Select(cmp, a, b, t, e) => {
                let cmp = match cmp {
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                };
                let (a, b) = (self.operand(a, SUM), self.operand(b, SUM));
                let (t, e) = (self.expr(t).0, self.expr(e).0);
                (format!("if {a} {cmp} {b} {{ {t} }} else {{ {e} }}"), IF)
            }
        }
    }

    fn operand(&self, id: Id, strength: u8) -> String {
        let (text, own) = self.expr(id);
        if own >= strength {
            text
        } else {
            format!("({text})")
        }
    }
}

/// A number as a person writes it: `2`, `0.5`, `-1.6732632423543772`.
fn number(v: f64) -> (String, u8) {
    let text = if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    };
    (text, if v < 0.0 { UNARY } else { ATOM })
}
