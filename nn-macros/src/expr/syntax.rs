//! From a closure as written (`|x| x * sigmoid(beta * x)`) to a node of the graph.
//!
//! The language is small on purpose: numbers, the closure's variable, named constants, `let`
//! bindings in blocks, `+ - * /`, unary `-`, the functions in [`FUNCTIONS`] (as calls or
//! methods), and `if a > b { .. } else { .. }`. Everything else is an error on its own tokens
//! that says what is supported. Every mistake in an expression is reported, not just the first.

use syn::spanned::Spanned;
use syn::{BinOp, Expr, ExprClosure, Lit, Pat, ReturnType, Stmt, UnOp};

use super::graph::{Cmp, Fun, Graph, Id, Var};
use crate::layers::closest;

/// The functions of one argument, by name.
pub const FUNCTIONS: &[(&str, Fun)] = &[
    ("exp", Fun::Exp),
    ("ln", Fun::Ln),
    ("sqrt", Fun::Sqrt),
    ("tanh", Fun::Tanh),
    ("sigmoid", Fun::Sigmoid),
    ("sin", Fun::Sin),
    ("cos", Fun::Cos),
    ("abs", Fun::Abs),
    ("erf", Fun::Erf),
    ("ln_1p", Fun::Ln1p),
    ("exp_m1", Fun::ExpM1),
    ("softplus", Fun::Softplus),
];

/// The functions of two arguments.
const BINARY: &[&str] = &["min", "max", "powi", "powf"];

/// What an expression may contain, for error messages.
pub const SUPPORTED: &str = "an activation may use numbers, its variable, its named constants, \
`let` bindings, `+ - * /`, unary `-`, the functions exp, ln, sqrt, tanh, sigmoid, sin, cos, abs, \
erf, ln_1p, exp_m1, softplus, powi(n), powf(c), min, max (as `f(x)` or `x.f()`), and \
`if a > b { .. } else { .. }` (or >=, <, <=)";

/// The names an expression can refer to besides functions.
pub struct Scope<'a> {
    /// Named constants with their values.
    pub constants: &'a [(String, f64)],
    /// The name of a learned parameter the expression may use (PReLU's `weight`).
    pub param: Option<&'a str>,
}

/// Builds the closure's body into `g`; every mistake, combined, if there are any.
pub fn closure(g: &mut Graph, closure: &ExprClosure, scope: &Scope) -> syn::Result<Id> {
    let mut b = Builder {
        g,
        variable: String::new(),
        scope,
        lets: Vec::new(),
        errors: Vec::new(),
    };
    // A closure whose variable is unclear has its one error; its body would only add noise.
    let id = if b.signature(closure) {
        b.expr(&closure.body)
    } else {
        None
    };
    let mut errors = b.errors.into_iter();
    match (errors.next(), id) {
        (None, Some(id)) => Ok(id),
        (Some(mut first), _) => {
            first.extend(errors);
            Err(first)
        }
        (None, None) => Err(syn::Error::new_spanned(closure, SUPPORTED)),
    }
}

struct Builder<'a, 'g> {
    g: &'g mut Graph,
    /// The closure's variable, as the user named it.
    variable: String,
    scope: &'a Scope<'a>,
    /// `let` bindings in scope, innermost last.
    lets: Vec<(String, Id)>,
    errors: Vec<syn::Error>,
}

