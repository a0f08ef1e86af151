//! `#[weights("file.safetensors")]`: weights compiled into the binary.
//!
//! The attribute names a safetensors file relative to the crate's manifest directory. At
//! expansion the macro reads the file, parses its header (never panicking: a corrupt file is an
//! error like any other) and checks it against the declaration's own list of tensors, which
//! the layer table gives ([`Params::tensor_list`](crate::layers::Params::tensor_list)): every
//! name present, with PyTorch's shape and the network's dtype (`F32`/`F64`, `I64` for a count),
//! and nothing extra. Every mismatch is an error on the attribute's string, all reported at
//! once. What passes is a [`Compiled`]: the file's absolute path and, for each tensor, where
//! its data starts, so the generated code (`expand/compiled.rs`) decodes it at a fixed offset
//! with no header parsing at run time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use proc_macro2::{Ident, Span, TokenStream};
use syn::{Attribute, LitStr};

use crate::errors::Errors;
use crate::model::{Layer, Scalar};

/// The weights of a network, checked against its declaration.
pub struct Compiled {
    /// The file as written in the attribute, for docs.
    pub written: String,
    /// Its absolute path, for `include_bytes!`.
    pub path: String,
    /// Its length in bytes, which the generated code asserts.
    pub len: usize,
    /// The span of the attribute's string.
    pub span: Span,
    /// Every tensor of the network, in declaration order.
    pub tensors: Vec<Placed>,
}

/// One tensor of the network, found in the file.
pub struct Placed {
    /// The field of the network holding its layer's block.
    pub field: Ident,
    /// Its place in the block (`.weight`).
    pub place: TokenStream,
    /// Rows and columns it is stored as (`shape[0]` by the product of the rest).
    pub rows: usize,
    /// See `rows`.
    pub cols: usize,
    /// Whether it is an `I64` count.
    pub count: bool,
    /// Where its data starts in the file.
    pub offset: usize,
}

/// Removes `#[weights(..)]` (or `#[weights = ".."]`) from `attrs`, returning its string; a
/// malformed or repeated one is recorded in `errors`.
pub fn take_attribute(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Option<LitStr> {
    let mut found: Option<LitStr> = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("weights") {
            return true;
        }
        match attribute_path(attr) {
            Some(_) if found.is_some() => errors.over(
                attr,
                "a network takes one `#[weights(..)]`: its weights come from one file",
            ),
            Some(lit) => found = Some(lit),
            None => errors.over(
                attr,
                "expected `#[weights(\"path/to/file.safetensors\")]`, a path relative to the \
                 crate's manifest directory",
            ),
        }
        false
    });
    found
}

/// The string of `#[weights("..")]` or `#[weights = ".."]`.
fn attribute_path(attr: &Attribute) -> Option<LitStr> {
    match &attr.meta {
        syn::Meta::List(_) => attr.parse_args::<LitStr>().ok(),
        syn::Meta::NameValue(syn::MetaNameValue {
            value:
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(lit),
                    ..
                }),
            ..
        }) => Some(lit.clone()),
        _ => None,
    }
}

/// Reads the file `lit` names and checks it against the tensors of `layers`; with
/// `compare` false (the declaration has other mistakes, so its tensor list may be wrong) only
/// whether the file is there and readable. Every mistake goes to `errors`.
pub fn check(
    lit: &LitStr,
    layers: &[Layer],
    scalar: Scalar,
    compare: bool,
    errors: &mut Errors,
) -> Option<Compiled> {
    let span = lit.span();
    let path = resolve(&lit.value());
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) => {
            errors.at(
                span,
                format!(
                    "cannot read the weights file `{}`: {error}; the path is relative to the \
                     crate's manifest directory (`CARGO_MANIFEST_DIR`)",
                    path.display()
                ),
            );
            return None;
        }
    };
    // The file exists: its path without `..`, for messages and `include_bytes!`.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let Some(path_text) = path.to_str().map(str::to_owned) else {
        errors.at(span, "the weights file's path is not valid UTF-8");
        return None;
    };
    let header = match Header::parse(&bytes) {
        Ok(header) => header,
        Err(reason) => {
            let shown = path.display();
            errors.at(
                span,
                format!("`{shown}` is not a valid safetensors file: {reason}"),
            );
            return None;
        }
    };
    if !compare {
        return None;
    }
    let tensors = match_tensors(&header, layers, scalar, span, errors)?;
    Some(Compiled {
        written: lit.value(),
        path: path_text,
        len: bytes.len(),
        span,
        tensors,
    })
}

/// `written` relative to the crate's manifest directory, unless absolute.
fn resolve(written: &str) -> PathBuf {
    let path = Path::new(written);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let base = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(PathBuf::new, PathBuf::from);
    base.join(path)
}

