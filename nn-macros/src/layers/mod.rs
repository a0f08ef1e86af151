//! The table of layer kinds: the one place that says what a layer is.
//!
//! Every kind, the composite ones (`Residual`, a nested network) included, is an [`Entry`]: its
//! name as written in `network!`, its arguments (torch's positional order and keyword names,
//! with torch's defaults) and a constructor that turns checked arguments into a [`Kind`]. A
//! `Kind` answers everything the checker and the generator ask of a layer: the sizes it
//! declares and produces, its parameters (type, count, `state_dict` names, init), its forward
//! statements and, side by side, its chain-rule statements, its cost and its docs. Nothing
//! outside this module looks at which kind a layer is.
//!
//! Adding a kind means adding a file here with its `Kind` impl, one line in `KINDS` (an
//! elementwise activation: one line in `activation::BUILTINS`, its definition), its
//! runtime kernel if it needs one, and its tests.

pub mod activation;
mod batch_norm;
mod conv;
mod conv2d;
mod dropout;
mod geometry;
mod linear;
mod nested;
mod norm;
mod pool;
mod prelu;
mod recurrent;
mod residual;
mod shape;
mod softmax;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::model::{Count, Layer, Part, Scalar, Shape, Size, has_params};

/// One entry of the table: how a kind is written and built. The builtins' are `'static`; a
/// user's named activation has one borrowing its definition, for binding its arguments.
pub struct Entry<'a> {
    /// The name written in `network!`, as PyTorch spells the module (`ReLU`, `Linear`).
    pub name: &'a str,
    /// The arguments in torch's order.
    pub args: &'a [ArgSpec<'a>],
    /// Builds the kind from its checked arguments, one value per `args` entry.
    pub build: fn(Vec<Value>) -> Box<dyn Kind>,
}

/// One argument of a kind.
#[derive(Clone, Copy)]
pub struct ArgSpec<'a> {
    /// The argument's name, as PyTorch names it; also its keyword.
    pub name: &'a str,
    /// What values it takes.
    pub kind: ArgKind,
}

/// The values an argument takes.
#[derive(Clone, Copy)]
pub enum ArgKind {
    /// A number of features: a whole number of at least 1.
    Size,
    /// A finite real number, with PyTorch's default when omitted.
    Number {
        /// The value used when the argument is left out, if it may be.
        default: Option<f64>,
    },
    /// Layers, every remaining positional argument (the body of a block).
    Layers,
    /// A string, one of `choices` (`GELU(approximate = "tanh")`).
    Choice {
        /// The value used when the argument is left out.
        default: &'static str,
        /// The values it may take.
        choices: &'static [&'static str],
    },
    /// A number of features that may be left out (`PReLU(num_parameters = 1)`).
    OptionalSize {
        /// The value used when the argument is left out.
        default: usize,
    },
    /// A spatial size as torch takes it: a number, or one per axis as a tuple (`(3, 2)`), each
    /// at least `min`, or one of `words` (`padding = "same"`); left out, `default` (or, with
    /// none, absent: the kind decides, as pooling's stride defaults to its kernel).
    Spatial {
        /// The value used when the argument is left out.
        default: Option<usize>,
        /// The smallest value allowed.
        min: usize,
        /// Words it may be instead.
        words: &'static [&'static str],
    },
    /// A flag, with torch's default (`bias = false`).
    Bool {
        /// The value used when the argument is left out.
        default: bool,
    },
    /// The dimension a kind works along, of those in `allowed` (`Softmax(dim = 1)`); `why`
    /// says what they mean, for the error on any other.
    Dim {
        /// The dimensions accepted.
        allowed: &'static [i64],
        /// Why only those.
        why: &'static str,
    },
}