impl Builder<'_, '_> {
    fn error(&mut self, tokens: &dyn quote::ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// `|x|`: one plain variable, no types, no `move`, no return type. Whether the variable
    /// is known, so that the body can be checked.
    fn signature(&mut self, c: &ExprClosure) -> bool {
        const ONE: &str = "an activation is a closure of one variable, e.g. `|x| x * sigmoid(x)`";
        if c.inputs.len() != 1 {
            let message = format!("{ONE}; this one has {}", c.inputs.len());
            match c.inputs.is_empty() {
                true => self
                    .errors
                    .push(syn::Error::new(c.inputs_begin.span, message)),
                false => self.error(&c.inputs, message),
            }
        }
        if let Some(extra) = c
            .lifetimes
            .as_ref()
            .map(|l| l.span())
            .or(c.constness.map(|t| t.span))
            .or(c.asyncness.map(|t| t.span))
            .or(c.capture.map(|t| t.span))
        {
            self.errors.push(syn::Error::new(
                extra,
                format!("{ONE}, nothing before the `|`"),
            ));
        }
        if let ReturnType::Type(arrow, ty) = &c.output {
            let message =
                "an activation's closure has no return type: it returns the network's scalar type";
            self.errors.push(syn::Error::new(
                arrow.spans[0].join(ty.span()).unwrap_or(arrow.spans[0]),
                message,
            ));
        }
        let plain = |p: &Pat| match p {
            Pat::Ident(p) if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() => {
                Some(p.ident.to_string())
            }
            _ => None,
        };
        match c.inputs.first() {
            Some(Pat::Type(t)) => {
                self.error(
                    t,
                    "write the variable without a type, `|x|`: it has the network's scalar type",
                );
                self.variable = plain(&t.pat).unwrap_or_default();
            }
            Some(p) => match plain(p) {
                Some(name) => self.variable = name,
                None => self.error(p, format!("{ONE}: a plain name such as `x`")),
            },
            None => {}
        }
        c.inputs.len() == 1 && !self.variable.is_empty()
    }

    /// The node of `e`, or `None` (reported) where it is not in the language.
    fn expr(&mut self, e: &Expr) -> Option<Id> {
        match e {
            Expr::Lit(lit) => self.literal(&lit.lit),
            Expr::Path(p) => match p.path.get_ident() {
                Some(name) if p.qself.is_none() => self.name(name),
                _ => self.unsupported(e),
            },
            Expr::Paren(inner) => self.expr(&inner.expr),
            Expr::Group(inner) => self.expr(&inner.expr),
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => {
                    let a = self.expr(&u.expr)?;
                    Some(self.g.neg(a))
                }
                _ => self.unsupported(e),
            },
            Expr::Binary(b) => self.binary(b),
            Expr::Call(call) => {
                let name = match &*call.func {
                    Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
                    _ => None,
                };
                match name {
                    Some(name) => {
                        let args: Vec<&Expr> = call.args.iter().collect();
                        self.function(name, &args, e)
                    }
                    None => self.unsupported(&call.func),
                }
            }
            Expr::MethodCall(m) => {
                if let Some(turbofish) = &m.turbofish {
                    self.error(
                        turbofish,
                        "an activation's functions take no type arguments",
                    );
                    return None;
                }
                let args: Vec<&Expr> = std::iter::once(&*m.receiver).chain(m.args.iter()).collect();
                self.function(&m.method, &args, e)
            }
            Expr::If(i) => self.piecewise(i),
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => self.block(&b.block),
            _ => self.unsupported(e),
        }
    }

    fn unsupported(&mut self, e: &dyn quote::ToTokens) -> Option<Id> {
        let text = quote::ToTokens::to_token_stream(e).to_string();
        self.error(e, format!("`{text}` is not supported here: {SUPPORTED}"));
        None
    }

    /// A number: an integer or a float literal, `f32`/`f64` suffix allowed.
    fn literal(&mut self, lit: &Lit) -> Option<Id> {
        let value = match lit {
            Lit::Int(i) if matches!(i.suffix(), "" | "f32" | "f64") => i.base10_parse::<f64>(),
            Lit::Float(f) if matches!(f.suffix(), "" | "f32" | "f64") => f.base10_parse::<f64>(),
            _ => {
                self.error(lit, "expected a number, such as `0.5` or `2`");
                return None;
            }
        };
        match value {
            Ok(v) if v.is_finite() => Some(self.g.constant(v)),
            _ => {
                self.error(lit, "this number is not a finite `f64`");
                None
            }
        }
    }

