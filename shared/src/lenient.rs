//! Reading a batch's records one at a time, so that one bad record cannot
//! fail the batch.
//!
//! Every function reads its event the same way: the batch's list of records
//! is kept as raw JSON text ([`RawValue`], no tree built), and each record
//! is then parsed on its own into the function's typed record. When that
//! fails, a second, minimal type that has only the record's coordinates
//! (sequence number, offset, record id: every field optional, every other
//! field ignored) is read from the same text, so the record can still be
//! reported, dead-lettered or answered for. The reason names the fault by
//! category and position only ([`crate::redact::json_error`]): it goes into
//! logs and headers, and must not quote the data.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::redact::json_error;

/// One record, read leniently: the typed record `T`, or the coordinates `C`
/// that could be had from it and why it did not parse.
#[derive(Debug, Clone, PartialEq)]
pub enum Lenient<T, C> {
    /// The record parsed.
    Parsed(T),
    /// It did not.
    Unparsed {
        /// What of its coordinates could be read (`C::default()` when not
        /// even those could).
        coordinates: C,
        /// Why it did not parse, by category and position.
        reason: String,
    },
}

impl<T, C> Lenient<T, C> {
    /// The parsed record, or `None`.
    pub fn parsed(self) -> Option<T> {
        match self {
            Self::Parsed(record) => Some(record),
            Self::Unparsed { .. } => None,
        }
    }
}

/// Parses `raw` as `T`; failing that, reads its coordinates `C`.
///
/// `what` names the record in the reason (`"record"` gives
/// `record does not parse: unexpected JSON (data error at line 1, column 9)`).
pub fn read<'de, T, C>(raw: &'de RawValue, what: &str) -> Lenient<T, C>
where
    T: Deserialize<'de>,
    C: Deserialize<'de> + Default,
{
    match serde_json::from_str::<T>(raw.get()) {
        Ok(record) => Lenient::Parsed(record),
        Err(error) => Lenient::Unparsed {
            coordinates: coordinates(raw),
            reason: format!("{what} does not parse: {}", json_error(&error)),
        },
    }
}

/// The coordinates of a record that did not parse. A typed read refuses a
/// repeated key, or (through [`or_default`]) gives up a whole group of
/// coordinates for one, so the record is read as a tree first, where the
/// last of repeated keys counts, as in a `serde_json::Value`: that costs an
/// allocation per field, on the failure path only, and names the record
/// wherever it can be named.
fn coordinates<'de, C>(raw: &'de RawValue) -> C
where
    C: Deserialize<'de> + Default,
{
    serde_json::from_str::<serde_json::Value>(raw.get())
        .and_then(C::deserialize)
        .or_else(|_| serde_json::from_str(raw.get()))
        .unwrap_or_default()
}

/// The kind of a JSON value, told by its first character: a [`RawValue`]
/// always holds valid JSON, so no parse is needed. Error messages name a
/// value by its kind so that they never quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonKind {
    /// The kind of `raw`.
    pub fn of(raw: &RawValue) -> Self {
        match raw.get().trim_start().as_bytes().first() {
            Some(b'n') => Self::Null,
            Some(b't' | b'f') => Self::Boolean,
            Some(b'"') => Self::String,
            Some(b'[') => Self::Array,
            Some(b'{') => Self::Object,
            _ => Self::Number,
        }
    }

    /// The kind of `value`.
    pub fn of_value(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Boolean,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    /// Its name with an article, for a message: `null`, `a boolean`,
    /// `a number`, `a string`, `an array`, `an object`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Boolean => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// `deserialize_with` for one coordinate field: its text when it is a
/// string, `None` when it is anything else, so one odd field does not cost
/// the others.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrOther {
        Text(String),
        Other(IgnoredAny),
    }
    Ok(match TextOrOther::deserialize(deserializer)? {
        TextOrOther::Text(text) => Some(text),
        TextOrOther::Other(_) => None,
    })
}