/// A checked argument value.
pub enum Value {
    /// A size, with the span of its literal.
    Size(usize, Span),
    /// A number.
    Number(f64),
    /// Checked layers.
    Layers(Vec<Layer>),
    /// A string, one of the argument's choices.
    Str(String),
    /// A flag.
    Bool(bool),
    /// A spatial size: one number per axis as written (one number for all axes), with the span
    /// of what was written.
    Spatial(Vec<usize>, Span),
    /// An optional argument left out.
    Absent,
}

/// What a layer is, once its arguments are known.
pub trait Kind {
    /// What the layer is in PyTorch's terms, for docs.
    fn torch(&self) -> String;

    /// The input size the layer states (`in_features`), where it states one; `None` for a
    /// layer that keeps whatever size reaches it.
    fn declared_input(&self) -> Option<Size> {
        None
    }

    /// The span of the argument that states the input size, for errors about it.
    fn input_span(&self) -> Option<Span> {
        None
    }

    /// Whether the layer's type takes the size the chain brings rather than the one it states,
    /// so that a size only the compiler knows meets it in one clear check instead of type
    /// errors (a `Linear` after a nested network does; a nested network keeps its own).
    fn adopts_input(&self) -> bool {
        true
    }

    /// The size the layer produces from `input`.
    fn output(&self, input: &Size) -> Size {
        input.clone()
    }

    /// The layers inside a block.
    fn inner(&self) -> Option<&[Layer]> {
        None
    }

    /// The layers inside a block, for the checker to chain their sizes.
    fn inner_mut(&mut self) -> Option<&mut Vec<Layer>> {
        None
    }

    /// The span of the argument that states the output size, for errors about it.
    fn output_span(&self) -> Option<Span> {
        None
    }

    /// For a block: the rule its layers must follow given its input and their output, as a
    /// message (in parts, since the compiler may have to finish it).
    fn check_block(&self, _input: &Size, _output: &Size) -> Option<Vec<Part>> {
        None
    }

    /// The shape the layer gives its output from its input's (`features` of them), or, where
    /// the input's shape does not suit it, what is wrong, in words. A kind whose geometry
    /// depends on the input's shape (a convolution's output size) records it here; its
    /// `output` then follows. By default a layer keeps the shape (elementwise layers); one
    /// that takes flat features only says so with [`flat_only`](Kind::flat_only).
    fn shape(&mut self, input: &Shape, _features: &Size) -> Result<Shape, String> {
        Ok(input.clone())
    }

    /// Whether the layer takes flat features only (`Linear`, the recurrent layers, softmax):
    /// after a layer that gives them a shape, `Flatten` must come first.
    fn flat_only(&self) -> bool {
        false
    }

    /// The layer's own parameters, if it learns.
    fn params(&self) -> Option<&dyn Params> {
        None
    }

    /// Statements binding `site.output` to the layer's output.
    fn forward(&self, site: &Site) -> TokenStream;

    /// Statements applying the chain rule through the layer: the gradient of its parameters
    /// and, where `site.grad_input` is set, the gradient passed to the layer below. Where
    /// `site.sgd_rate` is set, a kind with parameters updates them in place instead of storing
    /// their gradient (after taking the gradient for the layer below from them).
    fn backward(&self, site: &Site) -> TokenStream;

    /// Statements binding `site.grad_input` to the gradient passed to the layer below
    /// without computing the gradient of the layer's parameters: its backward step when it
    /// is frozen. `None` where the kind has no such form; a frozen layer then runs its whole
    /// [`backward`](Kind::backward) (its gradient is cleared afterwards). A kind whose
    /// parameters fuse an SGD step ([`Params::fuses_sgd`]) must have one.
    fn backward_input(&self, _site: &Site) -> Option<TokenStream> {
        None
    }

    /// Floating-point operations of the forward pass, per sample. The convention: a
    /// multiply-add is 2, any other arithmetic operation, comparison or elementary function 1.
    fn forward_flops(&self, layer: &Layer) -> Count;

    /// Operations of the backward pass, per sample, with or without the gradient passed down.
    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count;

