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
//! * [`List`] and [`list_member`], a member that should be a list, read in
//!   the same pass as what holds it;
//! * [`kind`] and [`text`], a raw value's kind for messages that must not
//!   quote data, and its text when it is a string.
//!
//! Every pass over raw text costs a scan of it, so lists are split into
//! their items while their holder is read, and a string is read once.
//! Measured with the enrich bench, side by side on one machine: a first
//! version that scanned the batch and each item several times cost about
//! 1.4× the floor per record; this one costs 1.08× (21.9 µs against a
//! 20.3 µs floor), where walking a `serde_json::Value` cost 1.08× as well.

use std::borrow::Cow;
use std::fmt;

use lambda_stream_kit::lenient::JsonKind;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A raw value's kind, for error messages that must not quote data; the
/// enricher's messages call an array a list.
pub fn kind(raw: &RawValue) -> &'static str {
    match JsonKind::of(raw) {
        JsonKind::Array => "a list",
        other => other.name(),
    }
}

/// The text of a raw string, borrowed when it has no escapes; `None` when
/// it is not a string.
pub fn text(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Text<'_>>(raw.get())
        .ok()
        .map(|text| text.0)
}

/// A member that should be a list: its items raw, or what it is instead
/// (`"absent"` by default).
#[derive(Debug)]
pub enum List<'a> {
    /// It is a list.
    Items(Vec<&'a RawValue>),
    /// It is not: its kind.
    Not(&'static str),
}

impl Default for List<'_> {
    fn default() -> Self {
        Self::Not("absent")
    }
}

impl<'a> List<'a> {
    /// The items, or what the member is instead.
    pub fn items(self) -> Result<Vec<&'a RawValue>, &'static str> {
        match self {
            Self::Items(items) => Ok(items),
            Self::Not(kind) => Err(kind),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for List<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = List<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(8));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List::Items(items))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(List::Not("an object"))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(List::Not("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(List::Not("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(List::Not("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(List::Not("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(List::Not("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(List::Not("a string"))
            }
        }
        deserializer.deserialize_any(Items)
    }
}

/// The member `name` of `object` as a list, in one pass over `object`: its
/// items raw, or what it is instead (`"absent"` also when `object` is not
/// an object). Of repeated keys, the last counts, as in a `Value` map.
pub fn list_member<'a>(
    object: &'a RawValue,
    name: &str,
) -> Result<Vec<&'a RawValue>, &'static str> {
    struct Member<'n>(&'n str);
    impl<'de> DeserializeSeed<'de> for Member<'_> {
        type Value = List<'de>;
        fn deserialize<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Member<'_> {
        type Value = List<'de>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut found = List::default();
            while let Some(Text(key)) = map.next_key()? {
                if key == self.0 {
                    found = map.next_value()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(object.get());
    Member(name)
        .deserialize(&mut deserializer)
        .unwrap_or_default()
        .items()
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
                while let Some(Text(key)) = map.next_key()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Fields(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A string (a member name, or a value), borrowed when it has no escapes:
/// read in one pass.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Chars;
        impl<'de> Visitor<'de> for Chars {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Chars)
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

    #[test]
    fn a_list_member_is_split_into_its_items_or_named_by_what_it_is() {
        let items = |text: &str| {
            list_member(&raw(text), "r")
                .map(|items| items.iter().map(|i| i.get().to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            items(r#"{"a":[9],"r":[1,{"b":2}]}"#),
            Ok(vec!["1".to_owned(), r#"{"b":2}"#.to_owned()])
        );
        assert_eq!(items(r#"{"r":[1],"r":null}"#), Err("null"));
        assert_eq!(items(r#"{"r":{"x":[]}}"#), Err("an object"));
        assert_eq!(items(r#"{"r":"x"}"#), Err("a string"));
        assert_eq!(items(r#"{"q":[]}"#), Err("absent"));
        assert_eq!(items("[[1]]"), Err("absent"));
    }
}
