//! A safetensors reader that allocates nothing: the file's bytes are its only storage.
//!
//! A file is an 8-byte little-endian header length, a JSON header, and the tensors' data. The
//! header maps each tensor's name to `{"dtype": "F32", "shape": [2, 3], "data_offsets":
//! [start, end]}` (offsets into the data), beside an optional `"__metadata__"` object of
//! strings. [`File::parse`] checks what the `safetensors` crate's `SafeTensors::deserialize`
//! checks, and accepts what it accepts, except for these deliberate differences:
//!
//! - a name given to two tensors is an error here; the crate keeps the last one silently;
//! - offsets whose sum passes `usize::MAX` are an error here; the crate's own sum overflows
//!   (a panic in a debug build, a wrapped sum in a release one);
//! - `serde_json` may round a float literal within one unit in the last place of `f64::MAX`
//!   differently (such a number only matters in a field nobody reads).
//!
//! The checks of one tensor at a time (JSON, dtype, shape, offsets within the data, byte
//! length agreeing with the shape) take one pass over the header: [`File::parse_entries`].
//! Those between tensors (distinct names, data that tile the buffer without a gap or an
//! overlap) compare every pair, with nowhere to sort them: [`File::check_layout`], a pass over
//! the header per tensor. A header is read again for each look-up by name.

use super::error::Dtype;
use super::json::{self, Cursor, JsonStr, MAX_DEPTH};

/// The longest header the `safetensors` crate reads.
const MAX_HEADER: usize = 100_000_000;

pub(super) const TOO_SHORT: &str = "the file is shorter than the 8 bytes of its header length";
pub(super) const HEADER_TOO_LARGE: &str = "the header length is over 100,000,000 bytes";
pub(super) const HEADER_PAST_END: &str =
    "the header length runs past the end of the file; the file may be truncated";
pub(super) const NOT_UTF8: &str = "the header is not valid UTF-8";
pub(super) const NOT_AN_OBJECT: &str = "the header is not a JSON object";
pub(super) const TRAILING: &str = "the header has characters after its JSON object";
pub(super) const BAD_METADATA: &str = "`__metadata__` is not an object of strings";
pub(super) const METADATA_TWICE: &str = "the header has `__metadata__` twice";
pub(super) const BAD_ENTRY: &str =
    "a tensor's entry is not an object of `dtype`, `shape` and `data_offsets`";
pub(super) const FIELD_TWICE: &str = "a tensor's entry has a field twice";
pub(super) const FIELD_MISSING: &str = "a tensor's entry lacks `dtype`, `shape` or `data_offsets`";
pub(super) const UNKNOWN_DTYPE: &str = "a tensor's dtype is not one the format defines";
pub(super) const BAD_SHAPE: &str = "a tensor's shape is not a list of non-negative integers";
pub(super) const BAD_OFFSETS: &str = "a tensor's data_offsets are not two non-negative integers";
pub(super) const OVERFLOW: &str = "a tensor's shape is too large: its byte length overflows";
pub(super) const MISALIGNED: &str = "a tensor of a sub-byte dtype does not end on a whole byte";
pub(super) const BACKWARDS: &str = "a tensor's data_offsets end before they start";
pub(super) const WRONG_LENGTH: &str =
    "a tensor's data_offsets span a byte length other than its shape and dtype give";
pub(super) const PAST_END: &str =
    "a tensor's data_offsets lie beyond the end of the file; the file may be truncated";
pub(super) const GAP: &str = "the tensors' data leave a gap in the data buffer";
pub(super) const OVERLAP: &str = "two tensors' data overlap";
pub(super) const DUPLICATE: &str = "two tensors have the same name";

/// A safetensors file whose every tensor entry is checked: the header, and the data that the
/// offsets index.
#[derive(Clone, Copy, Debug)]
pub(super) struct File<'a> {
    header: &'a [u8],
    data: &'a [u8],
    len: usize,
}

