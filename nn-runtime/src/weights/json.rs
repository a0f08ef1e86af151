//! A JSON scanner over the bytes of a safetensors header, allocating nothing.
//!
//! It accepts what `serde_json` accepts when the `safetensors` crate reads a header: RFC 8259
//! syntax, strings whose `\u` escapes pair their surrogates, at most [`MAX_DEPTH`] nested
//! arrays and objects, and numbers that are finite as `f64` (serde buffers the tensors' entries
//! as values, so an out-of-range number is an error even in a field nobody reads). Nesting is
//! tracked in a bit stack, not by recursion, so no input can exhaust the stack.
//!
//! Strings are kept as their raw bytes between the quotes ([`JsonStr`]) and decoded on the fly
//! when compared, so a name is matched against the network's without building a `String`.

use core::cmp::Ordering;

/// The deepest nesting `serde_json` reads (its recursion limit of 128, less the one level it
/// spends on the value it is asked for): the header's object counts as the first level.
pub(super) const MAX_DEPTH: usize = 127;

/// A scanner's failure: why the header is not JSON, in words.
pub(super) type Result<T> = core::result::Result<T, &'static str>;

pub(super) const UNTERMINATED_STRING: &str = "the header is not valid JSON: unterminated string";
pub(super) const BAD_ESCAPE: &str = "the header is not valid JSON: invalid escape in a string";
pub(super) const LONE_SURROGATE: &str =
    "the header is not valid JSON: a \\u escape is an unpaired UTF-16 surrogate";
pub(super) const CONTROL_CHARACTER: &str =
    "the header is not valid JSON: a control character inside a string";
pub(super) const EXPECTED_VALUE: &str = "the header is not valid JSON: expected a value";
pub(super) const EXPECTED_STRING: &str = "the header is not valid JSON: expected a string key";
pub(super) const EXPECTED_COLON: &str = "the header is not valid JSON: expected `:`";
pub(super) const EXPECTED_COMMA: &str =
    "the header is not valid JSON: expected `,` or the end of an array or object";
pub(super) const BAD_NUMBER: &str = "the header is not valid JSON: invalid number";
pub(super) const OUT_OF_RANGE: &str = "the header is not valid JSON: a number out of range";
pub(super) const TOO_DEEP: &str = "the header nests arrays and objects more than 127 deep";