    /// Scalars of activations kept for the backward pass, per sample.
    fn activations(&self, layer: &Layer) -> Count {
        layer.output.count()
    }

    /// The state the layer keeps from one time step to the next, if it is a sequence layer
    /// (a recurrent cell, a causal convolution): a network holding one is a sequence network.
    fn state(&self, _layer: &Layer, _scalar: Scalar) -> Option<StateSpec> {
        None
    }

    /// Whether the layer computes differently in training (`train_step`, `gradients`) and in
    /// inference (`forward`, `forward_batch`): batch statistics, dropout.
    fn moded(&self) -> bool {
        false
    }

    /// Whether the layer draws dropout masks, from the network's `__dropout` key.
    fn drops(&self) -> bool {
        false
    }

    /// The type of what the layer's training forward pass keeps beside its output for its
    /// backward pass (a sequence layer's step cache, a batch norm's batch statistics), bound
    /// to `site.step_cache`.
    fn extra_cache(&self, layer: &Layer, scalar: Scalar) -> Option<TokenStream> {
        self.state(layer, scalar).map(|state| state.cache)
    }

    /// Statements `train_step` runs after the optimizer's update, given `kept`, what the
    /// layer's training forward pass kept ([`extra_cache`](Kind::extra_cache)): a batch norm
    /// updates its running statistics from its batch's.
    fn after_step(
        &self,
        _layer: &Layer,
        _scalar: Scalar,
        _kept: &TokenStream,
    ) -> Option<TokenStream> {
        None
    }

    /// The layer's forward equation and the backward equations the generator derives for it,
    /// as text for the generated docs, in the names `eq` gives.
    fn equations(&self, eq: &Equations<'_>) -> Lines {
        let torch = self.torch();
        Lines {
            forward: vec![format!("{} = {torch}({})", eq.output, eq.input)],
            backward: vec![format!(
                "δ{} = the vector-Jacobian product of {torch} with δ{}",
                eq.input, eq.output
            )],
        }
    }
}

/// What a sequence layer keeps between time steps, as types generic over the batch width
/// `__B`.
pub struct StateSpec {
    /// The type of its state (`HiddenState<f32, 16, 1, __B>`): a public field of the
    /// generated `{Name}State`, and of the state gradient the backward pass carries in time.
    pub ty: TokenStream,
    /// The type of what one step's forward pass keeps for its backward pass.
    pub cache: TokenStream,
    /// Rustdoc of the state field.
    pub doc: String,
}

/// Writes the equations of a chain of layers: `(layers, input, prefix, pass_down)` to the
/// lines and the chain's output's name.
pub type ChainEquations = dyn Fn(&[Layer], &str, &str, bool) -> (Lines, String);

/// The names a layer's equations are written in.
pub struct Equations<'a> {
    /// Writes the equations of a block's inner chain, from its input's name, with names
    /// starting with a prefix; returns them and the chain's output's name.
    pub chain: &'a ChainEquations,
    /// The layer's input, e.g. `a1`.
    pub input: String,
    /// Its output, e.g. `a2`.
    pub output: String,
    /// Its parameters' field, e.g. `l0`.
    pub field: String,
    /// Whether a gradient is passed to the layer below.
    pub pass_down: bool,
}

/// Equations as text, one per line.
#[derive(Default)]
pub struct Lines {
    /// The forward pass.
    pub forward: Vec<String>,
    /// The backward pass, in the order it runs.
    pub backward: Vec<String>,
}

/// The parameters of a kind that learns: a runtime type holding tensors by PyTorch's names.
pub trait Params {
    /// The type of the field holding them (`Role::Params`) or their gradient (`Role::Grads`).
    fn ty(&self, layer: &Layer, scalar: Scalar, role: Role) -> TokenStream;

    /// Number of learned scalars.
    fn count(&self, layer: &Layer) -> Count;