/// One tensor of a [`File`], as its header describes it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry<'a> {
    /// Its name, still escaped.
    pub name: JsonStr<'a>,
    /// Its dtype.
    pub dtype: Dtype,
    /// Its shape, as the JSON list in the header (checked).
    pub shape: Axes<'a>,
    /// Its data.
    pub data: &'a [u8],
    start: usize,
    end: usize,
}

impl<'a> File<'a> {
    /// The file in `bytes`, entirely checked: [`parse_entries`](File::parse_entries) then
    /// [`check_layout`](File::check_layout).
    #[cfg(test)]
    pub(super) fn parse(bytes: &'a [u8]) -> Result<File<'a>, &'static str> {
        let file = File::parse_entries(bytes)?;
        file.check_layout()?;
        Ok(file)
    }

    /// The file in `bytes`, each tensor's entry checked on its own, in one pass: everything
    /// but the checks between tensors of [`check_layout`](File::check_layout).
    pub(super) fn parse_entries(bytes: &'a [u8]) -> Result<File<'a>, &'static str> {
        let length = bytes.get(..8).ok_or(TOO_SHORT)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(length);
        let header_len = usize::try_from(u64::from_le_bytes(le))
            .ok()
            .filter(|&n| n <= MAX_HEADER)
            .ok_or(HEADER_TOO_LARGE)?;
        let header = bytes.get(8..8 + header_len).ok_or(HEADER_PAST_END)?;
        core::str::from_utf8(header).map_err(|_| NOT_UTF8)?;
        let mut file = File {
            header,
            data: &bytes[8 + header_len..],
            len: 0,
        };
        let mut total = 0usize;
        let mut metadata = false;
        let mut cursor = Cursor::new(header);
        if !cursor.eat(b'{') {
            // An empty header is no JSON at all; anything else but an object is the wrong type.
            return Err(if cursor.at_end() {
                json::EXPECTED_VALUE
            } else {
                NOT_AN_OBJECT
            });
        }
        if !cursor.eat(b'}') {
            loop {
                let key = cursor.key()?;
                if key.is("__metadata__") {
                    if metadata {
                        return Err(METADATA_TWICE);
                    }
                    metadata = true;
                    read_metadata(&mut cursor)?;
                } else {
                    let entry = file.entry(key, &mut cursor)?;
                    total = total.checked_add(entry.end - entry.start).ok_or(OVERLAP)?;
                    file.len += 1;
                }
                if cursor.eat(b'}') {
                    break;
                }
                cursor.expect(b',', json::EXPECTED_COMMA)?;
            }
        }
        if !cursor.at_end() {
            return Err(TRAILING);
        }
        // The data's bytes are those the tensors span, once each, or some overlap or are
        // missing; which, `check_layout` tells apart when the sum agrees but the layout does
        // not.
        match total.cmp(&file.data.len()) {
            core::cmp::Ordering::Less => Err(GAP),
            core::cmp::Ordering::Greater => Err(OVERLAP),
            core::cmp::Ordering::Equal => Ok(file),
        }
    }

