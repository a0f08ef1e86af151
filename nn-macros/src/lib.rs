//! The `network!` procedural macro. Use it through `nn_runtime`, which re-exports it with the
//! runtime the generated code needs.
//!
//! The macro is a pipeline of three phases, each in its own module:
//! `ast` parses the declaration keeping every token's span; `validate` checks it into a
//! `model::Network` (sizes resolved and chained, parameters named), reporting every mistake
//! at once; `expand` generates the struct, the forward pass, and the backward pass that the
//! `layers` table derives by the chain rule.

use proc_macro::TokenStream;

mod ast;
mod compiled;
mod definitions;
mod errors;
mod expand;
mod expr;
mod fallback;
mod front;
mod layers;
mod model;
mod validate;

#[cfg(test)]
mod tests;

/// Declares a feed-forward network and generates its struct, forward pass, backward pass and
/// training step at compile time.
///
/// ```ignore
/// network! {
///     /// The classic XOR network.
///     pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
/// }
/// ```
///
/// Layers mirror PyTorch's modules, with torch's names, arguments and defaults: `Linear(in,
/// out)`, the activations (`ReLU`, `LeakyReLU(negative_slope = 0.01)`, `Sigmoid`, `Tanh`,
/// `GELU`, `SiLU`, `ELU(alpha = 1.0)`, ... `PReLU`, `Softmax(dim = 1)`), `Residual(..)`, and
/// networks declared with `network!`, by name. An activation may be written as a closure
/// (`|x| x * sigmoid(x)`), or defined by name before the networks of the invocation
/// (`activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);`): the macro derives its
/// derivative. The scalar type is `f32`; write `struct Name: f64 { ... }` for `f64`.
///
/// `#[weights("file.safetensors")]` on a network (a path relative to the crate's manifest
/// directory) compiles that file's weights in: the macro checks every tensor's name, shape and
/// dtype against the declaration at compile time, and generates `pretrained()`,
/// `fill_pretrained()` and, up to 65 536 parameters, `const PRETRAINED`. See `nn_runtime`'s
/// documentation for what is generated.
#[proc_macro]
pub fn network(input: TokenStream) -> TokenStream {
    front::expand(input.into()).into()
}
