//! The reader against the `safetensors` crate: files it writes and torch writes read back the
//! same, thousands of generated and mutated headers are accepted exactly when the crate accepts
//! them (but for the documented differences), and each kind of corruption has its reason.

use super::*;
use std::collections::HashMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

/// A deterministic generator (splitmix64), so the test data never changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// A file of `header` (as given) followed by `data` zero bytes.
fn file_of(header: &str, data: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data, 0);
    bytes
}

/// The `safetensors` crate's verdict; a panic (its offsets' sum overflowing, in a debug build)
/// counts as a rejection.
fn crate_accepts(bytes: &[u8]) -> bool {
    std::panic::catch_unwind(|| safetensors::SafeTensors::deserialize(bytes).is_ok())
        .unwrap_or(false)
}

/// Whether the header of `bytes` (valid JSON) gives a tensor name twice, by `serde_json`.
fn has_duplicate_names(bytes: &[u8]) -> bool {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut de = serde_json::Deserializer::from_slice(&bytes[8..8 + n]);
    let mut keys = serde::Deserializer::deserialize_map(&mut de, Keys).unwrap();
    keys.retain(|k| k != "__metadata__");
    let all = keys.len();
    keys.sort();
    keys.dedup();
    keys.len() != all
}

/// Our verdict on `bytes` agrees with the crate's, or differs as documented (a name twice).
fn agrees(bytes: &[u8]) -> Result<bool, String> {
    let ours = File::parse(bytes);
    let theirs = crate_accepts(bytes);
    match (ours, theirs) {
        (Ok(file), true) => {
            same_tensors(bytes, &file)?;
            Ok(true)
        }
        (Err(_), false) => Ok(false),
        (Err(DUPLICATE), true) if has_duplicate_names(bytes) => Ok(false),
        (ours, theirs) => Err(format!(
            "ours {:?}, the crate's {theirs}, for {:?}",
            ours.map(|_| ()),
            String::from_utf8_lossy(bytes)
        )),
    }
}

/// Both readers see the same tensors: names, dtypes, shapes and the very same data bytes.
fn same_tensors(bytes: &[u8], file: &File<'_>) -> Result<(), String> {
    let theirs = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    if theirs.len() != file.len() {
        return Err(format!(
            "{} tensors, the crate {}",
            file.len(),
            theirs.len()
        ));
    }
    for (name, view) in theirs.tensors() {
        let entry = file.find(&name).ok_or(format!("`{name}` not found"))?;
        let shape: Vec<usize> = entry.shape.iter().collect();
        let same = entry.dtype.name() == view.dtype().to_string()
            && shape == view.shape()
            && core::ptr::eq(entry.data, view.data());
        if !same {
            return Err(format!("`{name}` differs: {entry:?} vs {view:?}"));
        }
    }
    Ok(())
}

const DTYPES: &[(&str, usize)] = &[
    ("F32", 32),
    ("F64", 64),
    ("I64", 64),
    ("U8", 8),
    ("BOOL", 8),
    ("F16", 16),
    ("BF16", 16),
    ("F8_E4M3", 8),
    ("F4", 4),
    ("F6_E2M3", 6),
    ("C64", 64),
];

/// Names whose decoded forms collide in places (`a` and `\u0061`), with escapes of every kind.
const NAMES: &[&str] = &[
    "a",
    "\\u0061",
    "b",
    "0.weight",
    "0.w\\u0065ight",
    "0.bias",
    "q\\\"uote",
    "\\ud83d\\ude00",
    "é",
    "\\n\\t\\/",
    "__metadata__",
    "__metadata_",
];

