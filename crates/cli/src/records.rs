//! How records look on the command line: the lossless text, hex and JSON
//! forms that `scan` and `get` print and `load` reads back.
//!
//! **Text** (the default): `KEY<TAB>VALUE`, each field escaped so any bytes
//! survive: `\t`, `\n`, `\r` and `\\` for those bytes, and `\xHH` for every
//! byte of invalid UTF-8, of a control character, of Unicode whitespace
//! other than the space, and of a bidirectional-text or invisible
//! formatting character (so nothing printed can rearrange or hide what a
//! terminal shows). A key starting with `{` has it written `\x7b`, since a
//! line starting with `{` is read as JSON. Everything else is the
//! character itself.
//!
//! **Hex** (`--hex`): `HEXKEY<TAB>HEXVALUE`, lower-case, and key and value
//! arguments are read as hex too.
//!
//! **JSON** (`--json`): one object per line,
//! `{"key":"...","value":"..."}` when a field is valid UTF-8 (JSON's own
//! escapes are lossless for it), `"key_base64"`/`"value_base64"` (standard
//! alphabet, padded) when it is not; with `--hex`, always
//! `"key_hex"`/`"value_hex"`.
//!
//! `load` reads any of these, one record per line, whatever the flags: a
//! line starting with `{` is a JSON object with exactly one key field and
//! one value field of those names; any other line is `KEY<TAB>VALUE` in
//! text (hex with `--hex`), taken exactly (no trimming). A line without a
//! TAB (an empty or blank one too), with a second raw TAB, with a raw
//! carriage return, or with an unknown escape is an error.

use base64ct::{Base64, Encoding as _};

/// How keys and values are written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Escaped text.
    Text,
    /// Lower-case hex.
    Hex,
}

impl Encoding {
    /// `--hex` or not.
    pub(crate) fn new(hex: bool) -> Self {
        if hex { Encoding::Hex } else { Encoding::Text }
    }

    /// A key or value given as a command-line argument.
    pub(crate) fn argument(self, arg: &std::ffi::OsStr, what: &str) -> Result<Vec<u8>, String> {
        match self {
            Encoding::Hex => {
                let s = arg
                    .to_str()
                    .ok_or_else(|| format!("the {what} is not hex"))?;
                hex::decode(s).map_err(|e| format!("the {what} is not hex: {e}"))
            }
            Encoding::Text => Ok(os_bytes(arg)),
        }
    }

    /// One field (the key when `first`) as text.
    pub(crate) fn field(self, bytes: &[u8], first: bool) -> String {
        match self {
            Encoding::Hex => hex::encode(bytes),
            Encoding::Text => escape(bytes, first),
        }
    }

    /// The text line of a record, without the newline.
    pub(crate) fn line(self, key: &[u8], value: &[u8]) -> String {
        let mut s = self.field(key, true);
        s.push('\t');
        s.push_str(&self.field(value, false));
        s
    }

    /// The JSON object of a record.
    pub(crate) fn json(self, key: &[u8], value: &[u8]) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        self.json_field(&mut map, "key", key);
        self.json_field(&mut map, "value", value);
        serde_json::Value::Object(map)
    }

    fn json_field(
        self,
        map: &mut serde_json::Map<String, serde_json::Value>,
        name: &str,
        b: &[u8],
    ) {
        let (field, text) = match (self, std::str::from_utf8(b)) {
            (Encoding::Hex, _) => (format!("{name}_hex"), hex::encode(b)),
            (Encoding::Text, Ok(s)) => (name.to_string(), s.to_string()),
            (Encoding::Text, Err(_)) => (format!("{name}_base64"), Base64::encode_string(b)),
        };
        map.insert(field, serde_json::Value::String(text));
    }
}

/// The bytes of a command-line argument, exactly (on Unix any bytes; else
/// its UTF-8, since arguments are Unicode there).
pub(crate) fn os_bytes(arg: &std::ffi::OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        arg.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        arg.to_string_lossy().into_owned().into_bytes()
    }
}

/// Whether `c` is written `\xHH`: control characters, whitespace other
/// than the space, and the invisible or bidirectional formatting
/// characters that can hide or reorder text on a terminal.
fn needs_hex(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{00ad}'              // soft hyphen
            | '\u{061c}'            // Arabic letter mark
            | '\u{180e}'            // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}' // zero-width space, joiners, LRM, RLM
            | '\u{202a}'..='\u{202e}' // bidirectional embeddings, overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{feff}'            // zero-width no-break space (BOM)
        )
}