    /// The number of tensors.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The tensors, in the header's order (the header was checked: each reads again as it did).
    pub(super) fn entries(&self) -> Entries<'a> {
        let mut cursor = Cursor::new(self.header);
        cursor.eat(b'{');
        Entries {
            file: *self,
            cursor,
            done: false,
        }
    }

    /// The tensor called `name`, the first if the header has it twice.
    pub(super) fn find(&self, name: &str) -> Option<Entry<'a>> {
        self.entries().find(|entry| entry.name.is(name))
    }

    /// The checks between tensors: no name twice, and data that tile the buffer in order, as
    /// the `safetensors` crate's sorted walk requires: every non-empty tensor starts at 0 or
    /// where another ends, no two start at the same offset, and each empty one sits at 0 or
    /// where a non-empty one ends. With [`parse_entries`](File::parse_entries)' check that the
    /// spans add up to the data's length, that is an exact tiling (following the ends from
    /// offset 0 reaches every tensor once). Compares every pair: a pass over the header per
    /// tensor.
    pub(super) fn check_layout(&self) -> Result<(), &'static str> {
        for (i, a) in self.entries().enumerate() {
            let mut follows = a.start == 0;
            for (j, b) in self.entries().enumerate() {
                if j == i {
                    continue;
                }
                if j > i && a.name.same(b.name) {
                    return Err(DUPLICATE);
                }
                if b.start == b.end {
                    continue;
                }
                follows |= b.end == a.start;
                let same_start = a.start != a.end && b.start == a.start;
                if same_start || (b.start < a.start && a.start < b.end) {
                    return Err(OVERLAP);
                }
            }
            if !follows {
                return Err(GAP);
            }
        }
        Ok(())
    }

    /// The entry of the tensor `name` at `cursor` (on its value), checked on its own.
    fn entry(&self, name: JsonStr<'a>, cursor: &mut Cursor<'a>) -> Result<Entry<'a>, &'static str> {
        let (dtype, shape, (start, end)) = if cursor.eat(b'[') {
            // serde reads a struct from a list of its fields in order, too.
            let dtype = read_dtype(cursor)?;
            cursor.expect(b',', BAD_ENTRY)?;
            let shape = Axes::read(cursor)?;
            cursor.expect(b',', BAD_ENTRY)?;
            let offsets = read_offsets(cursor)?;
            cursor.expect(b']', BAD_ENTRY)?;
            (dtype, shape, offsets)
        } else if cursor.eat(b'{') {
            read_fields(cursor)?
        } else {
            return Err(BAD_ENTRY);
        };
        let bits = shape
            .iter()
            .try_fold(1usize, usize::checked_mul)
            .and_then(|count| count.checked_mul(dtype.bits()))
            .ok_or(OVERFLOW)?;
        if bits % 8 != 0 {
            return Err(MISALIGNED);
        }
        let span = end.checked_sub(start).ok_or(BACKWARDS)?;
        if span != bits / 8 {
            return Err(WRONG_LENGTH);
        }
        let data = self.data.get(start..end).ok_or(PAST_END)?;
        Ok(Entry {
            name,
            dtype,
            shape,
            data,
            start,
            end,
        })
    }
}

/// The fields of a tensor's entry, the cursor past its `{`: each once, others skipped.
fn read_fields<'a>(
    cursor: &mut Cursor<'a>,
) -> Result<(Dtype, Axes<'a>, (usize, usize)), &'static str> {
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    if !cursor.eat(b'}') {
        loop {
            let key = cursor.key()?;
            if key.is("dtype") {
                once(&mut dtype, read_dtype(cursor)?)?;
            } else if key.is("shape") {
                once(&mut shape, Axes::read(cursor)?)?;
            } else if key.is("data_offsets") {
                once(&mut offsets, read_offsets(cursor)?)?;
            } else {
                // Depth 2: inside the header's object and the entry's.
                cursor.skip_value(2)?;
            }
            if cursor.eat(b'}') {
                break;
            }
            cursor.expect(b',', json::EXPECTED_COMMA)?;
        }
    }
    match (dtype, shape, offsets) {
        (Some(dtype), Some(shape), Some(offsets)) => Ok((dtype, shape, offsets)),
        _ => Err(FIELD_MISSING),
    }
}

/// Sets a field seen for the first time.
fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), &'static str> {
    if slot.replace(value).is_some() {
        Err(FIELD_TWICE)
    } else {
        Ok(())
    }
}