/// Every tensor of `layers` looked up in the file; `None` (and the reasons in `errors`) if any
/// is missing or differs, or the file has one more.
fn match_tensors(
    header: &Header,
    layers: &[Layer],
    scalar: Scalar,
    span: Span,
    errors: &mut Errors,
) -> Option<Vec<Placed>> {
    let before = errors.is_empty();
    let float = match scalar {
        Scalar::F32 => "F32",
        Scalar::F64 => "F64",
    };
    let mut placed = Vec::new();
    let mut names = HashSet::new();
    let mut param_layers = Vec::new();
    for layer in layers {
        layer.collect_param_layers(&mut param_layers);
    }
    for layer in param_layers {
        let Some(list) = layer.kind.params().and_then(|p| p.tensor_list(layer)) else {
            // Without this layer's tensors the others prove nothing (the file's would all be
            // "extra"): one error, here.
            errors.at(
                layer.span,
                format!(
                    "`#[weights]` checks every tensor at compile time, but the tensors of layer \
                     `{}` (`{}`) are known to the compiler only (a nested network's, or sized by \
                     one): declare its layers here, or load the weights at run time with \
                     `from_safetensors_bytes(include_bytes!(..))`",
                    layer.prefix, layer.source
                ),
            );
            return None;
        };
        for spec in list {
            let name = format!("{}.{}", layer.prefix, spec.name);
            let dtype = if spec.count { "I64" } else { float };
            names.insert(name.clone());
            let Some(entry) = header.find(&name) else {
                errors.at(span, format!("tensor `{name}` is missing from the file"));
                continue;
            };
            if entry.dtype != dtype {
                errors.at(
                    span,
                    format!(
                        "tensor `{name}` has dtype {} in the file, but the network expects {dtype}",
                        entry.dtype
                    ),
                );
                continue;
            }
            if entry.shape != spec.shape {
                errors.at(
                    span,
                    format!(
                        "tensor `{name}` has shape {:?} in the file, but the network expects {:?}",
                        entry.shape, spec.shape
                    ),
                );
                continue;
            }
            let rows = spec.shape.first().copied().unwrap_or(1);
            placed.push(Placed {
                field: layer.field.clone(),
                place: spec.place,
                rows,
                cols: spec.shape.iter().skip(1).product(),
                count: spec.count,
                offset: entry.offset,
            });
        }
    }
    for extra in header.entries.iter().filter(|e| !names.contains(&e.name)) {
        errors.at(
            span,
            format!(
                "the file has a tensor `{}` that the network does not have",
                extra.name
            ),
        );
    }
    (before && errors.is_empty()).then_some(placed)
}

/// A safetensors header: every tensor's name, dtype, shape and where its data starts.
struct Header {
    entries: Vec<Entry>,
}

/// One tensor of the header.
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    /// Where its data starts, from the start of the file.
    offset: usize,
}

impl Header {
    /// Parses the header of `bytes` and checks each tensor's data lies within the file and
    /// has the length its shape and dtype say; what is wrong, in words, otherwise. Arithmetic
    /// is checked throughout: no file makes the macro panic.
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or("shorter than the 8 bytes of its header's length")?;
        let header_len = usize::try_from(u64::from_le_bytes(len_bytes))
            .map_err(|_| "its header's length is too large")?;
        let start = 8usize
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or("its header runs past the end of the file")?;
        let json: serde_json::Value = serde_json::from_slice(&bytes[8..start])
            .map_err(|e| format!("its header is not JSON: {e}"))?;
        let serde_json::Value::Object(map) = json else {
            return Err("its header is not a JSON object".into());
        };
        let data_len = bytes.len() - start;
        let mut entries = Vec::new();
        for (name, info) in &map {
            if name == "__metadata__" {
                continue;
            }
            entries.push(Entry::parse(name, info, start, data_len)?);
        }
        // The order of the file's tensors, for errors in a stable order.
        entries.sort_by_key(|e| e.offset);
        Ok(Self { entries })
    }

    /// The tensor called `name`.
    fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

