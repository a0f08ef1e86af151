//! What a failed load says, held without the heap: a tensor's [`Name`] inline, a [`Shape`] of
//! fixed capacity, a [`Dtype`] as an enum, and a corrupt file's reason as a `&'static str`, so
//! an [`Error`] can be built, returned and printed where there is no allocator.

use core::fmt;
use core::ops::Deref;

/// Why weights could not be saved or loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    #[cfg(feature = "std")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file (empty, truncated, or not safetensors).
    Corrupt {
        /// What is wrong with the file, in words.
        reason: &'static str,
    },
    /// The network has a tensor that the file lacks.
    MissingTensor {
        /// The tensor's `state_dict` name.
        name: Name,
    },
    /// The file has a tensor that the network lacks.
    UnexpectedTensor {
        /// The tensor's name in the file.
        name: Name,
    },
    /// A tensor's shape in the file differs from the network's.
    WrongShape {
        /// The tensor's `state_dict` name.
        name: Name,
        /// The network's shape, as PyTorch states it (`[out, in]`, `[out, in, k]`, `[out]`, or
        /// `[]` for an integer count).
        expected: Shape,
        /// The shape in the file.
        found: Shape,
    },
    /// A tensor's dtype in the file differs from the network's scalar type.
    WrongDtype {
        /// The tensor's `state_dict` name.
        name: Name,
        /// The network's dtype: `F32` or `F64`, or `I64` for an integer count.
        expected: Dtype,
        /// The dtype in the file (`F64`, `BF16`, ...).
        found: Dtype,
    },
    /// The buffer given to [`write_safetensors_into`](super::write_safetensors_into) is
    /// shorter than the file.
    BufferTooSmall {
        /// The file's length in bytes.
        needed: usize,
        /// The buffer's.
        given: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "std")]
            Error::Io { path, source } => write!(f, "cannot access `{}`: {source}", path.display()),
            Error::Corrupt { reason } => write!(f, "not a valid safetensors file: {reason}"),
            Error::MissingTensor { name } => {
                write!(f, "tensor `{name}` is missing from the file")
            }
            Error::UnexpectedTensor { name } => write!(
                f,
                "the file has a tensor `{name}` that the network does not have"
            ),
            Error::WrongShape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?} in the file, but the network expects \
                 {expected:?}"
            ),
            Error::WrongDtype {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has dtype {found} in the file, but the network expects {expected}"
            ),
            Error::BufferTooSmall { needed, given } => write!(
                f,
                "a buffer of {given} bytes cannot hold the {needed} bytes of the file"
            ),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            #[cfg(feature = "std")]
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A tensor's name, held inline (no heap): up to [`Name::CAPACITY`] bytes of UTF-8. A longer
/// name keeps its beginning, cut at a character boundary, and ends in `…`.
///
/// Reads as a `str` (`Deref`), prints as one, and compares with one:
///
/// ```
/// use nn_runtime::weights::Name;
///
/// let name = Name::new("2.weight");
/// assert_eq!(name, "2.weight");
/// assert_eq!(name.len(), 8);
/// let long = Name::new(&"é".repeat(100)); // 200 bytes
/// assert!(long.ends_with('…') && long.len() <= Name::CAPACITY);
/// assert!(long.starts_with(&"é".repeat(62)));
/// ```
#[derive(Clone, Copy)]
pub struct Name {
    bytes: [u8; Name::CAPACITY],
    len: u8,
}

impl Name {
    /// The most bytes a name holds; longer ones are cut.
    pub const CAPACITY: usize = 128;

    /// The name `text`, cut to [`CAPACITY`](Name::CAPACITY) bytes if longer.
    pub fn new(text: &str) -> Name {
        Name::from_chars(text.chars())
    }

    /// The name made of `chars`, cut as [`new`](Name::new) cuts it: for a name decoded on the
    /// fly from a file.
    pub(crate) fn from_chars(chars: impl IntoIterator<Item = char>) -> Name {
        let mut name = Name {
            bytes: [0; Name::CAPACITY],
            len: 0,
        };
        for c in chars {
            if !name.push(c) {
                name.cut();
                break;
            }
        }
        name
    }

