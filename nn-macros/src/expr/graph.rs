//! Expressions as a shared graph: every distinct subexpression is one node.
//!
//! Nodes are hash-consed: building a node that exists already returns the existing one, so an
//! activation's value and its derivative, built into one graph, share every subexpression they
//! have in common (`sigmoid(x)` in `x * sigmoid(x)` and in its derivative is one node). The
//! code generator binds each node used more than once to a variable, which is the
//! common-subexpression sharing. Children are always built before their parents, so a node's
//! id is greater than its children's: ids are a topological order.
//!
//! The constructors simplify as they build (constant folding and the usual identities), so
//! derivatives come out as a person would write them (`1 - y * y`, not `0 + 1 * (1 - y^2)`).

use std::collections::HashMap;

/// A node's index in its graph.
pub type Id = usize;

/// A variable an expression may depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    /// The activation's input.
    X,
    /// The activation's output, `f(x)`, which the backward pass has cached.
    Y,
    /// A learned parameter (PReLU's slope).
    Param,
}

/// A function of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fun {
    Neg,
    Sqrt,
    Exp,
    Ln,
    Tanh,
    Sigmoid,
    Sin,
    Cos,
    Abs,
    Erf,
    Ln1p,
    ExpM1,
    Softplus,
}

/// An arithmetic operation of two arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    /// `a.powf(b)`, `b` a constant.
    Powf,
}

/// The comparison of a piecewise expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

/// One node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A number, by its bits (so that nodes can be hashed); never NaN.
    Const(u64),
    /// A variable.
    Var(Var),
    /// `f(a)`.
    Fun(Fun, Id),
    /// `a op b`.
    Bin(Op, Id, Id),
    /// `a.powi(n)`.
    Powi(Id, i32),
    /// `if a cmp b { then } else { otherwise }`.
    Select(Cmp, Id, Id, Id, Id),
}

/// A graph of expressions.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Node>,
    index: HashMap<Node, Id>,
}

