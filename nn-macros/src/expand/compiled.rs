//! The constructors of a network with weights compiled in (`#[weights("file.safetensors")]`):
//! the file embedded as bytes by `include_bytes!` (which also makes cargo rebuild the crate
//! when the file changes), and each tensor decoded from the offset the macro found in its
//! header, so nothing parses, looks up or allocates at run time.
//!
//! - `PRETRAINED`, a `const`, where the network has at most [`CONST_LIMIT`] parameters: the
//!   weights then sit in read-only memory. The compiler interprets every element's decoding
//!   when the const is used (never when it is not): measured on a busy 2-core machine, a
//!   `Linear(256, 255)` (65 535 parameters) took 9.2 s of compile time through `PRETRAINED`
//!   against 0.9 s through `pretrained()`, a `Linear(512, 511)` 17.5 s, and at a million
//!   parameters rustc stops with "constant evaluation is taking a long time". So above the
//!   limit only the run-time forms exist.
//! - `pretrained()`, always: `zeros()` filled in place by `fill_pretrained`.
//! - `fill_pretrained(&mut self)`, for a network built elsewhere (`boxed_zeros()` for one too
//!   large for the stack).

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};

use super::rt;
use crate::compiled::{Compiled, Placed};
use crate::model::{Count, Network, Scalar};

/// Networks of at most this many parameters get a `const PRETRAINED`.
pub const CONST_LIMIT: usize = 65_536;

/// The items of a network with compiled weights, for the generated block; nothing without.
pub fn items(model: &Network) -> TokenStream {
    let Some(weights) = &model.weights else {
        return TokenStream::new();
    };
    let ident = &model.ident;
    let (path, len) = (&weights.path, Literal::usize_unsuffixed(weights.len));
    let params = Count::sum(model.layers.iter().map(|l| l.param_count()));
    let constant = params
        .value()
        .is_some_and(|n| n <= CONST_LIMIT)
        .then(|| constant(model, weights));
    let fill = fill(model.scalar, weights);
    let written = &weights.written;
    let pretrained_doc = format!(
        " The network with the weights compiled in from `{written}` (checked against the \
         declaration when it was compiled): no file access, no parsing, no allocation. Built \
         on the stack; for a network too large for it, `boxed_zeros()` then \
         [`fill_pretrained`](Self::fill_pretrained)."
    );
    let fill_doc = format!(
        " Overwrites every parameter and buffer with the weights compiled in from `{written}`, \
         as [`pretrained`](Self::pretrained) builds them; allocates nothing."
    );
    let bytes = quote_spanned!(weights.span=> ::core::include_bytes!(#path));
    quote! {
        /// The weights file, embedded: `include_bytes!` makes cargo rebuild when it changes.
        const __WEIGHTS: &[u8] = #bytes;
        const _: () = ::core::assert!(
            __WEIGHTS.len() == #len,
            "the weights file changed while `network!` was reading it: build again"
        );

        impl #ident {
            #constant

            #[doc = #pretrained_doc]
            pub fn pretrained() -> Self {
                let mut net = Self::zeros();
                net.fill_pretrained();
                net
            }

            #[doc = #fill_doc]
            pub fn fill_pretrained(&mut self) {
                #fill
            }
        }
    }
}

/// `PRETRAINED`: zero bytes (as `from_safetensors_bytes` starts from `zeros()`), then each
/// tensor decoded by a `const fn`.
fn constant(model: &Network, weights: &Compiled) -> TokenStream {
    let rt = rt();
    let decoder = match model.scalar {
        Scalar::F32 => quote!(matrix_f32),
        Scalar::F64 => quote!(matrix_f64),
    };
    let writes = weights.tensors.iter().map(|t| {
        let Placed {
            field,
            place,
            rows,
            cols,
            count,
            offset,
        } = t;
        let offset = Literal::usize_unsuffixed(*offset);
        if *count {
            return quote!(net.#field #place = #rt::compiled::scalar_i64(__WEIGHTS, #offset););
        }
        let (rows, cols) = (
            Literal::usize_unsuffixed(*rows),
            Literal::usize_unsuffixed(*cols),
        );
        quote!(net.#field #place = #rt::compiled::#decoder::<#rows, #cols>(__WEIGHTS, #offset);)
    });
    let binding = if weights.tensors.is_empty() {
        quote!(net)
    } else {
        quote!(mut net)
    };
    let doc = format!(
        " The network with the weights compiled in from `{}`, as a `const`: the weights sit in \
         read-only memory, decoded at compile time from the file `network!` checked against \
         the declaration. Equal to `from_safetensors_bytes` of the same file. (A `const` \
         exists for networks of at most {CONST_LIMIT} parameters; every network with compiled \
         weights has [`pretrained`](Self::pretrained).)",
        weights.written
    );
    quote! {
        #[doc = #doc]
        pub const PRETRAINED: Self = {
            let #binding: Self = #rt::compiled::zeroed_const();
            #(#writes)*
            net
        };
    }
}

/// `fill_pretrained`'s statements: each tensor decoded in place.
fn fill(scalar: Scalar, weights: &Compiled) -> TokenStream {
    let (rt, t) = (rt(), scalar.tokens());
    weights
        .tensors
        .iter()
        .map(|tensor| {
            let Placed {
                field,
                place,
                rows,
                count,
                offset,
                ..
            } = tensor;
            let offset = Literal::usize_unsuffixed(*offset);
            if *count {
                return quote!(self.#field #place = #rt::compiled::scalar_i64(__WEIGHTS, #offset););
            }
            let rows = Literal::usize_unsuffixed(*rows);
            quote! {
                #rt::compiled::fill::<#t>(__WEIGHTS, #offset, #rows, self.#field #place.as_mut_slice());
            }
        })
        .collect()
}