    /// Appends `c` if it fits.
    fn push(&mut self, c: char) -> bool {
        let len = usize::from(self.len);
        let Some(slot) = self.bytes.get_mut(len..len + c.len_utf8()) else {
            return false;
        };
        c.encode_utf8(slot);
        self.len += c.len_utf8() as u8;
        true
    }

    /// Ends a name that did not fit in `…`: drops characters until the ellipsis fits.
    fn cut(&mut self) {
        const ELLIPSIS: char = '…';
        let room = Name::CAPACITY - ELLIPSIS.len_utf8();
        let mut end = usize::from(self.len).min(room);
        while !self.as_str().is_char_boundary(end) {
            end -= 1;
        }
        self.len = end as u8;
        self.push(ELLIPSIS);
    }

    /// The name as a `str`.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever written, so the bytes are UTF-8; the fallback is
        // never taken.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

/// A tensor's shape, held inline (no heap): up to [`Shape::MAX_RANK`] axes. A shape of more
/// axes (only ever in a file) keeps its rank and its first `MAX_RANK` axes.
///
/// Prints as a list (`[8, 2]`) and compares with slices and arrays:
///
/// ```
/// use nn_runtime::weights::Shape;
///
/// let shape = Shape::new(&[8, 2]);
/// assert_eq!(shape, [8, 2]);
/// assert_eq!(format!("{shape:?}"), "[8, 2]");
/// assert_eq!(shape.rank(), 2);
/// assert_eq!(&shape[..], &[8, 2]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    axes: [usize; Shape::MAX_RANK],
    rank: usize,
}

impl Shape {
    /// The most axes a shape holds (a 2-D convolution's weight has 4).
    pub const MAX_RANK: usize = 8;

    /// The shape of axes `axes` (the first [`MAX_RANK`](Shape::MAX_RANK) of them kept).
    pub fn new(axes: &[usize]) -> Shape {
        Shape::from_axes(axes.iter().copied())
    }

    /// The shape of axes `axes`, counted to the end and kept up to `MAX_RANK`.
    pub(crate) fn from_axes(axes: impl IntoIterator<Item = usize>) -> Shape {
        let mut shape = Shape {
            axes: [0; Shape::MAX_RANK],
            rank: 0,
        };
        for axis in axes {
            if let Some(slot) = shape.axes.get_mut(shape.rank) {
                *slot = axis;
            }
            shape.rank += 1;
        }
        shape
    }

    /// The number of axes, including any beyond `MAX_RANK`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The axes kept: all of them unless the rank is over `MAX_RANK`.
    pub fn as_slice(&self) -> &[usize] {
        &self.axes[..self.rank.min(Shape::MAX_RANK)]
    }
}

impl Deref for Shape {
    type Target = [usize];

    fn deref(&self) -> &[usize] {
        self.as_slice()
    }
}

impl fmt::Debug for Shape {
    /// `[8, 2]`, as a `Vec<usize>` prints; a shape cut at `MAX_RANK` axes ends in `..` and its
    /// rank.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rank <= Shape::MAX_RANK {
            return fmt::Debug::fmt(self.as_slice(), f);
        }
        f.write_str("[")?;
        for axis in self.as_slice() {
            write!(f, "{axis}, ")?;
        }
        write!(f, ".. ({} axes)]", self.rank)
    }
}

impl PartialEq<[usize]> for Shape {
    fn eq(&self, other: &[usize]) -> bool {
        self.rank == other.len() && self.as_slice() == other
    }
}

impl PartialEq<&[usize]> for Shape {
    fn eq(&self, other: &&[usize]) -> bool {
        *self == **other
    }
}

impl<const N: usize> PartialEq<[usize; N]> for Shape {
    fn eq(&self, other: &[usize; N]) -> bool {
        *self == other[..]
    }
}

