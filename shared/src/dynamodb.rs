//! DynamoDB `AttributeValue` maps (stream `Keys`, `NewImage`, `OldImage`)
//! turned into plain JSON, written straight to bytes.
//!
//! | DynamoDB | JSON |
//! |---|---|
//! | `S` | string |
//! | `N` | number, written with the exact digits DynamoDB sent (38 digits, long decimals: nothing is lost to `f64`) |
//! | `B` | string, standard base64 |
//! | `BOOL` | `true` / `false` |
//! | `NULL` | `null` |
//! | `M` | object, keys sorted |
//! | `L` | array |
//! | `SS` / `NS` / `BS` | array of strings / numbers / base64 strings, in stream order |
//!
//! Keys are sorted so the same item always gives the same bytes: consumers
//! can compare or hash values, and [`item_to_json`] doubles as the canonical
//! form used for message keys. Malformed input (an `N` that is not a number,
//! nesting deeper than DynamoDB allows) is an [`UnmarshalError`], never a
//! panic.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_dynamo::AttributeValue;

/// DynamoDB's own nesting limit for documents.
pub const MAX_DEPTH: usize = 32;

/// Why an item could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnmarshalError {
    /// An `N` (or an `NS` member) that is not a decimal number. The message
    /// names the attribute but does not quote the value: it is item data,
    /// and the message goes into logs and dead-letter headers.
    #[error("attribute {path} has an N value that is not a number")]
    InvalidNumber {
        /// Dotted path to the attribute, e.g. `price` or `items[2].qty`.
        path: String,
        /// The text that was sent (never part of the message).
        value: String,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("attribute {path} is nested deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// Dotted path to where the limit was crossed.
        path: String,
    },
}

impl UnmarshalError {
    fn within(self, segment: &str) -> Self {
        let join = |path: String| {
            if path.is_empty() {
                segment.to_owned()
            } else if path.starts_with('[') {
                format!("{segment}{path}")
            } else {
                format!("{segment}.{path}")
            }
        };
        match self {
            Self::InvalidNumber { path, value } => Self::InvalidNumber {
                path: join(path),
                value,
            },
            Self::TooDeep { path } => Self::TooDeep { path: join(path) },
        }
    }
}

/// An item as compact JSON with sorted keys.
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Result<Vec<u8>, UnmarshalError> {
    let mut out = Vec::with_capacity(256);
    write_map(item, &mut out, 0)?;
    Ok(out)
}

/// An attribute as message-key text: a string as itself, a number as its
/// digits, binary as base64, anything else as its JSON.
pub fn attribute_text(value: &AttributeValue) -> Result<String, UnmarshalError> {
    match value {
        AttributeValue::S(s) => Ok(s.clone()),
        AttributeValue::N(n) => normalize_number(n).map_err(|_| UnmarshalError::InvalidNumber {
            path: String::new(),
            value: n.clone(),
        }),
        AttributeValue::B(b) => Ok(BASE64.encode(b)),
        other => {
            let mut out = Vec::new();
            write_value(other, &mut out, 0)?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
    }
}

fn write_map(
    map: &HashMap<String, AttributeValue>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), UnmarshalError> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_unstable();
    out.push(b'{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(key, out);
        out.push(b':');
        write_value(&map[key], out, depth + 1).map_err(|e| e.within(key))?;
    }
    out.push(b'}');
    Ok(())
}