    /// Number of tensors the optimizer sees.
    fn tensors(&self) -> Count;

    /// Statements re-initialising the parameters at `place` from `init` as torch does.
    fn reset(&self, place: &TokenStream) -> TokenStream;

    /// Statements handing each tensor at `place` (mutably with `mutable`) with its gradient
    /// at `grad` to the optimizer's slices, or (without `grad`) to the visitor `f` under
    /// `state_dict` names starting with `name`.
    fn visit(&self, layer: &Layer, t: Scalar, place: &TokenStream, access: Access) -> TokenStream;

    /// Rustdoc of the field.
    fn doc(&self, layer: &Layer, role: Role) -> String;

    /// Whether the block may hold integer buffers (a batch norm's `num_batches_tracked`, or a
    /// nested network's), which weight files carry as I64 through `Tensors::visit_counts`.
    fn counts(&self) -> bool {
        false
    }

    /// Whether the kind's backward pass can step its parameters in place with a plain SGD
    /// rate (`Site::sgd_rate`) instead of storing their gradient.
    fn fuses_sgd(&self) -> bool {
        false
    }

    /// Every tensor a weight file holds for the layer, as `Tensors::visit` and `visit_counts`
    /// name and shape them, in that order: what `#[weights(..)]` checks a file against at
    /// compile time and decodes into. `None` where only the compiler knows them (a nested
    /// network's).
    fn tensor_list(&self, layer: &Layer) -> Option<Vec<TensorSpec>>;
}

/// One tensor of a layer as a weight file holds it.
pub struct TensorSpec {
    /// Its name after the layer's `state_dict` prefix (`weight`, `weight_ih_l1`).
    pub name: String,
    /// Its shape as PyTorch states it (`[out, in]`, `[out, in/groups, kh, kw]`, `[]` for a
    /// count).
    pub shape: Vec<usize>,
    /// Whether it is an integer count (`I64`, shape `[]`) rather than a float tensor.
    pub count: bool,
    /// The place of its data in the layer's runtime block, as a field path (`.weight`,
    /// `.rest[0].bias_hh`): an `SMatrix` of `shape[0]` rows and the product of the other axes
    /// as columns (an `SVector` for one axis), or the `i64` of a count.
    pub place: TokenStream,
}

impl TensorSpec {
    /// A float tensor at field `place` of the block.
    pub fn float(name: impl Into<String>, shape: Vec<usize>, place: TokenStream) -> Self {
        Self {
            name: name.into(),
            shape,
            count: false,
            place,
        }
    }

    /// An integer count at field `place` of the block.
    pub fn count(name: impl Into<String>, place: TokenStream) -> Self {
        Self {
            name: name.into(),
            shape: Vec::new(),
            count: true,
            place,
        }
    }
}

/// Which of the two generated structs a field belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The network's parameters.
    Params,
    /// Their gradients.
    Grads,
}

/// How generated code reaches a layer's tensors.
pub enum Access<'a> {
    /// By `state_dict` name (`name`, an expression giving the layer's prefix), read-only or
    /// mutably, through the visitor `f`.
    Named {
        /// The expression giving the prefix.
        name: &'a TokenStream,
        /// Whether the visitor gets mutable slices.
        mutable: bool,
    },
    /// Paired with its gradients at `grad`, into the optimizer's `params` and `grads` at `at`.
    Paired {
        /// Where the gradients are.
        grad: &'a TokenStream,
    },
    /// The place holds gradients, each tensor of which goes to the closure `f` mutably, in
    /// the order of `Paired` (the gradient struct's `FlatTensors`, which clipping works on).
    Flat,
}