/// One generated header and its data length: a few tensors laid out right, and then, now and
/// then, something wrong with them.
fn generated(rng: &mut Rng) -> (String, usize) {
    let count = rng.below(4);
    let mut entries = Vec::new();
    let mut offset = 0usize;
    for _ in 0..count {
        let (dtype, bits) = *rng.pick(DTYPES);
        let rank = rng.below(4);
        let mut shape: Vec<String> = (0..rank).map(|_| rng.below(4).to_string()).collect();
        let numel: usize = shape.iter().map(|d| d.parse::<usize>().unwrap()).product();
        let bytes = numel * bits / 8;
        let (mut start, mut end) = (offset, offset + bytes);
        offset = end;
        // Things to get wrong.
        match rng.below(24) {
            0 => end += 1,
            1 => start += 1,
            2 => (start, end) = (end, start),
            3 => shape.push("4294967296".into()),
            4 => shape = std::vec!["4294967296".into(), "4294967296".into(), "16".into()],
            5 => shape.push("-1".into()),
            6 => shape.push("1.0".into()),
            7 => shape.push("18446744073709551616".into()),
            8 => start = start.saturating_sub(1),
            _ => {}
        }
        let dtype = match rng.below(30) {
            0 => "\"X\"".to_string(),
            1 => format!("{{\"{dtype}\":null}}"),
            2 => format!("{{\"{dtype}\":[]}}"),
            3 => "\"f32\"".to_string(),
            _ => format!("\"{dtype}\""),
        };
        let shape = format!("[{}]", shape.join(","));
        let offsets = match rng.below(40) {
            0 => format!("[{start}]"),
            1 => format!("[{start},{end},{end}]"),
            2 => format!("[{start}.0,{end}]"),
            _ => format!("[{start},{end}]"),
        };
        let extra = match rng.below(12) {
            0 => ",\"x\":[1.5,{\"y\":null},true,-0]",
            1 => ",\"x\":1e400",
            2 => ",\"dtype\":\"F32\"",
            3 => ",\"x\":01",
            4 => ",\"x\":[[[[[[[[[]]]]]]]]]",
            _ => "",
        };
        let entry = match rng.below(10) {
            0 => format!("[{dtype},{shape},{offsets}]"),
            1 => format!("[{dtype},{shape}]"),
            2 => format!("{{\"shape\":{shape},\"data_offsets\":{offsets}{extra}}}"),
            _ if rng.chance(2) => {
                format!("{{\"data_offsets\":{offsets},\"shape\":{shape},\"dtype\":{dtype}{extra}}}")
            }
            _ => {
                format!("{{\"dtype\":{dtype},\"shape\":{shape},\"data_offsets\":{offsets}{extra}}}")
            }
        };
        entries.push(format!("\"{}\":{entry}", rng.pick(NAMES)));
    }
    if rng.chance(3) {
        let metadata = *rng.pick(&[
            "null",
            "{}",
            "{\"format\":\"pt\"}",
            "{\"a\":\"x\",\"a\":\"y\"}",
            "{\"a\":1}",
            "[]",
        ]);
        let at = rng.below(entries.len() + 1);
        entries.insert(at, format!("\"__metadata__\":{metadata}"));
        if rng.chance(8) {
            entries.push("\"__metadata__\":null".into());
        }
    }
    // Tensors in any order: the crate sorts them by offsets.
    for i in (1..entries.len()).rev() {
        entries.swap(i, rng.below(i + 1));
    }
    let space = *rng.pick(&["", " ", "\n\t", "  \r\n"]);
    let mut header = format!("{space}{{{}}}{space}", entries.join(&format!(",{space}")));
    if rng.chance(30) {
        header.push('x');
    }
    let data = match rng.below(15) {
        0 => offset + 1,
        1 => offset.saturating_sub(1),
        _ => offset,
    };
    (header, data)
}

/// A copy of `bytes` with a few bytes changed, cut, or repeated.
fn mutated(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for _ in 0..1 + rng.below(3) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] = rng.next() as u8,
            1 => bytes[at] = *rng.pick(b"{}[]\",:0123456789-.eE\\u \x00\xff"),
            2 => bytes.truncate(at),
            3 => {
                let byte = bytes[at];
                bytes.insert(at, byte);
            }
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

#[test]
fn accepts_exactly_what_the_safetensors_crate_accepts() {
    let mut rng = Rng(0x5eed_f00d_5afe_7e25);
    let mut accepted = 0;
    let mut rejected = 0;
    let mut reasons = std::collections::BTreeSet::new();
    for round in 0..4000 {
        let (header, data) = generated(&mut rng);
        let mut bytes = file_of(&header, data);
        if round % 3 == 0 {
            bytes = mutated(&mut rng, &bytes);
        }
        reasons.extend(File::parse(&bytes).err());
        match agrees(&bytes) {
            Ok(true) => accepted += 1,
            Ok(false) => rejected += 1,
            Err(why) => panic!("round {round}: {why}"),
        }
    }
    // Random bytes, and random bytes behind a plausible length.
    for len in 0..300 {
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 8 && rng.chance(2) {
            bytes[..8].copy_from_slice(&((len - 8 - rng.below(len - 7)) as u64).to_le_bytes());
        }
        assert_eq!(agrees(&bytes), Ok(false), "{bytes:?}");
    }
    // Both verdicts are common: the generator explores both sides of every rule.
    assert!(
        accepted > 500 && rejected > 500,
        "{accepted} accepted, {rejected} rejected"
    );
    // And it reaches most of the reader's reasons to reject.
    assert!(reasons.len() >= 20, "{reasons:#?}");
}

