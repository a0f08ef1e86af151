//! The spatial arithmetic of convolution and pooling, as torch defines it, checked at compile
//! time: `out = floor((in + 2 p - d (k - 1) - 1) / s) + 1` per axis, with each mistake (a kernel
//! larger than its padded input, `"same"` padding torch cannot split evenly) said in words.

use super::Value;

/// One argument of a spatial layer as written: a size per axis (one value for all), a word
/// (`"same"`), or left out.
#[derive(Clone, Debug, PartialEq)]
pub enum Written {
    /// Values as written.
    Values(Vec<usize>),
    /// A word, `"same"` or `"valid"`.
    Word(String),
    /// Left out.
    Absent,
}

impl Written {
    /// From a checked argument.
    pub fn of(value: Option<&Value>) -> Self {
        match value {
            Some(Value::Spatial(values, _)) => Written::Values(values.clone()),
            Some(Value::Str(word)) => Written::Word(word.clone()),
            _ => Written::Absent,
        }
    }

    /// One value per axis of `axes`: one written value serves every axis.
    pub fn per_axis(&self, name: &str, axes: usize) -> Result<Vec<usize>, String> {
        match self {
            Written::Values(v) if v.len() == 1 => Ok(vec![v[0]; axes]),
            Written::Values(v) if v.len() == axes => Ok(v.clone()),
            Written::Values(v) => Err(format!(
                "`{name}` has {} values; this layer has {axes} spatial axes",
                v.len()
            )),
            Written::Word(w) => Err(format!("`{name}` cannot be {w:?}")),
            Written::Absent => Err(format!("`{name}` is required")),
        }
    }
}

/// A layer's geometry on one input: per axis, the input size, padding, output size.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// The input's spatial sizes (`[h, w]` or `[l]`).
    pub input: Vec<usize>,
    /// The padding on each side, per axis.
    pub padding: Vec<usize>,
    /// The output's spatial sizes.
    pub output: Vec<usize>,
}

/// The output sizes of a kernel `kernel` with `stride`, `padding` and `dilation` over `input`,
/// or what is wrong. `what` names the layer for messages.
pub fn output_sizes(
    what: &str,
    input: &[usize],
    kernel: &[usize],
    stride: &[usize],
    padding: &[usize],
    dilation: &[usize],
) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for axis in 0..input.len() {
        let span = dilation[axis] * (kernel[axis] - 1) + 1;
        let padded = input[axis] + 2 * padding[axis];
        if span > padded {
            return Err(format!(
                "`{what}`'s kernel spans {span} along axis {axis} (kernel {}, dilation {}), more than the {padded} of its input padded ({} + 2 x {})",
                kernel[axis], dilation[axis], input[axis], padding[axis]
            ));
        }
        out.push((padded - span) / stride[axis] + 1);
    }
    Ok(out)
}

/// The padding per axis: as written, `"valid"` (none) or `"same"` (the output as large as the
/// input: stride 1, and torch's split, which this crate supports where it is even).
pub fn padding(
    what: &str,
    written: &Written,
    kernel: &[usize],
    stride: &[usize],
    dilation: &[usize],
) -> Result<Vec<usize>, String> {
    let axes = kernel.len();
    match written {
        Written::Word(w) if w == "valid" => Ok(vec![0; axes]),
        Written::Word(w) if w == "same" => {
            if stride.iter().any(|s| *s != 1) {
                return Err(format!(
                    "`{what}`: padding \"same\" needs stride 1, as torch's does"
                ));
            }
            (0..axes)
                .map(|a| {
                    let total = dilation[a] * (kernel[a] - 1);
                    if total % 2 == 1 {
                        Err(format!("`{what}`: padding \"same\" would pad {total} along axis {a}, unevenly (torch pads the extra one on one side); write the padding as numbers"))
                    } else {
                        Ok(total / 2)
                    }
                })
                .collect()
        }
        Written::Absent => Ok(vec![0; axes]),
        other => other.per_axis("padding", axes),
    }
}

/// `[a, b]` as `(a, b)`, `[a]` as `a`, for messages and docs.
pub fn tuple(values: &[usize]) -> String {
    match values {
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}