/// What the generator knows about one layer in one pass, handed to the kind's code.
pub struct Site<'a> {
    /// The runtime path.
    pub rt: &'a TokenStream,
    /// The scalar type.
    pub scalar: Scalar,
    /// The layer.
    pub layer: &'a Layer,
    /// A reference to the layer's input.
    pub input_ref: TokenStream,
    /// The variable to bind the output to (forward) or holding it (backward).
    pub output: Ident,
    /// A reference to the output, in the backward pass.
    pub output_ref: TokenStream,
    /// The variable holding the gradient of the loss with respect to the output.
    pub grad_output: Ident,
    /// The variable to bind the gradient with respect to the input to, when a layer below
    /// needs it.
    pub grad_input: Option<Ident>,
    /// The place of this layer's parameters (`self.l0`).
    pub param: TokenStream,
    /// The place of this layer's parameter gradients (`grads.l0`).
    pub grad: TokenStream,
    /// With a plain SGD optimizer: the learning rate, an expression; parameters are then
    /// stepped in place and `grad` is not there.
    pub sgd_rate: Option<&'a TokenStream>,
    /// The chain generator, for blocks: their inner layers go through the same passes.
    pub chain: &'a dyn Chain,
    /// The variable prefix of this layer's inner chain, for blocks.
    pub inner_prefix: String,
    /// For a sequence layer: the place of its state (`state.l0`); the forward pass reads it
    /// as the previous step's and leaves the new one.
    pub state: TokenStream,
    /// For a sequence layer, in the backward pass: the place of the gradient with respect to
    /// its state (`carry.l0`), from later steps on entry, for the previous step on exit.
    pub carry: TokenStream,
    /// For a sequence layer: the variable holding what its forward step keeps for the
    /// backward step.
    pub step_cache: Ident,
    /// Whether the forward pass keeps what the backward pass needs: a training pass (not
    /// when only stepping, or in inference). Off in a backward pass, it is inference's, for
    /// the input sensitivities: the derivative of the inference forward pass (batch norms by
    /// their running statistics, dropout the identity), asked for the input's gradient only.
    pub keep: bool,
    /// The network in this pass: `this` forward, `self` backward.
    pub owner: TokenStream,
}

/// The generator's passes over a chain of layers, which blocks call for their inner layers.
pub trait Chain {
    /// Forward statements of `layers`, from the variable `{prefix}0` (bound by the caller to
    /// a reference to the chain's input); returns them and the variable of the chain's output.
    fn forward(&self, layers: &[Layer], prefix: &str) -> (TokenStream, Ident);

    /// Backward statements of `layers`, from `d{prefix}{n}` down; with `pass_down`, on to
    /// `d{prefix}0`.
    fn backward(&self, layers: &[Layer], prefix: &str, pass_down: bool) -> TokenStream;

    /// The variable `j` of the chain with `prefix`, as a reference in the current pass.
    fn var_ref(&self, prefix: &str, j: usize) -> (Ident, TokenStream);
}

/// Every layer kind `network!` knows by name but the elementwise activations.
const KINDS: &[Entry<'static>] = &[
    linear::ENTRY,
    residual::ENTRY,
    prelu::ENTRY,
    recurrent::GRU,
    recurrent::LSTM,
    recurrent::RNN,
    conv::CONV1D,
    conv2d::CONV2D,
    pool::MAX_POOL1D,
    pool::MAX_POOL2D,
    pool::AVG_POOL1D,
    pool::AVG_POOL2D,
    pool::ADAPTIVE_AVG_POOL1D,
    pool::ADAPTIVE_AVG_POOL2D,
    norm::LAYER_NORM,
    batch_norm::BATCH_NORM1D,
    batch_norm::BATCH_NORM2D,
    dropout::DROPOUT,
    shape::UNFLATTEN,
    shape::FLATTEN,
    softmax::SOFTMAX,
    softmax::LOG_SOFTMAX,
];

/// Every layer kind `network!` knows by name.
pub fn entries() -> impl Iterator<Item = &'static Entry<'static>> {
    KINDS.iter().chain(activation::BUILTINS)
}