/// A dtype: its name as a string, or, as serde reads an enum, an object of one key, the name,
/// whose value is `null`.
fn read_dtype(cursor: &mut Cursor<'_>) -> Result<Dtype, &'static str> {
    let by_name = |name: JsonStr<'_>| Dtype::from_name(|known| name.is(known)).ok_or(UNKNOWN_DTYPE);
    match cursor.peek() {
        Some(b'"') => by_name(cursor.string()?),
        Some(b'{') => {
            cursor.eat(b'{');
            let dtype = by_name(cursor.key()?)?;
            if cursor.peek() != Some(b'n') {
                return Err(UNKNOWN_DTYPE);
            }
            cursor.skip_value(MAX_DEPTH - 1)?;
            cursor.expect(b'}', UNKNOWN_DTYPE)?;
            Ok(dtype)
        }
        _ => Err(UNKNOWN_DTYPE),
    }
}

/// `data_offsets`: a list of exactly two integers.
fn read_offsets(cursor: &mut Cursor<'_>) -> Result<(usize, usize), &'static str> {
    cursor.expect(b'[', BAD_OFFSETS)?;
    let start = cursor.usize(BAD_OFFSETS)?;
    cursor.expect(b',', BAD_OFFSETS)?;
    let end = cursor.usize(BAD_OFFSETS)?;
    cursor.expect(b']', BAD_OFFSETS)?;
    Ok((start, end))
}

/// `__metadata__`: `null`, or an object whose values are strings (a key twice is fine: serde
/// keeps the last).
fn read_metadata(cursor: &mut Cursor<'_>) -> Result<(), &'static str> {
    if cursor.peek() == Some(b'n') {
        return cursor.skip_value(MAX_DEPTH - 1);
    }
    cursor.expect(b'{', BAD_METADATA)?;
    if cursor.eat(b'}') {
        return Ok(());
    }
    loop {
        cursor.key()?;
        if cursor.peek() != Some(b'"') {
            return Err(BAD_METADATA);
        }
        cursor.string()?;
        if cursor.eat(b'}') {
            return Ok(());
        }
        cursor.expect(b',', json::EXPECTED_COMMA)?;
    }
}

/// The tensors of a [`File`], read from its header on the go.
pub(super) struct Entries<'a> {
    file: File<'a>,
    cursor: Cursor<'a>,
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        while !self.done {
            // The header was checked, so no step fails; should one, the walk ends.
            let Ok(key) = self.cursor.key() else {
                self.done = true;
                break;
            };
            let entry = if key.is("__metadata__") {
                read_metadata(&mut self.cursor).ok().map(|()| None)
            } else {
                self.file.entry(key, &mut self.cursor).ok().map(Some)
            };
            self.done = entry.is_none() || !self.cursor.eat(b',');
            if let Some(Some(entry)) = entry {
                return Some(entry);
            }
        }
        None
    }
}

/// A tensor's shape as its JSON list in the header, checked: its axes are read on demand.
#[derive(Clone, Copy, Debug)]
pub(super) struct Axes<'a> {
    list: Cursor<'a>,
}

impl<'a> Axes<'a> {
    /// The list at `cursor`, checked, the cursor moved past it.
    fn read(cursor: &mut Cursor<'a>) -> Result<Axes<'a>, &'static str> {
        cursor.expect(b'[', BAD_SHAPE)?;
        let axes = Axes { list: *cursor };
        if !cursor.eat(b']') {
            loop {
                cursor.usize(BAD_SHAPE)?;
                if cursor.eat(b']') {
                    break;
                }
                cursor.expect(b',', BAD_SHAPE)?;
            }
        }
        Ok(axes)
    }

    /// The axes, in order.
    pub(super) fn iter(self) -> AxesIter<'a> {
        AxesIter {
            list: self.list,
            done: false,
        }
    }

    /// Whether the shape is `axes`.
    pub(super) fn is(self, axes: &[usize]) -> bool {
        self.iter().eq(axes.iter().copied())
    }
}

/// The axes of an [`Axes`].
pub(super) struct AxesIter<'a> {
    list: Cursor<'a>,
    done: bool,
}

impl Iterator for AxesIter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.done || self.list.eat(b']') {
            self.done = true;
            return None;
        }
        let axis = self.list.usize(BAD_SHAPE).ok();
        self.done = axis.is_none() || !self.list.eat(b',');
        axis
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;