/// `deserialize_with` for a nested group of coordinates: its default when
/// it is not of the expected shape.
pub fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ShapeOrOther<T> {
        Shape(T),
        Other(IgnoredAny),
    }
    Ok(match ShapeOrOther::deserialize(deserializer)? {
        ShapeOrOther::Shape(value) => value,
        ShapeOrOther::Other(_) => T::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Record {
        id: String,
        count: u32,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Coordinates {
        #[serde(default, deserialize_with = "text")]
        id: Option<String>,
        #[serde(default, deserialize_with = "or_default")]
        inner: Inner,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Inner {
        #[serde(default, deserialize_with = "text")]
        sequence: Option<String>,
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn a_kind_is_told_by_its_first_character() {
        for (text, kind) in [
            ("null", JsonKind::Null),
            ("false", JsonKind::Boolean),
            ("-1.5e3", JsonKind::Number),
            (r#""hunter2""#, JsonKind::String),
            (" [1]", JsonKind::Array),
            ("{}", JsonKind::Object),
        ] {
            assert_eq!(JsonKind::of(&raw(text)), kind, "{text}");
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(JsonKind::of_value(&value), kind, "{text}");
        }
        assert_eq!(JsonKind::Array.name(), "an array");
    }

    #[test]
    fn a_good_record_parses() {
        let got: Lenient<Record, Coordinates> = read(&raw(r#"{"id":"a","count":2}"#), "record");
        assert_eq!(
            got,
            Lenient::Parsed(Record {
                id: "a".into(),
                count: 2
            })
        );
    }

    #[test]
    fn a_bad_record_keeps_its_coordinates_and_the_reason_never_quotes_it() {
        let got: Lenient<Record, Coordinates> =
            read(&raw(r#"{"id":"a","count":"hunter2-SECRET"}"#), "record");
        let Lenient::Unparsed {
            coordinates,
            reason,
        } = got
        else {
            panic!("parsed")
        };
        assert_eq!(coordinates.id.as_deref(), Some("a"));
        assert!(reason.starts_with("record does not parse: "), "{reason}");
        assert!(!reason.contains("hunter2"), "{reason}");
    }

    #[test]
    fn a_repeated_key_fails_the_record_but_not_its_coordinates() {
        let got: Lenient<Record, Coordinates> =
            read(&raw(r#"{"id":"a","count":1,"id":"b"}"#), "record");
        let Lenient::Unparsed { coordinates, .. } = got else {
            panic!("a typed read refuses a repeated key")
        };
        assert_eq!(coordinates.id.as_deref(), Some("b"), "the last one counts");
    }

    #[test]
    fn a_repeated_key_inside_a_group_of_coordinates_keeps_the_group() {
        let got: Lenient<Record, Coordinates> = read(
            &raw(r#"{"id":"a","inner":{"sequence":"1","sequence":"2"},"count":"x"}"#),
            "record",
        );
        let Lenient::Unparsed { coordinates, .. } = got else {
            panic!("parsed")
        };
        assert_eq!(coordinates.inner.sequence.as_deref(), Some("2"));
    }

    #[test]
    fn coordinates_of_the_wrong_type_are_left_out_one_by_one() {
        let got: Lenient<Record, Coordinates> =
            read(&raw(r#"{"id":7,"inner":{"sequence":"9"}}"#), "record");
        let Lenient::Unparsed { coordinates, .. } = got else {
            panic!("parsed")
        };
        assert_eq!(coordinates.id, None);
        assert_eq!(coordinates.inner.sequence.as_deref(), Some("9"));
        let got: Lenient<Record, Coordinates> = read(&raw(r#"{"id":"a","inner":[1]}"#), "record");
        let Lenient::Unparsed { coordinates, .. } = got else {
            panic!("parsed")
        };
        assert_eq!(coordinates.id.as_deref(), Some("a"));
        assert_eq!(coordinates.inner, Inner::default());
        let got: Lenient<Record, Coordinates> = read(&raw("[1,2]"), "item");
        assert!(
            matches!(&got, Lenient::Unparsed { reason, .. } if reason.starts_with("item does not parse")),
            "{got:?}"
        );
    }
}
