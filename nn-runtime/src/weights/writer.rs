//! A safetensors writer that allocates nothing: the file is written into the caller's buffer.
//!
//! The header is written twice, once to measure it and once for real, by the same code, so
//! the two cannot disagree. Tensors are laid out in the network's order, then its counts, each
//! right after the one before, and the header is padded with spaces to a multiple of 8 bytes,
//! as the `safetensors` crate pads it.

use super::{Dtype, Error, dtype_of, row_major_index};
use crate::net::Network;
use crate::real::Real;
use core::fmt::{self, Write};

/// Where the file goes: bytes past the end of the buffer are counted, not written, so a
/// buffer of length 0 measures.
struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Out<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        if let Some(slot) = self.buf.get_mut(self.at..end) {
            slot.copy_from_slice(bytes);
        }
        self.at = end;
    }

    /// `text` as the inside of a JSON string: quotes, backslashes and control characters
    /// escaped.
    fn escaped(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '"' => self.bytes(b"\\\""),
                '\\' => self.bytes(b"\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self, "\\u{:04x}", c as u32);
                }
                c => self.bytes(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }
}

impl Write for Out<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.bytes(text.as_bytes());
        Ok(())
    }
}

/// The header's JSON (unpadded) into `out`; returns the data's length.
fn header<N: Network>(net: &N, out: &mut Out<'_>) -> usize {
    let dtype = dtype_of::<N::Scalar>();
    let width = dtype.bits() / 8;
    let mut offset = 0usize;
    let mut first = true;
    let mut entry = |out: &mut Out<'_>, name: &str, dtype: Dtype, shape: &[usize], len: usize| {
        out.bytes(if first { b"{\"" } else { b",\"" });
        first = false;
        out.escaped(name);
        let _ = write!(out, "\":{{\"dtype\":\"{dtype}\",\"shape\":[");
        for (i, axis) in shape.iter().enumerate() {
            let _ = write!(out, "{}{axis}", if i == 0 { "" } else { "," });
        }
        let _ = write!(out, "],\"data_offsets\":[{offset},{}]}}", offset + len);
        offset += len;
    };
    net.visit("", &mut |name, shape, data| {
        entry(out, name, dtype, shape, data.len() * width)
    });
    net.visit_counts("", &mut |name, _| entry(out, name, Dtype::I64, &[], 8));
    out.bytes(if first { b"{}" } else { b"}" });
    offset
}

/// The length of the header, padded, and of the data.
fn lengths<N: Network>(net: &N) -> (usize, usize) {
    let mut measure = Out {
        buf: &mut [],
        at: 0,
    };
    let data = header(net, &mut measure);
    (measure.at.next_multiple_of(8), data)
}

/// The length in bytes of the safetensors file of `net` that [`write_safetensors_into`]
/// writes: the size of the buffer to give it.
pub fn safetensors_len<N: Network>(net: &N) -> usize {
    let (header, data) = lengths(net);
    8 + header + data
}

/// Writes the network's tensors as a safetensors file into `buf`, allocating nothing; returns
/// the file's length, [`safetensors_len`], which `buf` must have at least.
///
/// The file holds what [`to_safetensors_bytes`](super::to_safetensors_bytes) writes (the
/// same names, dtypes, shapes and row-major data), in the network's order rather than sorted
/// by name: any safetensors reader, torch's included, finds tensors by name.
///
/// ```
/// use nn_runtime::prelude::*;
/// use nn_runtime::weights;
///
/// network! { pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) } }
///
/// let net = Xor::seeded(42);
/// let mut buf = [0u8; 512];
/// let len = weights::write_safetensors_into(&net, &mut buf)?;
/// assert_eq!(len, weights::safetensors_len(&net));
/// assert_eq!(Xor::from_safetensors_bytes(&buf[..len])?, net);
///
/// let err = weights::write_safetensors_into(&net, &mut buf[..100]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     format!("a buffer of 100 bytes cannot hold the {len} bytes of the file")
/// );
/// # Ok::<(), weights::Error>(())
/// ```
pub fn write_safetensors_into<N: Network>(net: &N, buf: &mut [u8]) -> Result<usize, Error> {
    let (header_len, data_len) = lengths(net);
    let len = 8 + header_len + data_len;
    if buf.len() < len {
        return Err(Error::BufferTooSmall {
            needed: len,
            given: buf.len(),
        });
    }
    let (prefix, rest) = buf.split_at_mut(8);
    prefix.copy_from_slice(&(header_len as u64).to_le_bytes());
    let (head, rest) = rest.split_at_mut(header_len);
    let mut out = Out {
        buf: &mut *head,
        at: 0,
    };
    header(net, &mut out);
    let written = out.at.min(header_len);
    head[written..].fill(b' ');
    write_data(net, &mut rest[..data_len]);
    Ok(len)
}

/// The tensors' data, row-major little-endian, then the counts', one after the other.
fn write_data<N: Network>(net: &N, data: &mut [u8]) {
    let width = dtype_of::<N::Scalar>().bits() / 8;
    let mut offset = 0;
    net.visit("", &mut |_, shape, values| {
        for (i, &value) in values.iter().enumerate() {
            let at = offset + row_major_index(shape, i) * width;
            if let Some(slot) = data.get_mut(at..at + width) {
                put(slot, value);
            }
        }
        offset += values.len() * width;
    });
    net.visit_counts("", &mut |_, value| {
        if let Some(slot) = data.get_mut(offset..offset + 8) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        offset += 8;
    });
}

/// `value` as 4 or 8 little-endian bytes, as wide as `slot`.
fn put<T: Real>(slot: &mut [u8], value: T) {
    if slot.len() == 4 {
        slot.copy_from_slice(&(value.widen() as f32).to_le_bytes());
    } else {
        slot.copy_from_slice(&value.widen().to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::json::Cursor;

    #[test]
    fn names_are_escaped_as_json_strings() {
        let name = "q\"uote\\back\nnew\u{1}é😀";
        let mut buf = [0u8; 64];
        let mut out = Out {
            buf: &mut buf,
            at: 0,
        };
        out.bytes(b"\"");
        out.escaped(name);
        out.bytes(b"\"");
        let len = out.at;
        assert_eq!(
            &buf[..len],
            "\"q\\\"uote\\\\back\\u000anew\\u0001é😀\"".as_bytes()
        );
        let read = Cursor::new(&buf[..len]).string().unwrap();
        assert!(read.is(name));
    }

    #[test]
    fn bytes_past_the_buffer_are_counted_not_written() {
        let mut buf = [0u8; 4];
        let mut out = Out {
            buf: &mut buf,
            at: 0,
        };
        out.bytes(b"abc");
        out.bytes(b"def");
        assert_eq!(out.at, 6);
        assert_eq!(&buf, b"abc\0");
    }
}