fn write_value(
    value: &AttributeValue,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), UnmarshalError> {
    if depth > MAX_DEPTH {
        return Err(UnmarshalError::TooDeep {
            path: String::new(),
        });
    }
    match value {
        AttributeValue::S(s) => write_str(s, out),
        AttributeValue::N(n) => write_number(n, out)?,
        AttributeValue::B(b) => write_base64(b, out),
        AttributeValue::Bool(true) => out.extend_from_slice(b"true"),
        AttributeValue::Bool(false) => out.extend_from_slice(b"false"),
        AttributeValue::Null(_) => out.extend_from_slice(b"null"),
        AttributeValue::M(map) => write_map(map, out, depth)?,
        AttributeValue::L(list) => {
            out.push(b'[');
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out, depth + 1).map_err(|e| e.within(&format!("[{i}]")))?;
            }
            out.push(b']');
        }
        AttributeValue::Ss(list) => write_array(list, out, |s, out| {
            write_str(s, out);
            Ok(())
        })?,
        AttributeValue::Ns(list) => write_array(list, out, |n, out| write_number(n, out))?,
        AttributeValue::Bs(list) => write_array(list, out, |b, out| {
            write_base64(b, out);
            Ok(())
        })?,
    }
    Ok(())
}

fn write_array<T>(
    items: &[T],
    out: &mut Vec<u8>,
    mut write_item: impl FnMut(&T, &mut Vec<u8>) -> Result<(), UnmarshalError>,
) -> Result<(), UnmarshalError> {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_item(item, out).map_err(|e| e.within(&format!("[{i}]")))?;
    }
    out.push(b']');
    Ok(())
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
        0,
    );
    let written = BASE64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

fn write_number(n: &str, out: &mut Vec<u8>) -> Result<(), UnmarshalError> {
    if is_json_number(n.as_bytes()) {
        out.extend_from_slice(n.as_bytes());
        return Ok(());
    }
    let normalized = normalize_number(n).map_err(|_| UnmarshalError::InvalidNumber {
        path: String::new(),
        value: n.to_owned(),
    })?;
    out.extend_from_slice(normalized.as_bytes());
    Ok(())
}

/// Whether `s` is already a JSON number (the common case: DynamoDB sends
/// canonical digits).
fn is_json_number(s: &[u8]) -> bool {
    let mut i = 0;
    if s.first() == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == s.len()
}