fn push_hex(out: &mut String, b: u8) {
    out.push_str(&format!("\\x{b:02x}"));
}

/// `bytes` escaped as the text form says (`first`: a leading `{` too).
pub(crate) fn escape(bytes: &[u8], first: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '{' if first && out.is_empty() => push_hex(&mut out, b'{'),
                c if needs_hex(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        push_hex(&mut out, b);
                    }
                }
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_hex(&mut out, b);
        }
    }
    out
}

/// The bytes an escaped field stands for.
pub(crate) fn unescape(field: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while let Some(&b) = field.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = field.get(i) else {
            return Err("a lone backslash at the end of a field (write \\\\ for one)".into());
        };
        i += 1;
        match e {
            b'\\' => out.push(b'\\'),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'x' => {
                let digits = field
                    .get(i..i + 2)
                    .and_then(|d| std::str::from_utf8(d).ok())
                    .and_then(|d| u8::from_str_radix(d, 16).ok())
                    .ok_or("\\x needs two hex digits")?;
                out.push(digits);
                i += 2;
            }
            other => {
                return Err(format!(
                    "unknown escape \\{} (the escapes are \\t \\n \\r \\\\ \\xHH)",
                    char::from(other).escape_default()
                ));
            }
        }
    }
    Ok(out)
}

/// Parses one line of `load` input (without its newline) into a key and a
/// value. `encoding` is how a text line's fields are written.
pub(crate) fn parse_line(line: &[u8], encoding: Encoding) -> Result<(Vec<u8>, Vec<u8>), String> {
    if line.first() == Some(&b'{') {
        return parse_json(line);
    }
    if line.contains(&b'\r') {
        return Err(
            "a raw carriage return (CRLF line ends?): convert the file to LF line ends, and write \\r for a carriage return in data"
                .into(),
        );
    }
    let mut fields = line.splitn(3, |&b| b == b'\t');
    let key = fields.next().unwrap_or_default();
    let Some(value) = fields.next() else {
        return Err(if line.iter().all(u8::is_ascii_whitespace) {
            "an empty or blank line: every line must be a record (KEY<TAB>VALUE or a JSON object)"
                .into()
        } else {
            "no TAB: expected KEY<TAB>VALUE or a JSON object".into()
        });
    };
    if fields.next().is_some() {
        return Err("more than one TAB: write \\t for a TAB inside a key or value".into());
    }
    let decode = |field: &[u8], what: &str| -> Result<Vec<u8>, String> {
        match encoding {
            Encoding::Text => unescape(field).map_err(|e| format!("{what}: {e}")),
            Encoding::Hex => std::str::from_utf8(field)
                .map_err(|_| format!("{what}: not hex"))
                .and_then(|s| hex::decode(s).map_err(|e| format!("{what}: not hex: {e}"))),
        }
    };
    Ok((decode(key, "key")?, decode(value, "value")?))
}

/// A JSON line: exactly one of `key`, `key_base64`, `key_hex` and one of
/// `value`, `value_base64`, `value_hex`, each a string; nothing else.
fn parse_json(line: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let v: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let serde_json::Value::Object(map) = v else {
        return Err("not a JSON object".into());
    };
    let mut key = None;
    let mut value = None;
    for (name, v) in &map {
        let (slot, form) = match name.as_str() {
            "key" => (&mut key, Form::Utf8),
            "key_base64" => (&mut key, Form::Base64),
            "key_hex" => (&mut key, Form::Hex),
            "value" => (&mut value, Form::Utf8),
            "value_base64" => (&mut value, Form::Base64),
            "value_hex" => (&mut value, Form::Hex),
            other => {
                return Err(format!(
                    "unknown field {other:?} (expected key, key_base64 or key_hex and value, value_base64 or value_hex)"
                ));
            }
        };
        let text = v
            .as_str()
            .ok_or_else(|| format!("field {name:?} is not a string"))?;
        let bytes = match form {
            Form::Utf8 => text.as_bytes().to_vec(),
            Form::Base64 => {
                Base64::decode_vec(text).map_err(|e| format!("field {name:?}: not base64: {e}"))?
            }
            Form::Hex => hex::decode(text).map_err(|e| format!("field {name:?}: not hex: {e}"))?,
        };
        if slot.replace(bytes).is_some() {
            return Err(format!(
                "two fields give the {}",
                name.split('_').next().unwrap_or(name)
            ));
        }
    }
    match (key, value) {
        (Some(k), Some(v)) => Ok((k, v)),
        (None, _) => Err("no key field (key, key_base64 or key_hex)".into()),
        (_, None) => Err("no value field (value, value_base64 or value_hex)".into()),
    }
}