macro_rules! dtypes {
    ($($(#[$doc:meta])* $name:ident = $bits:literal,)*) => {
        /// A safetensors dtype, spelled as the format spells it (`F32`, `BF16`, `F8_E4M3`, ...).
        ///
        /// Prints as its name, and compares with one: `Dtype::F32 == "F32"`.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Dtype {
            $($(#[$doc])* $name,)*
        }

        impl Dtype {
            /// Every dtype the safetensors format defines.
            const ALL: &[Dtype] = &[$(Dtype::$name,)*];

            /// The dtype's name in a safetensors header.
            pub fn name(self) -> &'static str {
                match self {
                    $(Dtype::$name => stringify!($name),)*
                }
            }

            /// The size of one element in bits (4 for `F4`, 6 for `F6_E2M3`, 32 for `F32`).
            pub fn bits(self) -> usize {
                match self {
                    $(Dtype::$name => $bits,)*
                }
            }
        }
    };
}

dtypes! {
    /// Boolean, one byte.
    BOOL = 8,
    /// MXF4 (4 bits).
    F4 = 4,
    /// MXF6, 2 exponent and 3 mantissa bits.
    F6_E2M3 = 6,
    /// MXF6, 3 exponent and 2 mantissa bits.
    F6_E3M2 = 6,
    /// Unsigned byte.
    U8 = 8,
    /// Signed byte.
    I8 = 8,
    /// FP8, 5 exponent and 2 mantissa bits.
    F8_E5M2 = 8,
    /// FP8, 4 exponent and 3 mantissa bits.
    F8_E4M3 = 8,
    /// FP8, 8 exponent bits (a scale).
    F8_E8M0 = 8,
    /// FP8 E4M3, finite with no negative zero.
    F8_E4M3FNUZ = 8,
    /// FP8 E5M2, finite with no negative zero.
    F8_E5M2FNUZ = 8,
    /// Signed 16-bit integer.
    I16 = 16,
    /// Unsigned 16-bit integer.
    U16 = 16,
    /// IEEE half precision.
    F16 = 16,
    /// Brain floating point.
    BF16 = 16,
    /// Signed 32-bit integer.
    I32 = 32,
    /// Unsigned 32-bit integer.
    U32 = 32,
    /// IEEE single precision.
    F32 = 32,
    /// Complex of two `F32` parts.
    C64 = 64,
    /// IEEE double precision.
    F64 = 64,
    /// Signed 64-bit integer.
    I64 = 64,
    /// Unsigned 64-bit integer.
    U64 = 64,
}

impl Dtype {
    /// The dtype called `name` in a header, if the format defines one.
    pub(crate) fn from_name(name: impl Fn(&str) -> bool) -> Option<Dtype> {
        Dtype::ALL.iter().copied().find(|dtype| name(dtype.name()))
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl PartialEq<str> for Dtype {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for Dtype {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_at_a_character_boundary_with_an_ellipsis() {
        let exact = "a".repeat(Name::CAPACITY);
        assert_eq!(Name::new(&exact), exact.as_str());
        let long = Name::new(&"a".repeat(Name::CAPACITY + 1));
        assert_eq!(long.len(), Name::CAPACITY);
        assert_eq!(&*long, format!("{}…", "a".repeat(Name::CAPACITY - 3)));
        // Four-byte characters: 125 bytes of room hold 31 of them.
        let wide = Name::new(&"😀".repeat(40));
        assert_eq!(&*wide, format!("{}…", "😀".repeat(31)));
        assert_eq!(format!("{:?}", Name::new("0.weight")), "\"0.weight\"");
    }

    #[test]
    fn shapes_print_like_vectors() {
        for axes in [&[][..], &[3], &[8, 2], &[1, 2, 3, 4, 5, 6, 7, 8]] {
            assert_eq!(
                format!("{:?}", Shape::new(axes)),
                format!("{:?}", axes.to_vec())
            );
            assert_eq!(Shape::new(axes), *axes);
        }
        let long = Shape::new(&[1; 10]);
        assert_eq!(long.rank(), 10);
        assert_ne!(long, [1; 8]);
        assert_eq!(
            format!("{long:?}"),
            "[1, 1, 1, 1, 1, 1, 1, 1, .. (10 axes)]"
        );
    }

    #[test]
    fn dtypes_by_name() {
        assert_eq!(Dtype::from_name(|n| n == "BF16"), Some(Dtype::BF16));
        assert_eq!(Dtype::from_name(|n| n == "bf16"), None);
        assert_eq!(Dtype::F8_E4M3FNUZ.to_string(), "F8_E4M3FNUZ");
        assert_eq!(Dtype::F6_E2M3.bits(), 6);
        assert!(Dtype::F32 == "F32");
    }
}