/// Rewrites a decimal that JSON would reject (`+5`, `007`, `.5`, `5.`) into
/// JSON's grammar without changing its value. Anything else is not a number.
fn normalize_number(n: &str) -> Result<String, ()> {
    if is_json_number(n.as_bytes()) {
        return Ok(n.to_owned());
    }
    let s = n.trim();
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'-') => ("-", &s[1..]),
        Some(b'+') => ("", &s[1..]),
        _ => ("", s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || !digits(frac_part) || (int_part.is_empty() && frac_part.is_empty()) {
        return Err(());
    }
    let int_part = int_part.trim_start_matches('0');
    let mut text = format!("{sign}{}", if int_part.is_empty() { "0" } else { int_part });
    if !frac_part.is_empty() {
        text.push('.');
        text.push_str(frac_part);
    }
    if let Some(exp) = exponent {
        let exp_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if exp_digits.is_empty() || !digits(exp_digits) {
            return Err(());
        }
        text.push('e');
        text.push_str(exp);
    }
    if is_json_number(text.as_bytes()) {
        Ok(text)
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(json: &str) -> HashMap<String, AttributeValue> {
        serde_json::from_str::<serde_dynamo::Item>(json)
            .unwrap()
            .into()
    }

    fn to_text(json: &str) -> String {
        String::from_utf8(item_to_json(&item(json)).unwrap()).unwrap()
    }

    #[test]
    fn every_type_maps_as_documented() {
        let text = to_text(
            r#"{
            "s": {"S": "héllo \"q\""}, "n": {"N": "-12.50"}, "b": {"B": "AAEC"},
            "t": {"BOOL": true}, "f": {"BOOL": false}, "z": {"NULL": true},
            "m": {"M": {"y": {"N": "1"}, "x": {"S": "a"}}},
            "l": {"L": [{"S": "a"}, {"N": "2"}, {"NULL": true}]},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": ["AAE="]}
        }"#,
        );
        assert_eq!(
            text,
            r#"{"b":"AAEC","bs":["AAE="],"f":false,"l":["a",2,null],"m":{"x":"a","y":1},"n":-12.50,"ns":[1,2.5],"s":"héllo \"q\"","ss":["a","b"],"t":true,"z":null}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["s"], "héllo \"q\"");
    }

    #[test]
    fn numbers_keep_every_digit() {
        let big = "12345678901234567890123456789012345678";
        let small = "0.000000000000000000000000000000000000001";
        let text = to_text(&format!(
            r#"{{"a": {{"N": "{big}"}}, "b": {{"N": "{small}"}}, "c": {{"N": "-1E+130"}}}}"#
        ));
        assert_eq!(text, format!(r#"{{"a":{big},"b":{small},"c":-1E+130}}"#));
    }

    #[test]
    fn loose_decimals_are_normalized_without_changing_value() {
        for (input, expected) in [
            ("+5", "5"),
            ("007", "7"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-00.25", "-0.25"),
            ("1e+2", "1e+2"),
        ] {
            assert_eq!(normalize_number(input), Ok(expected.to_owned()), "{input}");
        }
    }

    #[test]
    fn non_numbers_are_errors_that_name_the_attribute() {
        let err = item_to_json(&item(
            r#"{"order": {"M": {"lines": {"L": [{"N": "1"}, {"N": "ten"}]}}}}"#,
        ))
        .unwrap_err();
        assert_eq!(
            err,
            UnmarshalError::InvalidNumber {
                path: "order.lines[1]".into(),
                value: "ten".into()
            }
        );
        for bad in [
            "", "-", "1.2.3", "0x10", "NaN", "Infinity", "1e", "--1", "1 2",
        ] {
            assert!(normalize_number(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(item_to_json(&item(r#"{"ns": {"NS": ["1", "x"]}}"#)).is_err());
    }

    #[test]
    fn the_message_for_a_non_number_does_not_quote_the_value() {
        let err = item_to_json(&item(r#"{"pin": {"N": "hunter2-SECRET"}}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute pin has an N value that is not a number"
        );
    }

    #[test]
    fn nesting_beyond_the_dynamodb_limit_is_an_error() {
        let mut value = AttributeValue::S("leaf".into());
        for _ in 0..(MAX_DEPTH + 2) {
            value = AttributeValue::M(HashMap::from([("k".to_owned(), value)]));
        }
        let err = item_to_json(&HashMap::from([("root".to_owned(), value)])).unwrap_err();
        assert!(matches!(err, UnmarshalError::TooDeep { .. }), "{err}");
        assert!(err.to_string().starts_with("attribute root.k.k"), "{err}");
    }

    #[test]
    fn key_text_is_the_plain_value() {
        assert_eq!(
            attribute_text(&AttributeValue::S("abc".into())).unwrap(),
            "abc"
        );
        assert_eq!(
            attribute_text(&AttributeValue::N("42".into())).unwrap(),
            "42"
        );
        assert_eq!(
            attribute_text(&AttributeValue::B(vec![0, 1])).unwrap(),
            "AAE="
        );
        assert_eq!(attribute_text(&AttributeValue::Bool(true)).unwrap(), "true");
        assert!(attribute_text(&AttributeValue::N("x".into())).is_err());
    }

    proptest! {
        #[test]
        fn any_decimal_string_gives_valid_json_or_an_error(s in "[-+]?[0-9]{0,40}(\\.[0-9]{0,40})?([eE][-+]?[0-9]{0,2})?") {
            let map = HashMap::from([("n".to_owned(), AttributeValue::N(s.clone()))]);
            if let Ok(bytes) = item_to_json(&map) {
                let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&bytes);
                prop_assert!(parsed.is_ok(), "{s:?} gave {:?}", String::from_utf8_lossy(&bytes));
            }
        }

        #[test]
        fn strings_round_trip(s in any::<String>()) {
            let map = HashMap::from([("s".to_owned(), AttributeValue::S(s.clone()))]);
            let parsed: serde_json::Value = serde_json::from_slice(&item_to_json(&map).unwrap()).unwrap();
            prop_assert_eq!(parsed["s"].as_str(), Some(s.as_str()));
        }
    }
}