#[derive(Clone, Copy)]
enum Form {
    Utf8,
    Base64,
    Hex,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_cases_that_lost_data_round_trip() {
        let cases: [(&[u8], &[u8]); 8] = [
            (b"user\t1", b"secret"),
            (b"k", b"ends in CR\r"),
            (b"k", b"line\nbreak"),
            (b"\xff\xfe", b"\x00\x01 bin"),
            (b"{json-looking}", b"v"),
            (b"back\\slash", b"\\x41 is not A"),
            (b"", b""),
            ("caf\u{e9} \u{202e}txt".as_bytes(), "\u{2028}".as_bytes()),
        ];
        for (k, v) in cases {
            for enc in [Encoding::Text, Encoding::Hex] {
                let line = enc.line(k, v);
                assert!(!line.contains(['\n', '\r']), "{line:?}");
                assert!(!line.starts_with('{'), "{line:?}");
                assert_eq!(
                    parse_line(line.as_bytes(), enc).unwrap(),
                    (k.to_vec(), v.to_vec())
                );
                let json = enc.json(k, v).to_string();
                assert_eq!(
                    parse_line(json.as_bytes(), enc).unwrap(),
                    (k.to_vec(), v.to_vec())
                );
            }
        }
        assert_eq!(
            Encoding::Text.line(b"user\t1", b"secret"),
            "user\\t1\tsecret"
        );
        assert_eq!(escape("\u{202e}".as_bytes(), false), "\\xe2\\x80\\xae");
        assert_eq!(
            Encoding::Text.json(b"\xff", b"ok").to_string(),
            r#"{"key_base64":"/w==","value":"ok"}"#
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_the_reason() {
        for (line, says) in [
            (&b""[..], "empty or blank"),
            (b"   ", "empty or blank"),
            (b"no tab", "no TAB"),
            (b"a\tb\tc", "more than one TAB"),
            (b"a\tb\r", "carriage return"),
            (b"a\\q\tb", "unknown escape"),
            (b"a\tb\\", "lone backslash"),
            (b"a\\x4\tb", "two hex digits"),
            (br#"{"key":"a"}"#, "no value field"),
            (br#"{"key":"a","value":"b","extra":1}"#, "unknown field"),
            (br#"{"key":"a","key_hex":"61","value":"b"}"#, "two fields"),
            (br#"{"key_base64":"!","value":"b"}"#, "not base64"),
            (b"{not json", "not a JSON object"),
        ] {
            let err = parse_line(line, Encoding::Text).unwrap_err();
            assert!(err.contains(says), "{line:?}: {err}");
        }
        assert!(
            parse_line(b"zz\t00", Encoding::Hex)
                .unwrap_err()
                .contains("not hex")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes survive every form: text, hex and JSON, each read
        /// back by `load`'s parser.
        #[test]
        fn any_bytes_round_trip_through_every_form(
            key in proptest::collection::vec(any::<u8>(), 0..40),
            value in proptest::collection::vec(any::<u8>(), 0..80),
            text in ".{0,20}",
        ) {
            let value = if value.len() % 2 == 0 { value } else { text.into_bytes() };
            for enc in [Encoding::Text, Encoding::Hex] {
                let line = enc.line(&key, &value);
                prop_assert!(!line.contains(['\n', '\r']));
                prop_assert_eq!(parse_line(line.as_bytes(), enc).unwrap(), (key.clone(), value.clone()));
                let json = enc.json(&key, &value).to_string();
                prop_assert!(!json.contains('\n'));
                prop_assert_eq!(parse_line(json.as_bytes(), enc).unwrap(), (key.clone(), value.clone()));
            }
        }
    }
}