/// A file the `safetensors` crate writes, of the given tensors and metadata.
fn written(tensors: &[(&str, safetensors::Dtype, Vec<usize>)], metadata: bool) -> Vec<u8> {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dtype, shape)| {
            let bytes = shape.iter().product::<usize>() * dtype.bitsize() / 8;
            (0..bytes).map(|i| (i * 7 + 3) as u8).collect()
        })
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&data)
        .map(|((name, dtype, shape), data)| {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap();
            (name.to_string(), view)
        })
        .collect();
    let metadata = metadata.then(|| {
        let mut map = HashMap::new();
        map.insert("format".to_string(), "pt".to_string());
        map.insert("note \"quoted\"\n".to_string(), "é😀\\".to_string());
        map.into_iter().collect()
    });
    safetensors::serialize(views, metadata).unwrap()
}

#[test]
fn reads_what_the_safetensors_crate_writes() {
    use safetensors::Dtype as D;
    /// A tensor's name, dtype and shape.
    type Spec = (&'static str, D, Vec<usize>);
    let cases: Vec<(Vec<Spec>, bool)> = std::vec![
        (std::vec![], false),
        (std::vec![], true),
        (
            std::vec![
                ("0.weight", D::F32, std::vec![8, 2]),
                ("0.bias", D::F32, std::vec![8])
            ],
            true
        ),
        (
            std::vec![
                ("scalar", D::I64, std::vec![]),
                ("empty", D::F64, std::vec![3, 0]),
                ("quote\"back\\slash\nnewline\u{1}", D::U8, std::vec![5]),
                ("😀 é", D::BF16, std::vec![2, 1, 3]),
                ("nibbles", D::F4, std::vec![6]),
                (
                    "a.b.c",
                    D::F8_E4M3FNUZ,
                    std::vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 4]
                ),
            ],
            true,
        ),
    ];
    for (tensors, metadata) in cases {
        let bytes = written(&tensors, metadata);
        assert_eq!(agrees(&bytes), Ok(true));
        let file = File::parse(&bytes).unwrap();
        assert_eq!(file.len(), tensors.len());
        for (name, _, shape) in &tensors {
            let entry = file.find(name).unwrap();
            assert!(entry.name.is(name));
            assert!(entry.shape.is(shape), "{name}");
        }
    }
}

#[test]
fn reads_what_torch_writes() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/weights");
    let mut read = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(agrees(&bytes), Ok(true), "{path:?}");
            assert!(File::parse(&bytes).unwrap().len() > 0);
            read += 1;
        }
    }
    assert!(read >= 5, "only {read} torch files in {fixtures:?}");
}