/// PyTorch modules a user may reach for that `network!` does not have yet: named, they get an
/// error that says so, rather than being taken for a nested network that does not exist.
const UNSUPPORTED: &[&str] = &[
    "AlphaDropout",
    "Conv3d",
    "ConvTranspose2d",
    "GroupNorm",
    "InstanceNorm1d",
    "Embedding",
    "MultiheadAttention",
    "Transformer",
    "RReLU",
    "Bilinear",
    "Sequential",
    "ModuleList",
];

/// What a layer name means.
pub enum Lookup {
    /// A kind of the table.
    Entry(&'static Entry<'static>),
    /// A network declared with `network!`, used as a layer.
    Nested,
    /// A PyTorch module `network!` does not support.
    Unsupported,
    /// Not a layer: close to the named kind, or not a type name at all.
    Unknown(Option<&'static str>),
}

/// What `name` means as a layer.
pub fn lookup(name: &str) -> Lookup {
    if let Some(entry) = entries().find(|e| e.name == name) {
        return Lookup::Entry(entry);
    }
    if UNSUPPORTED.contains(&name) {
        return Lookup::Unsupported;
    }
    // Close to a layer kind: a typo far more likely than a network so named.
    match closest(name, &names()) {
        Some(close) => Lookup::Unknown(Some(close)),
        None if name.starts_with(|c: char| c.is_ascii_uppercase()) => Lookup::Nested,
        None => Lookup::Unknown(None),
    }
}

/// A network declared elsewhere with `network!`, used by its name as one layer.
pub fn nested(name: Ident) -> Box<dyn Kind> {
    Box::new(nested::Nested(name))
}

/// Every name a layer can be written with.
pub fn names() -> Vec<&'static str> {
    entries().map(|e| e.name).collect()
}

/// The layers `network!` knows, for messages: the kinds, then the elementwise activations.
pub fn known() -> String {
    let kinds: Vec<&str> = KINDS.iter().map(|e| e.name).collect();
    let activations: Vec<&str> = activation::BUILTINS.iter().map(|e| e.name).collect();
    format!(
        "{}, the activations {}, and activations written as closures (`|x| x * sigmoid(x)`)",
        kinds.join(", "),
        activations.join(", ")
    )
}

/// The kinds that fix their sizes, for the message when none of a network's layers does.
pub fn sized_names() -> Vec<&'static str> {
    entries()
        .filter(|e| {
            matches!(
                e.args.first(),
                Some(ArgSpec {
                    kind: ArgKind::Size,
                    ..
                })
            )
        })
        .map(|e| e.name)
        .collect()
}

impl Entry<'_> {
    /// The argument list as a user would write it, e.g. `Linear(in_features, out_features)`.
    pub fn signature(&self) -> String {
        if self.args.is_empty() {
            return self.name.to_string();
        }
        let names: Vec<String> = self
            .args
            .iter()
            .map(|a| match a.kind {
                ArgKind::Number { default: Some(d) } => format!("{} = {d}", a.name),
                ArgKind::Choice { default, .. } => format!("{} = {default:?}", a.name),
                ArgKind::OptionalSize { default } => format!("{} = {default}", a.name),
                ArgKind::Dim { allowed, .. } => format!("{} = {}", a.name, allowed[0]),
                ArgKind::Bool { default } => format!("{} = {default}", a.name),
                ArgKind::Spatial {
                    default: Some(d), ..
                } => format!("{} = {d}", a.name),
                ArgKind::Spatial { default: None, .. } => format!("{} = None", a.name),
                ArgKind::Layers => "layer, ...".to_string(),
                _ => a.name.to_string(),
            })
            .collect();
        format!("{}({})", self.name, names.join(", "))
    }

    /// How many arguments must be written (those without a default).
    pub fn required_args(&self) -> usize {
        self.args
            .iter()
            .filter(|a| matches!(a.kind, ArgKind::Size | ArgKind::Number { default: None }))
            .count()
    }
}