    /// The variable, a `let`, a constant or the parameter.
    fn name(&mut self, name: &syn::Ident) -> Option<Id> {
        let text = name.to_string();
        if let Some((_, id)) = self.lets.iter().rev().find(|(n, _)| *n == text) {
            return Some(*id);
        }
        if text == self.variable {
            return Some(self.g.var(Var::X));
        }
        if let Some((_, v)) = self.scope.constants.iter().find(|(n, _)| *n == text) {
            return Some(self.g.constant(*v));
        }
        if self.scope.param == Some(text.as_str()) {
            return Some(self.g.var(Var::Param));
        }
        let mut known: Vec<&str> = vec![self.variable.as_str()];
        known.extend(self.lets.iter().map(|(n, _)| n.as_str()));
        known.extend(self.scope.constants.iter().map(|(n, _)| n.as_str()));
        let listed: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
        let mut message = format!(
            "unknown name `{text}`: the expression may use {} and numbers",
            listed.join(", ")
        );
        if let Some(close) = closest(&text, &known) {
            message.push_str(&format!("\nhelp: did you mean `{close}`?"));
        }
        self.error(name, message);
        None
    }

    fn binary(&mut self, b: &syn::ExprBinary) -> Option<Id> {
        use super::graph::Op;
        let op = match b.op {
            BinOp::Add(_) => Op::Add,
            BinOp::Sub(_) => Op::Sub,
            BinOp::Mul(_) => Op::Mul,
            BinOp::Div(_) => Op::Div,
            BinOp::Gt(_) | BinOp::Ge(_) | BinOp::Lt(_) | BinOp::Le(_) => {
                self.error(
                    &b.op,
                    "a comparison goes in an `if` condition: `if x > 0.0 { x } else { 0.0 }`",
                );
                return None;
            }
            _ => return self.unsupported(&b.op),
        };
        // Both sides, so that mistakes in each are reported.
        let (l, r) = (self.expr(&b.left), self.expr(&b.right));
        Some(self.g.bin(op, l?, r?))
    }