/// Each corruption is rejected by both readers, ours with its own reason.
#[test]
fn each_corruption_has_its_reason() {
    let t = |name: &str, dtype: &str, shape: &str, offsets: &str| {
        format!("\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}")
    };
    let a = t("a", "U8", "[4]", "[0,4]");
    let b = t("b", "U8", "[4]", "[4,8]");
    let deep = format!(
        "{{{a},\"__metadata__\":null,{}}}",
        t(
            "c",
            "U8",
            "[0]",
            &format!("[8,8],\"x\":{}{}", "[".repeat(130), "]".repeat(130))
        )
    );
    let long_header = {
        let mut bytes = 200_000_000u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        bytes
    };
    let past_end = {
        let mut bytes = 100u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        bytes
    };
    let cases: Vec<(Vec<u8>, &str)> = std::vec![
        (std::vec![], TOO_SHORT),
        (std::vec![1, 0, 0], TOO_SHORT),
        (long_header, HEADER_TOO_LARGE),
        (past_end, HEADER_PAST_END),
        (
            {
                let mut bytes = file_of("{\"\u{e9}\":{}}", 0);
                bytes[10] = 0xff;
                bytes
            },
            NOT_UTF8
        ),
        (file_of("[]", 0), NOT_AN_OBJECT),
        (file_of("", 0), json::EXPECTED_VALUE),
        (file_of("{} x", 0), TRAILING),
        (file_of("{\"a", 0), json::UNTERMINATED_STRING),
        (file_of(&format!("{{{a},{b}}}"), 9), GAP),
        (file_of(&format!("{{{a},{b}}}"), 7), PAST_END),
        (
            file_of(&format!("{{{a},{}}}", t("b", "U8", "[4]", "[5,9]")), 9),
            GAP
        ),
        (
            file_of(&format!("{{{a},{}}}", t("b", "U8", "[4]", "[2,6]")), 8),
            OVERLAP
        ),
        (
            file_of(&format!("{{{a},{}}}", t("b", "U8", "[4]", "[0,4]")), 4),
            OVERLAP
        ),
        (
            file_of(&format!("{{{a},{}}}", t("b", "U8", "[4]", "[2,6]")), 6),
            OVERLAP
        ),
        (
            file_of(&format!("{{{a},{}}}", t("b", "U8", "[0]", "[2,2]")), 4),
            OVERLAP
        ),
        (
            file_of(&format!("{{{}}}", t("a", "U8", "[4]", "[4,0]")), 4),
            BACKWARDS
        ),
        (
            file_of(&format!("{{{}}}", t("a", "U8", "[4]", "[0,8]")), 4),
            WRONG_LENGTH
        ),
        (
            file_of(&format!("{{{}}}", t("a", "U8", "[4]", "[4,8]")), 4),
            PAST_END
        ),
        (
            file_of(&format!("{{{}}}", t("a", "Q8", "[4]", "[0,4]")), 4),
            UNKNOWN_DTYPE
        ),
        (
            file_of(
                &format!(
                    "{{{}}}",
                    t("a", "F32", "[1099511627776,1099511627776]", "[0,4]")
                ),
                4
            ),
            OVERFLOW,
        ),
        (
            file_of(&format!("{{{}}}", t("a", "F4", "[3]", "[0,1]")), 1),
            MISALIGNED
        ),
        (
            file_of(&format!("{{{}}}", t("a", "U8", "[-4]", "[0,4]")), 4),
            BAD_SHAPE
        ),
        (
            file_of(&format!("{{{}}}", t("a", "U8", "[4]", "[0,4,4]")), 4),
            BAD_OFFSETS
        ),
        (
            file_of(&format!("{{{a},{}}}", t("a", "U8", "[4]", "[4,8]")), 8),
            DUPLICATE
        ),
        (
            file_of(
                &format!("{{{a},{}}}", t("\\u0061", "U8", "[4]", "[4,8]")),
                8
            ),
            DUPLICATE
        ),
        (file_of(&deep, 8), json::TOO_DEEP),
        (
            file_of("{\"__metadata__\":{},\"__metadata__\":{}}", 0),
            METADATA_TWICE
        ),
        (file_of("{\"__metadata__\":{\"a\":1}}", 0), BAD_METADATA),
        (
            file_of("{\"a\":{\"dtype\":\"U8\",\"shape\":[0]}}", 0),
            FIELD_MISSING
        ),
        (
            file_of(
                "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                0
            ),
            FIELD_TWICE
        ),
        (file_of("{\"a\":7}", 0), BAD_ENTRY),
    ];
    for (bytes, reason) in cases {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert_eq!(File::parse(&bytes).map(|_| ()), Err(reason), "{text}");
        // The crate rejects them too, but for the name given twice, which it forgives.
        if reason != DUPLICATE {
            assert!(!crate_accepts(&bytes), "the crate accepts {text}");
        }
    }
}

/// Nesting in a field nobody reads: as deep as `serde_json` goes is accepted by both readers,
/// one level more by neither.
#[test]
fn nesting_up_to_serde_jsons_limit() {
    // The header's object and the entry's are two levels.
    for (inner, accepted) in [(MAX_DEPTH - 2, true), (MAX_DEPTH - 1, false)] {
        let header = format!(
            "{{\"a\":{{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":{}{}}}}}",
            "[".repeat(inner),
            "]".repeat(inner)
        );
        let bytes = file_of(&header, 0);
        assert_eq!(agrees(&bytes), Ok(accepted), "{inner} levels inside");
        assert_eq!(File::parse(&bytes).is_ok(), accepted);
    }
}

/// Offsets near `usize::MAX`: the sum that would overflow is checked, not wrapped.
#[test]
fn offsets_near_the_top_of_usize_are_corrupt() {
    let size = (1u64 << 61) - 1;
    let entries: Vec<String> = (0..8u64)
        .map(|i| {
            format!(
                "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[{size}],\"data_offsets\":[{},{}]}}",
                i * size,
                (i + 1) * size
            )
        })
        .collect();
    let bytes = file_of(&format!("{{{}}}", entries.join(",")), 0);
    assert_eq!(File::parse(&bytes).map(|_| ()), Err(PAST_END));
}