/// Operations of the forward pass of `layers`, per sample.
pub fn chain_forward_flops(layers: &[Layer]) -> Count {
    Count::sum(layers.iter().map(|l| l.kind.forward_flops(l)))
}

/// Operations of the backward pass of `layers`, per sample; with `input_grad`, down to the
/// gradient of the input. It stops where the chain rule does: a layer passes a gradient down
/// only if something below it learns.
pub fn chain_backward_flops(layers: &[Layer], input_grad: bool) -> Count {
    Count::sum(layers.iter().enumerate().map(|(j, layer)| {
        let pass_down = input_grad || has_params(&layers[..j]);
        layer.kind.backward_flops(layer, pass_down)
    }))
}

/// Scalars of activations the forward pass of `layers` keeps, per sample.
pub fn chain_activations(layers: &[Layer]) -> Count {
    Count::sum(layers.iter().map(|l| l.kind.activations(l)))
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

/// Argument `i`, a size, with the span of its literal. The checker hands every kind the values
/// its `args` describe; were it not so, a size of 1 is no worse than any other stand-in, and
/// the macro must never panic.
fn size(args: &[Value], i: usize) -> (usize, Span) {
    match args.get(i) {
        Some(Value::Size(n, span)) => (*n, *span),
        _ => (1, Span::call_site()),
    }
}

/// A numeric argument's value (see [`size`] for why a stand-in rather than a panic).
fn number(value: &Value) -> f64 {
    match value {
        Value::Number(n) => *n,
        _ => 0.0,
    }
}

/// How a runtime parameter block (`Linear`, `PRelu`, `Gru`, ...) is visited: by name through
/// its `Tensors` impl, or paired with its gradients by its `pair` method.
pub fn visit_block(place: &TokenStream, access: Access) -> TokenStream {
    let rt = crate::expand::rt();
    match access {
        Access::Named {
            name,
            mutable: false,
        } => quote!(#rt::Tensors::visit(&#place, #name, f);),
        Access::Named {
            name,
            mutable: true,
        } => quote!(#rt::Tensors::visit_mut(&mut #place, #name, f);),
        Access::Paired { grad } => quote!(#place.pair(&#grad, params, grads, at);),
        Access::Flat => quote!(#rt::FlatTensors::for_each_tensor_mut(&mut #place, &mut *f);),
    }
}

/// A sequence layer's forward step (its runtime block's `step`, or `step_only` where nothing
/// is kept for a backward pass): reads the previous state at `site.state` and leaves the new.
pub fn step_forward(s: &Site, state: Option<StateSpec>) -> TokenStream {
    let (param, input, state_place, cache) = (&s.param, &s.input_ref, &s.state, &s.step_cache);
    let (output, rt) = (&s.output, s.rt);
    if !s.keep {
        return quote!(let #output = #param.step_only(#input, &mut #state_place););
    }
    let ty = state.map(|spec| spec.cache).unwrap_or_default();
    quote! {
        let mut #cache: #ty = #rt::zeroed();
        let #output = #param.step(#input, &mut #state_place, &mut #cache);
    }
}

/// A sequence layer's backward step (its runtime block's `step_backward`): adds the step's
/// parameter gradients, takes the state's gradient from later steps at `site.carry` and leaves
/// the previous step's, and gives the input's gradient.
pub fn step_backward(s: &Site) -> TokenStream {
    let (param, grad, carry, cache) = (&s.param, &s.grad, &s.carry, &s.step_cache);
    let dy = &s.grad_output;
    let call = quote!(#param.step_backward(#cache, &#dy, &mut #carry, &mut #grad));
    match &s.grad_input {
        Some(dx) => quote!(let #dx = #call;),
        None => quote!(let _ = #call;),
    }
}

impl Site<'_> {
    /// `let output = value;`.
    pub fn bind(&self, value: TokenStream) -> TokenStream {
        let output = &self.output;
        quote!(let #output = #value;)
    }
}