impl Graph {
    /// The node `id`.
    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id]
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The value of `id` if it is a constant.
    pub fn constant_of(&self, id: Id) -> Option<f64> {
        match self.nodes[id] {
            Node::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    /// Whether `id` is the constant `value`.
    fn is(&self, id: Id, value: f64) -> bool {
        self.constant_of(id) == Some(value)
    }

    /// The node, added if new.
    fn intern(&mut self, node: Node) -> Id {
        if let Some(&id) = self.index.get(&node) {
            return id;
        }
        self.nodes.push(node.clone());
        self.index.insert(node, self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// A number. NaN (from folding, say, `ln(-1)`) is kept as an unfolded expression by the
    /// callers, so it never becomes a node; `-0.0` is `0.0`, so that `x * 0` and `0` agree.
    pub fn constant(&mut self, value: f64) -> Id {
        let value = if value == 0.0 { 0.0 } else { value };
        self.intern(Node::Const(value.to_bits()))
    }

    /// A variable.
    pub fn var(&mut self, var: Var) -> Id {
        self.intern(Node::Var(var))
    }

    /// `f(a)`, folded where `a` is a constant.
    pub fn fun(&mut self, f: Fun, a: Id) -> Id {
        if let Some(v) = self.constant_of(a).and_then(|v| fold_fun(f, v)) {
            return self.constant(v);
        }
        match (f, self.node(a)) {
            // --a = a
            (Fun::Neg, Node::Fun(Fun::Neg, inner)) => *inner,
            // -(a - b) = b - a
            (Fun::Neg, &Node::Bin(Op::Sub, p, q)) => self.bin(Op::Sub, q, p),
            // -(c b) = (-c) b
            (Fun::Neg, &Node::Bin(Op::Mul, p, q)) if self.constant_of(p).is_some() => {
                let c = self.constant(-self.constant_of(p).unwrap_or(0.0));
                self.bin(Op::Mul, c, q)
            }
            _ => self.intern(Node::Fun(f, a)),
        }
    }

    /// `-a`.
    pub fn neg(&mut self, a: Id) -> Id {
        self.fun(Fun::Neg, a)
    }

    /// `a op b`, folded and simplified.
    pub fn bin(&mut self, op: Op, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.constant_of(a), self.constant_of(b))
            && let Some(v) = fold_op(op, x, y)
        {
            return self.constant(v);
        }
        match op {
            Op::Add => self.add(a, b),
            Op::Sub => self.sub(a, b),
            Op::Mul => self.mul(a, b),
            Op::Div => self.div(a, b),
            Op::Powf => self.powf(a, b),
        }
    }

    fn add(&mut self, a: Id, b: Id) -> Id {
        if self.is(a, 0.0) {
            return b;
        }
        if self.is(b, 0.0) {
            return a;
        }
        match (self.node(a).clone(), self.node(b).clone()) {
            // a + (-c) = a - c
            (_, Node::Fun(Fun::Neg, c)) => self.sub(a, c),
            // (-c) + b = b - c
            (Node::Fun(Fun::Neg, c), _) => self.sub(b, c),
            // A constant goes first: `1 + x`, as one writes it, and one node for both orders.
            _ if self.constant_of(b).is_some() => self.intern(Node::Bin(Op::Add, b, a)),
            _ => self.intern(Node::Bin(Op::Add, a, b)),
        }
    }

    fn sub(&mut self, a: Id, b: Id) -> Id {
        if self.is(b, 0.0) {
            return a;
        }
        if self.is(a, 0.0) {
            return self.neg(b);
        }
        if a == b {
            return self.constant(0.0);
        }
        match self.node(b).clone() {
            // a - (-c) = a + c
            Node::Fun(Fun::Neg, c) => self.add(a, c),
            // a - (a - c) = c
            Node::Bin(Op::Sub, p, c) if p == a => c,
            _ => self.intern(Node::Bin(Op::Sub, a, b)),
        }
    }

    fn mul(&mut self, a: Id, b: Id) -> Id {
        // The constant first, so that constants meet and fold: 2 (3 x) = 6 x.
        let (a, b) = if self.constant_of(b).is_some() && self.constant_of(a).is_none() {
            (b, a)
        } else {
            (a, b)
        };
        if self.is(a, 0.0) {
            return a;
        }
        if self.is(a, 1.0) {
            return b;
        }
        if self.is(a, -1.0) {
            return self.neg(b);
        }
        match (self.constant_of(a), self.node(b).clone()) {
            // c (d x) = (c d) x
            (Some(c), Node::Bin(Op::Mul, p, q)) if self.constant_of(p).is_some() => {
                let cd = self.constant(c * self.constant_of(p).unwrap_or(1.0));
                self.mul(cd, q)
            }
            // c (-x) = (-c) x
            (Some(c), Node::Fun(Fun::Neg, q)) => {
                let minus = self.constant(-c);
                self.mul(minus, q)
            }
            // (-p) (-q) = p q
            (None, Node::Fun(Fun::Neg, q)) => match self.node(a).clone() {
                Node::Fun(Fun::Neg, p) => self.mul(p, q),
                _ => {
                    let product = self.mul(a, q);
                    self.neg(product)
                }
            },
            // a a = a^2
            _ if a == b => self.powi(a, 2),
            _ => self.intern(Node::Bin(Op::Mul, a, b)),
        }
    }

    fn div(&mut self, a: Id, b: Id) -> Id {
        if self.is(b, 1.0) {
            return a;
        }
        if self.is(a, 0.0) {
            return a;
        }
        if a == b {
            return self.constant(1.0);
        }
        self.intern(Node::Bin(Op::Div, a, b))
    }

    fn powf(&mut self, a: Id, b: Id) -> Id {
        match self.constant_of(b) {
            Some(c) if c.fract() == 0.0 && c.abs() <= 16.0 => self.powi(a, c as i32),
            _ => self.intern(Node::Bin(Op::Powf, a, b)),
        }
    }

    /// `a.powi(n)`.
    pub fn powi(&mut self, a: Id, n: i32) -> Id {
        if let Some(v) = self.constant_of(a) {
            return self.constant(v.powi(n));
        }
        match n {
            0 => self.constant(1.0),
            1 => a,
            _ => self.intern(Node::Powi(a, n)),
        }
    }

    /// `if a cmp b { then } else { otherwise }`.
    pub fn select(&mut self, cmp: Cmp, a: Id, b: Id, then: Id, otherwise: Id) -> Id {
        if then == otherwise {
            return then;
        }
        if let (Some(x), Some(y)) = (self.constant_of(a), self.constant_of(b)) {
            return if compare(cmp, x, y) { then } else { otherwise };
        }
        self.intern(Node::Select(cmp, a, b, then, otherwise))
    }

    /// The children of a node, in order.
    pub fn children(&self, id: Id) -> Vec<Id> {
        match *self.node(id) {
            Node::Const(_) | Node::Var(_) => vec![],
            Node::Fun(_, a) | Node::Powi(a, _) => vec![a],
            Node::Bin(_, a, b) => vec![a, b],
            Node::Select(_, a, b, t, e) => vec![a, b, t, e],
        }
    }

    /// Whether `id` depends on `var`.
    pub fn mentions(&self, id: Id, var: Var) -> bool {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            if *self.node(n) == Node::Var(var) {
                return true;
            }
            stack.extend(self.children(n));
        }
        false
    }

    /// `id` with every occurrence of the node `from` replaced by `to`, simplified again.
    pub fn substitute(&mut self, id: Id, from: Id, to: Id) -> Id {
        let mut memo = HashMap::new();
        self.substitute_in(id, from, to, &mut memo)
    }

    fn substitute_in(&mut self, id: Id, from: Id, to: Id, memo: &mut HashMap<Id, Id>) -> Id {
        if id == from {
            return to;
        }
        if let Some(&done) = memo.get(&id) {
            return done;
        }
        let mut sub = |g: &mut Self, n: Id| g.substitute_in(n, from, to, memo);
        let result = match *self.node(id) {
            Node::Const(_) | Node::Var(_) => id,
            Node::Fun(f, a) => {
                let a = sub(self, a);
                self.fun(f, a)
            }
            Node::Powi(a, n) => {
                let a = sub(self, a);
                self.powi(a, n)
            }
            Node::Bin(op, a, b) => {
                let (a, b) = (sub(self, a), sub(self, b));
                self.bin(op, a, b)
            }
            Node::Select(cmp, a, b, t, e) => {
                let (a, b, t, e) = (sub(self, a), sub(self, b), sub(self, t), sub(self, e));
                self.select(cmp, a, b, t, e)
            }
        };
        memo.insert(id, result);
        result
    }

    /// How many operations computing `roots` takes, each shared node counted once: the cost
    /// convention of the layer table (an arithmetic operation, comparison or elementary
    /// function is 1; `sigmoid` is its 4 operations, `softplus` its 5).
    pub fn cost(&self, roots: &[Id]) -> usize {
        let mut seen = vec![false; self.len()];
        let mut stack = roots.to_vec();
        let mut total = 0;
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            total += match self.node(n) {
                Node::Const(_) | Node::Var(_) => 0,
                Node::Fun(Fun::Sigmoid, _) => 4,
                Node::Fun(Fun::Softplus, _) => 5,
                Node::Powi(_, k) => (k.unsigned_abs() as usize).saturating_sub(1).max(1),
                _ => 1,
            };
            stack.extend(self.children(n));
        }
        total
    }
}

/// `a cmp b`.
pub fn compare(cmp: Cmp, a: f64, b: f64) -> bool {
    match cmp {
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
    }
}

/// `f(v)` where it is a finite number the standard library computes; `None` leaves the
/// expression unfolded (erf has no `f64` function in `std`; a NaN or infinity is better left
/// for the generated code to produce than turned into a literal).
fn fold_fun(f: Fun, v: f64) -> Option<f64> {
    let r = match f {
        Fun::Neg => -v,
        Fun::Sqrt => v.sqrt(),
        Fun::Exp => v.exp(),
        Fun::Ln => v.ln(),
        Fun::Tanh => v.tanh(),
        Fun::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Fun::Sin => v.sin(),
        Fun::Cos => v.cos(),
        Fun::Abs => v.abs(),
        Fun::Ln1p => v.ln_1p(),
        Fun::ExpM1 => v.exp_m1(),
        Fun::Softplus => v.max(0.0) + (-v.abs()).exp().ln_1p(),
        Fun::Erf => return None,
    };
    r.is_finite().then_some(r)
}

/// `a op b` where finite.
fn fold_op(op: Op, a: f64, b: f64) -> Option<f64> {
    let r = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Powf => a.powf(b),
    };
    r.is_finite().then_some(r)
}