    /// `f(a, ..)` or `a.f(..)`: `args` holds the receiver first.
    fn function(&mut self, name: &syn::Ident, args: &[&Expr], whole: &Expr) -> Option<Id> {
        let text = name.to_string();
        if let Some((_, f)) = FUNCTIONS.iter().find(|(n, _)| *n == text) {
            if args.len() != 1 {
                self.error(
                    whole,
                    format!("`{text}` takes one argument: `{text}(x)` or `x.{text}()`"),
                );
                return None;
            }
            let a = self.expr(args[0])?;
            return Some(self.g.fun(*f, a));
        }
        if BINARY.contains(&text.as_str()) {
            if args.len() != 2 {
                self.error(
                    whole,
                    format!("`{text}` takes two arguments: `{text}(a, b)` or `a.{text}(b)`"),
                );
                return None;
            }
            return self.binary_function(&text, args[0], args[1]);
        }
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|(n, _)| *n).collect();
        names.extend(BINARY);
        let mut message = format!("`{text}` is not a function an activation may use: {SUPPORTED}");
        if let Some(close) = closest(&text, &names) {
            message.push_str(&format!("\nhelp: did you mean `{close}`?"));
        } else if text == "log" {
            message.push_str("\nhelp: the natural logarithm is `ln`");
        }
        self.error(name, message);
        None
    }

    /// `min`, `max`, `powi`, `powf`.
    fn binary_function(&mut self, name: &str, a: &Expr, b: &Expr) -> Option<Id> {
        use super::graph::Op;
        let x = self.expr(a);
        match name {
            "powi" => {
                let n = self.integer(b);
                Some(self.g.powi(x?, n?))
            }
            "powf" => {
                let c = self.expr(b)?;
                if self.g.constant_of(c).is_none() {
                    self.error(
                        b,
                        "the exponent of `powf` must be a constant, e.g. `x.powf(1.5)`",
                    );
                    return None;
                }
                Some(self.g.bin(Op::Powf, x?, c))
            }
            // min(a, b): a where a <= b, so at a tie the derivative is a's (torch's `clamp`).
            _ => {
                let (x, y) = (x?, self.expr(b)?);
                let cmp = if name == "min" { Cmp::Le } else { Cmp::Ge };
                Some(self.g.select(cmp, x, y, x, y))
            }
        }
    }

    /// The integer exponent of `powi`.
    fn integer(&mut self, e: &Expr) -> Option<i32> {
        let (negative, inner) = match e {
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => (true, &*u.expr),
            _ => (false, e),
        };
        if let Expr::Lit(l) = inner
            && let Lit::Int(i) = &l.lit
            && let Ok(n) = i.base10_parse::<i32>()
            && (i.suffix().is_empty() || i.suffix() == "i32")
        {
            return Some(if negative { -n } else { n });
        }
        self.error(
            e,
            "the exponent of `powi` must be a whole number, e.g. `x.powi(3)`",
        );
        None
    }

    /// `if a > b { .. } else { .. }`, with `else if` chains.
    fn piecewise(&mut self, i: &syn::ExprIf) -> Option<Id> {
        let condition = self.condition(&i.cond);
        let then = self.block(&i.then_branch);
        let otherwise = match &i.else_branch {
            Some((_, e)) => self.expr(e),
            None => {
                self.error(
                    i,
                    "an `if` in an activation needs an `else`: both sides give a value",
                );
                None
            }
        };
        let (cmp, a, b) = condition?;
        Some(self.g.select(cmp, a, b, then?, otherwise?))
    }

    fn condition(&mut self, e: &Expr) -> Option<(Cmp, Id, Id)> {
        let e = match e {
            Expr::Paren(p) => &*p.expr,
            other => other,
        };
        let Expr::Binary(b) = e else {
            self.error(e, "expected a comparison, e.g. `x > 0.0` (>, >=, < or <=)");
            return None;
        };
        let cmp = match b.op {
            BinOp::Gt(_) => Cmp::Gt,
            BinOp::Ge(_) => Cmp::Ge,
            BinOp::Lt(_) => Cmp::Lt,
            BinOp::Le(_) => Cmp::Le,
            _ => {
                self.error(&b.op, "expected a comparison: >, >=, < or <=");
                return None;
            }
        };
        let (l, r) = (self.expr(&b.left), self.expr(&b.right));
        Some((cmp, l?, r?))
    }

    /// `{ let a = ..; ..; value }`.
    fn block(&mut self, block: &syn::Block) -> Option<Id> {
        let depth = self.lets.len();
        let mut value = None;
        let mut ok = true;
        for (i, stmt) in block.stmts.iter().enumerate() {
            let last = i + 1 == block.stmts.len();
            match stmt {
                Stmt::Local(local) => match (&local.pat, &local.init) {
                    (Pat::Ident(p), Some(init))
                        if init.diverge.is_none() && p.by_ref.is_none() && p.subpat.is_none() =>
                    {
                        match self.expr(&init.expr) {
                            Some(id) => self.lets.push((p.ident.to_string(), id)),
                            None => ok = false,
                        }
                    }
                    _ => {
                        self.error(local, "expected `let name = expression;`");
                        ok = false;
                    }
                },
                Stmt::Expr(e, None) if last => value = self.expr(e),
                other => {
                    self.error(
                        other,
                        "a block in an activation holds `let` bindings and ends with its value",
                    );
                    ok = false;
                }
            }
        }
        self.lets.truncate(depth);
        if value.is_none() && ok && self.errors.is_empty() {
            let span = block.brace_token.span.join();
            self.errors.push(syn::Error::new(
                span,
                "this block gives no value: end it with an expression",
            ));
        }
        if ok { value } else { None }
    }
}