/// A position in a header's bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return), as `serde_json` does.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.at).copied()
    }

    /// Consumes `byte` if it comes next (after whitespace).
    pub(super) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// Consumes `byte`, or fails with `reason`.
    pub(super) fn expect(&mut self, byte: u8, reason: &'static str) -> Result<()> {
        if self.eat(byte) { Ok(()) } else { Err(reason) }
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// An object's key and its colon.
    pub(super) fn key(&mut self) -> Result<JsonStr<'a>> {
        if self.peek() != Some(b'"') {
            return Err(EXPECTED_STRING);
        }
        let key = self.string()?;
        self.expect(b':', EXPECTED_COLON)?;
        Ok(key)
    }

    /// A string, checked: the cursor is on its opening quote (after whitespace).
    pub(super) fn string(&mut self) -> Result<JsonStr<'a>> {
        if !self.eat(b'"') {
            return Err(EXPECTED_STRING);
        }
        let start = self.at;
        loop {
            match *self.bytes.get(self.at).ok_or(UNTERMINATED_STRING)? {
                b'"' => break,
                b'\\' => {
                    self.at += 1;
                    self.escape()?;
                }
                0..=0x1f => return Err(CONTROL_CHARACTER),
                _ => self.at += 1,
            }
        }
        let raw = &self.bytes[start..self.at];
        self.at += 1;
        Ok(JsonStr { raw })
    }

    /// One escape, the cursor just past its backslash.
    fn escape(&mut self) -> Result<()> {
        let kind = *self.bytes.get(self.at).ok_or(UNTERMINATED_STRING)?;
        self.at += 1;
        match kind {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xDC00..=0xDFFF => Err(LONE_SURROGATE),
                    0xD800..=0xDBFF => {
                        // A leading surrogate must be followed at once by `\u` and a trailing one.
                        if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                            return Err(LONE_SURROGATE);
                        }
                        self.at += 2;
                        match self.hex4()? {
                            0xDC00..=0xDFFF => Ok(()),
                            _ => Err(LONE_SURROGATE),
                        }
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(BAD_ESCAPE),
        }
    }

    /// Four hexadecimal digits, as a UTF-16 code unit.
    fn hex4(&mut self) -> Result<u16> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(BAD_ESCAPE)?;
        let unit = hex4(digits).ok_or(BAD_ESCAPE)?;
        self.at += 4;
        Ok(unit)
    }

    /// A non-negative integer that fits a `usize`: a shape's axis or a data offset. Anything
    /// else (a sign, a fraction, an exponent) is `not_integer`, as serde rejects a float or a
    /// negative number where it expects a `usize`.
    pub(super) fn usize(&mut self, not_integer: &'static str) -> Result<usize> {
        let (literal, integer) = self.number()?;
        if !integer || literal.first() == Some(&b'-') {
            return Err(not_integer);
        }
        let mut value: usize = 0;
        for &digit in literal {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(digit - b'0')))
                .ok_or(not_integer)?;
        }
        Ok(value)
    }

    /// A number, checked against JSON's grammar and `serde_json`'s range: its literal and
    /// whether it is an integer (no fraction, no exponent).
    fn number(&mut self) -> Result<(&'a [u8], bool)> {
        self.skip_ws();
        let start = self.at;
        self.eat_byte(b'-');
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(BAD_NUMBER),
        }
        let mut integer = true;
        if self.eat_byte(b'.') {
            integer = false;
            self.some_digits()?;
        }
        if self.eat_byte(b'e') || self.eat_byte(b'E') {
            integer = false;
            let _ = self.eat_byte(b'+') || self.eat_byte(b'-');
            self.some_digits()?;
        }
        let literal = &self.bytes[start..self.at];
        if !in_range(literal, integer) {
            return Err(OUT_OF_RANGE);
        }
        Ok((literal, integer))
    }

    /// Consumes `byte` if it is the very next byte (no whitespace skipped).
    fn eat_byte(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// Zero or more decimal digits.
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// One or more decimal digits.
    fn some_digits(&mut self) -> Result<()> {
        let start = self.at;
        self.digits();
        if self.at == start {
            Err(BAD_NUMBER)
        } else {
            Ok(())
        }
    }

    /// Skips one value of any kind, checking it, inside `depth` open arrays and objects.
    /// Iterative: the kinds of the open containers are bits of a `u128` (1 for an object),
    /// which [`MAX_DEPTH`] fits.
    pub(super) fn skip_value(&mut self, depth: usize) -> Result<()> {
        let mut objects: u128 = 0;
        let mut open = 0usize;
        loop {
            // A value, or the opening of a container.
            match self.peek().ok_or(EXPECTED_VALUE)? {
                kind @ (b'{' | b'[') => {
                    if depth + open + 1 > MAX_DEPTH {
                        return Err(TOO_DEEP);
                    }
                    self.at += 1;
                    let object = kind == b'{';
                    let close = if object { b'}' } else { b']' };
                    if !self.eat(close) {
                        objects |= u128::from(object) << open;
                        open += 1;
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                }
                _ => return Err(EXPECTED_VALUE),
            }
            // After a value: a comma, or the end of one or more containers.
            loop {
                let Some(top) = open.checked_sub(1) else {
                    return Ok(());
                };
                let object = objects >> top & 1 == 1;
                if self.eat(b',') {
                    if object {
                        self.key()?;
                    }
                    break;
                }
                self.expect(if object { b'}' } else { b']' }, EXPECTED_COMMA)?;
                objects &= !(1 << top);
                open = top;
            }
        }
    }

    /// The literal `word` (`true`, `false`, `null`).
    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(EXPECTED_VALUE)
        }
    }
}

/// Whether `serde_json` reads the number `literal` without "number out of range": an integer
/// that fits `u64` (or `i64`, negative) is exact; anything else becomes an `f64`, which must be
/// finite. (`serde_json` rounds some long literals differently from `core` in the last place:
/// a literal within one unit of `f64::MAX` may differ; no weight file holds one.)
fn in_range(literal: &[u8], integer: bool) -> bool {
    if integer && literal.len() <= 20 {
        // Short integers: exact in u64/i64 or a small float; parse as the float either way.
        return true;
    }
    core::str::from_utf8(literal)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// Four ASCII hexadecimal digits as a number.
fn hex4(digits: &[u8]) -> Option<u16> {
    digits.iter().try_fold(0u16, |value, &digit| {
        let nibble = (digit as char).to_digit(16)?;
        Some(value << 4 | nibble as u16)
    })
}

/// A JSON string, checked, as its raw bytes between the quotes: escapes are decoded when it is
/// read, by [`chars`](JsonStr::chars).
#[derive(Clone, Copy, Debug)]
pub(super) struct JsonStr<'a> {
    raw: &'a [u8],
}

impl<'a> JsonStr<'a> {
    /// The string's characters, escapes decoded.
    pub(super) fn chars(self) -> Chars<'a> {
        Chars { raw: self.raw }
    }

    /// Whether the string is `text`, escapes decoded.
    pub(super) fn is(self, text: &str) -> bool {
        if self.raw.contains(&b'\\') {
            self.chars().eq(text.chars())
        } else {
            self.raw == text.as_bytes()
        }
    }

    /// Whether two strings are the same, escapes decoded.
    pub(super) fn same(self, other: JsonStr<'_>) -> bool {
        self.raw == other.raw || self.chars().eq(other.chars())
    }

    /// The order of two strings by their UTF-8 bytes (`str`'s order), escapes decoded: the
    /// order of their characters, since UTF-8 keeps it.
    pub(super) fn cmp(self, other: JsonStr<'_>) -> Ordering {
        self.chars().cmp(other.chars())
    }
}

