//! Reading JSON without building a `serde_json::Value` tree: the event, its
//! record lists and the parts of a record that are only looked at, kept as
//! raw text ([`RawValue`]) and read on demand.
//!
//! Records themselves are read by the shared library's
//! [`lambda_stream_kit::lenient`] (a typed parse, with the coordinates as
//! fallback); this module holds what is read around and inside them:
//! * [`Fields`], an object's members in order, looked up the way a `Value`
//!   map is (the last of repeated keys wins), for the event's shape and
//!   envelopes, where a typed parse would refuse repeated keys;
//! * [`Member`], a member that tells `null` apart from absent;
//! * [`kind`] and [`text`], a raw value's kind for messages that must not
//!   quote data, and its text when it is a string.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A raw value's kind, for error messages that must not quote data.
pub fn kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "a list",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// The text of a raw string, borrowed when it has no escapes; `None` when
/// it is not a string.
pub fn text(raw: &RawValue) -> Option<Cow<'_, str>> {
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(text) => Some(Cow::Borrowed(text)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    }
}

/// A raw list's items; `None` when it is not a list.
pub fn items(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// An object member that keeps `null` (`Some`, holding `null`) apart from
/// absent (`None`, with `#[serde(default)]`), unlike `Option<&RawValue>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Member<'a>(pub Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Member<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(deserializer).map(|raw| Self(Some(raw)))
    }
}

/// An object's members in input order, each value raw.
#[derive(Debug, Default)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The members of `raw`; `None` when it is not an object.
    pub fn of(raw: &'a RawValue) -> Option<Self> {
        serde_json::from_str(raw.get()).ok()
    }

    /// The member `name`; of repeated keys, the last, as in a `Value` map.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }

    /// Whether the member `name` is present (`null` counts).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// The members, in input order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.0.iter().map(|(key, value)| (key.as_ref(), *value))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(key)) = map.next_key()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Fields(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A member name, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E>(self, name: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn kinds_are_named_without_quoting_the_value() {
        for (text, want) in [
            ("null", "null"),
            ("true", "a boolean"),
            ("-1.5e3", "a number"),
            (r#""x""#, "a string"),
            ("[1]", "a list"),
            (r#"{"a":1}"#, "an object"),
        ] {
            assert_eq!(kind(&raw(text)), want, "{text}");
        }
    }

    #[test]
    fn text_is_borrowed_unless_it_has_escapes() {
        assert!(matches!(text(&raw(r#""ab""#)), Some(Cow::Borrowed("ab"))));
        assert_eq!(text(&raw(r#""a\nb""#)).as_deref(), Some("a\nb"));
        assert_eq!(text(&raw("5")), None);
    }

    #[test]
    fn fields_keep_null_apart_from_absent_and_the_last_repeated_key_wins() {
        let object = raw(r#"{"a":null,"b":1,"b":2,"c\u0064":3}"#);
        let fields = Fields::of(&object).unwrap();
        assert!(fields.has("a") && !fields.has("z"));
        assert_eq!(fields.get("a").map(RawValue::get), Some("null"));
        assert_eq!(fields.get("b").map(RawValue::get), Some("2"));
        assert_eq!(fields.get("cd").map(RawValue::get), Some("3"));
        assert!(Fields::of(&raw("[1]")).is_none());
    }
}