impl Entry {
    /// One header entry, its data checked to lie within the `data_len` bytes after `start`.
    fn parse(
        name: &str,
        info: &serde_json::Value,
        start: usize,
        data_len: usize,
    ) -> Result<Self, String> {
        let bad = |what: &str| format!("tensor `{name}` has {what}");
        let dtype = info
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("no dtype"))?
            .to_string();
        let shape = info
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("a shape that is not a list of sizes"))?;
        let offsets = info
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| match o.as_slice() {
                [a, b] => Some((a.as_u64()?, b.as_u64()?)),
                _ => None,
            })
            .ok_or_else(|| bad("no data offsets"))?;
        if offsets.0 > offsets.1 || offsets.1 > data_len as u64 {
            return Err(bad(
                "data offsets beyond the end of the file (the file may be truncated)",
            ));
        }
        // Both at most `data_len`, a `usize`.
        let (begin, end) = (offsets.0 as usize, offsets.1 as usize);
        let elements = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| bad("a shape too large"))?;
        if let Some(width) = dtype_width(&dtype)
            && elements.checked_mul(width) != Some(end - begin)
        {
            return Err(bad(&format!(
                "{} data bytes, but its shape {shape:?} of {dtype} needs {}",
                end - begin,
                elements.saturating_mul(width)
            )));
        }
        Ok(Self {
            name: name.to_string(),
            dtype,
            shape,
            offset: start + begin,
        })
    }
}

/// Bytes per element of the dtypes a network can hold (others are only compared by name).
fn dtype_width(dtype: &str) -> Option<usize> {
    match dtype {
        "F32" => Some(4),
        "F64" | "I64" => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of `header` (JSON) and `data` bytes.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn valid() -> Vec<u8> {
        file(
            r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"n":{"dtype":"I64","shape":[],"data_offsets":[32,40]}}"#,
            &[0; 40],
        )
    }

    #[test]
    fn a_valid_header_gives_every_tensor_and_where_its_data_starts() {
        let bytes = valid();
        let header = Header::parse(&bytes).unwrap();
        let start = bytes.len() - 40;
        let names: Vec<(&str, usize)> = header
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.offset - start))
            .collect();
        assert_eq!(names, [("w", 0), ("b", 24), ("n", 32)]);
        let n = header.find("n").unwrap();
        assert_eq!((n.dtype.as_str(), n.shape.as_slice()), ("I64", &[][..]));
        assert_eq!(header.find("w").unwrap().shape, [2, 3]);
        assert!(header.find("x").is_none());
    }

    fn reason(bytes: &[u8]) -> String {
        Header::parse(bytes).err().expect("should be corrupt")
    }

    #[test]
    fn corrupt_files_are_errors_that_say_why() {
        assert!(reason(&[1, 2, 3]).contains("shorter than"));
        assert!(reason(&u64::MAX.to_le_bytes()).contains("past the end"));
        assert!(reason(&file("{not json", &[])).contains("not JSON"));
        assert!(reason(&file("[1]", &[])).contains("not a JSON object"));
        let beyond = file(
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            &[0; 4],
        );
        assert!(reason(&beyond).contains("beyond the end"));
        let short = file(
            r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            &[0; 8],
        );
        assert!(reason(&short).contains("needs 12"), "{}", reason(&short));
        let huge = file(
            r#"{"w":{"dtype":"F32","shape":[18446744073709551615,4],"data_offsets":[0,8]}}"#,
            &[0; 8],
        );
        assert!(reason(&huge).contains("too large"), "{}", reason(&huge));
        let top = file(
            r#"{"w":{"dtype":"U8","shape":[8],"data_offsets":[18446744073709551615,8]}}"#,
            &[0; 8],
        );
        assert!(reason(&top).contains("beyond the end"));
    }

    /// Every truncation and every single-byte change of a valid file parses or is an error:
    /// never a panic (which in a macro would be the user's compile error "proc macro panicked").
    #[test]
    fn no_truncation_or_flipped_byte_panics() {
        let bytes = valid();
        for end in 0..bytes.len() {
            let _ = Header::parse(&bytes[..end]);
        }
        for at in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[at] ^= flip;
                let _ = Header::parse(&changed);
            }
        }
    }

    #[test]
    fn the_attribute_takes_either_form_once() {
        let parse = |tokens: proc_macro2::TokenStream| {
            let mut attrs = syn::parse::Parser::parse2(Attribute::parse_outer, tokens).unwrap();
            let mut errors = Errors::default();
            let found = take_attribute(&mut attrs, &mut errors);
            (found.map(|l| l.value()), attrs.len(), errors.is_empty())
        };
        assert_eq!(
            parse(quote::quote!(#[doc = "x"] #[weights("a.safetensors")])),
            (Some("a.safetensors".into()), 1, true)
        );
        assert_eq!(
            parse(quote::quote!(#[weights = "b.safetensors"])),
            (Some("b.safetensors".into()), 0, true)
        );
        assert_eq!(parse(quote::quote!(#[weights(1)])), (None, 0, false));
        assert_eq!(parse(quote::quote!(#[weights])), (None, 0, false));
        let (found, _, ok) = parse(quote::quote!(#[weights("a")] #[weights("b")]));
        assert_eq!((found.as_deref(), ok), (Some("a"), false));
    }
}