/// The characters of a checked [`JsonStr`]. Should the bytes be malformed after all (they
/// cannot be, once checked), it ends early rather than panic.
#[derive(Clone, Debug)]
pub(super) struct Chars<'a> {
    raw: &'a [u8],
}

impl Chars<'_> {
    /// The code unit of a `\uXXXX` escape at the start of `self.raw`, consumed.
    fn unit(&mut self) -> Option<u16> {
        let unit = hex4(self.raw.get(2..6)?)?;
        self.raw = &self.raw[6..];
        Some(unit)
    }
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let (&first, rest) = self.raw.split_first()?;
        if first != b'\\' {
            // One UTF-8 character: the header was checked to be UTF-8.
            let width = match first {
                0..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            let (bytes, rest) = self.raw.split_at_checked(width)?;
            self.raw = rest;
            return core::str::from_utf8(bytes).ok()?.chars().next();
        }
        let decoded = match rest.first()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.unit()?;
                if !(0xD800..=0xDBFF).contains(&high) {
                    return char::from_u32(u32::from(high));
                }
                let low = self.unit()?;
                let code = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                return char::from_u32(code);
            }
            _ => return None,
        };
        self.raw = &self.raw[2..];
        Some(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(text: &str) -> Result<()> {
        let mut cursor = Cursor::new(text.as_bytes());
        cursor.skip_value(0)?;
        if cursor.at_end() {
            Ok(())
        } else {
            Err("trailing")
        }
    }

    #[test]
    fn values_are_checked_as_serde_json_checks_them() {
        for good in [
            "0",
            "-0",
            "1.5e-3",
            "1E+2",
            "[1, [2, {\"a\": null}], true, false]",
            "{}",
            "[]",
            " { \"k\" : \"\\u00e9\\ud83d\\ude00\\n\" } ",
            "18446744073709551616",
        ] {
            assert_eq!(skip(good), Ok(()), "{good}");
        }
        for (bad, reason) in [
            ("01", "trailing"),
            ("1.", BAD_NUMBER),
            ("1e", BAD_NUMBER),
            ("-", BAD_NUMBER),
            ("1e400", OUT_OF_RANGE),
            ("[1,]", EXPECTED_VALUE),
            ("{\"a\":1,}", EXPECTED_STRING),
            ("{\"a\" 1}", EXPECTED_COLON),
            ("[1 2]", EXPECTED_COMMA),
            ("[1}", EXPECTED_COMMA),
            ("\"abc", UNTERMINATED_STRING),
            ("\"\\x\"", BAD_ESCAPE),
            ("\"\\u12\"", BAD_ESCAPE),
            ("\"\\udc00\"", LONE_SURROGATE),
            ("\"\\ud800\"", LONE_SURROGATE),
            ("\"\\ud800\\u0041\"", LONE_SURROGATE),
            ("\"a\tb\"", CONTROL_CHARACTER),
            ("tru", EXPECTED_VALUE),
            ("", EXPECTED_VALUE),
        ] {
            assert_eq!(skip(bad), Err(reason), "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert_eq!(skip(&ok), Ok(()));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(skip(&deep), Err(TOO_DEEP));
        // Far deeper than any stack would take by recursion.
        let huge = "[{\"a\":".repeat(100_000);
        assert_eq!(skip(&huge), Err(TOO_DEEP));
    }

    #[test]
    fn strings_decode_and_compare_without_allocating_a_copy() {
        let mut cursor =
            Cursor::new(br#""0.w\u0065ight" "\ud83d\ude00\"\\/\b\f\n\r\t" "0.weight""#);
        let escaped = cursor.string().unwrap();
        let special = cursor.string().unwrap();
        let plain = cursor.string().unwrap();
        assert!(escaped.is("0.weight") && plain.is("0.weight"));
        assert!(!escaped.is("0.weigh") && !escaped.is("0.weights"));
        assert!(escaped.same(plain));
        assert_eq!(
            special.chars().collect::<String>(),
            "😀\"\\/\u{8}\u{c}\n\r\t"
        );
        assert_eq!(escaped.cmp(plain), Ordering::Equal);
        assert_eq!(special.cmp(plain), "😀".cmp("0"));
    }

    #[test]
    fn integers_for_shapes_and_offsets() {
        let mut cursor = Cursor::new(b"0 18446744073709551615 18446744073709551616 -1 2.0 1e2");
        assert_eq!(cursor.usize("no"), Ok(0));
        assert_eq!(cursor.usize("no"), Ok(usize::MAX));
        for _ in 0..4 {
            assert_eq!(cursor.usize("no"), Err("no"));
        }
    }
}
