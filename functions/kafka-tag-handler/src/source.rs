//! Records as the MSK and self-managed Kafka event source mappings deliver
//! them, parsed leniently.
//!
//! The event is `{"eventSource": "aws:kafka" | "SelfManagedKafka",
//! "records": {"<topic>-<partition>": [record…]}, …}`. It is read straight
//! from the invocation's JSON into [`Payload`] (no `serde_json::Value` tree
//! for the batch: that generic tree cost more than tagging the records),
//! and every field is read whatever its type, so one odd record cannot make
//! the whole event fail to parse: a bad key, value or header list becomes a
//! per-record [`BadRecord`]. Only what makes a record impossible to place
//! (no offset, no partition) or an event that is not a batch at all is an
//! error for the whole event, which the mapping then retries. Of repeated
//! keys the last counts, as in a `serde_json::Value`.
//!
//! Keys and values are base64 and may be absent. Headers are a list of
//! single-entry maps from name to an array of *signed* bytes (`[-61, -85]`
//! is "é"); they are turned back into bytes here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use chrono::{DateTime, Utc};
use lambda_stream_kit::redact;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::bad_record::{BadRecord, ErrorKind};

/// An invocation's payload, by shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON array: a call from the Confluent sink connector.
    Connector(Vec<Value>),
    /// An object with `records`: an event source mapping batch.
    Batch(Batch),
    /// Anything else: an object without `records` (`"an object"`), or the
    /// kind of JSON value it is.
    Other(&'static str),
}

/// An event source mapping batch: its `records`, read leniently. Other
/// fields of the event are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    records: Lenient<BTreeMap<String, Lenient<Vec<Lenient<RawRecord>>>>>,
}

/// A value of the expected shape, or the kind of JSON value found instead.
#[derive(Debug, Clone, PartialEq)]
enum Lenient<T> {
    Expected(T),
    Null,
    Other(&'static str),
}

/// The fields of a record that the function reads.
#[derive(Debug, Clone, Default, PartialEq)]
struct RawRecord {
    topic: Field,
    partition: Field,
    offset: Field,
    timestamp: Field,
    key: Field,
    value: Field,
    headers: Option<Value>,
}

/// One record field, whatever its JSON type.
#[derive(Debug, Clone, Default, PartialEq)]
enum Field {
    #[default]
    Absent,
    Null,
    /// An integer that fits an `i64`.
    Int(i64),
    Text(String),
    /// Anything else (other numbers, booleans, arrays, objects).
    Other(Value),
}

impl Field {
    fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Absent | Self::Null => "null",
            Self::Int(_) => "a number",
            Self::Text(_) => "a string",
            Self::Other(value) => kind_of(value),
        }
    }
}

impl Payload {
    /// The payload of a JSON value (tests, tools): what the runtime's
    /// deserialization would give for its text.
    pub fn from_value(value: &Value) -> Self {
        // A `Value` deserializes into anything its text would, and the
        // lenient reading accepts every shape: this cannot fail.
        Self::deserialize(value).unwrap_or(Self::Other("unreadable"))
    }
}

/// One Kafka record of the batch.
#[derive(Debug, Clone)]
pub struct SourceRecord<'a> {
    /// The topic it was read from.
    pub topic: Cow<'a, str>,
    /// Its partition.
    pub partition: i64,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (epoch milliseconds), when given.
    pub timestamp_ms: Option<i64>,
    key: &'a Field,
    value: &'a Field,
    headers: Option<&'a Value>,
}

/// The batch, one list per topic-partition, each in offset order.
pub type Partitions<'a> = Vec<Vec<SourceRecord<'a>>>;

/// Splits the batch into its topic-partitions. Errors describe why the
/// event is not a Kafka batch.
pub fn partitions(batch: &Batch) -> Result<Partitions<'_>, String> {
    let records = match &batch.records {
        Lenient::Expected(records) => records,
        Lenient::Null => {
            return Err(
                "a Kafka event needs a `records` object keyed by \"<topic>-<partition>\"".into(),
            )
        }
        Lenient::Other(kind) => {
            return Err(format!(
                "`records` must be an object keyed by \"<topic>-<partition>\", not {kind}"
            ))
        }
    };
    let mut out = Vec::with_capacity(records.len());
    for (group, list) in records {
        let list = match list {
            Lenient::Expected(list) => list,
            Lenient::Null => return Err(format!("records[{group:?}] must be a list, not null")),
            Lenient::Other(kind) => {
                return Err(format!("records[{group:?}] must be a list, not {kind}"))
            }
        };
        let fallback = split_group(group);
        let mut parsed = list
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                SourceRecord::parse(raw, fallback)
                    .map_err(|e| format!("records[{group:?}][{index}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The mapping sends offsets in order; sorting makes "publish in
        // offset order" hold even for a hand-written event.
        parsed.sort_by_key(|r| r.offset);
        out.push(parsed);
    }
    Ok(out)
}

/// `("clicks-v2", 3)` for `"clicks-v2-3"`.
fn split_group(group: &str) -> Option<(&str, i64)> {
    let (topic, partition) = group.rsplit_once('-')?;
    Some((topic, partition.parse().ok()?))
}

impl<'a> SourceRecord<'a> {
    fn parse(
        raw: &'a Lenient<RawRecord>,
        fallback: Option<(&'a str, i64)>,
    ) -> Result<Self, String> {
        let fields = match raw {
            Lenient::Expected(fields) => fields,
            Lenient::Null => return Err("a record must be an object, not null".into()),
            Lenient::Other(kind) => return Err(format!("a record must be an object, not {kind}")),
        };
        let offset = fields
            .offset
            .as_i64()
            .ok_or("the record has no integer offset")?;
        let topic = match (fields.topic.as_str(), fallback) {
            (Some(topic), _) => Cow::Borrowed(topic),
            (None, Some((topic, _))) => Cow::Borrowed(topic),
            (None, None) => return Err("the record has no topic".into()),
        };
        let partition = fields
            .partition
            .as_i64()
            .or(fallback.map(|(_, p)| p))
            .ok_or("the record has no integer partition")?;
        Ok(Self {
            topic,
            partition,
            offset,
            timestamp_ms: fields.timestamp.as_i64(),
            key: &fields.key,
            value: &fields.value,
            headers: fields.headers.as_ref(),
        })
    }

    /// The record timestamp, when it is given and valid.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.timestamp_ms.and_then(DateTime::from_timestamp_millis)
    }

    /// The decoded key; `None` when the record has none.
    pub fn key(&self) -> Result<Option<Vec<u8>>, BadRecord> {
        decode(self.key, "key")
    }

    /// The decoded value; `None` for a record without one (a tombstone).
    pub fn value(&self) -> Result<Option<Vec<u8>>, BadRecord> {
        decode(self.value, "value")
    }

    /// The headers as bytes, in their original order.
    pub fn headers(&self) -> Result<Vec<(String, Vec<u8>)>, BadRecord> {
        let list = match self.headers {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(malformed(format!(
                    "headers must be a list, not {}",
                    kind_of(other)
                )))
            }
        };
        let mut out = Vec::with_capacity(list.len());
        for (index, entry) in list.iter().enumerate() {
            let Value::Object(entry) = entry else {
                return Err(malformed(format!("headers[{index}] must be an object")));
            };
            for (name, bytes) in entry {
                // The header's place, not its name: the name is input too,
                // and may be as long as the record.
                let bytes = signed_bytes(bytes).ok_or_else(|| {
                    malformed(format!(
                        "headers[{index}] ({} bytes of name) is not an array of bytes",
                        name.len()
                    ))
                })?;
                out.push((name.clone(), bytes));
            }
        }
        Ok(out)
    }

    /// The key as it can best be kept in a dead letter: decoded, or the
    /// text as sent when it is not base64.
    pub fn raw_key(&self) -> Option<Vec<u8>> {
        raw_bytes(self.key)
    }

    /// The value as it can best be kept in a dead letter.
    pub fn raw_value(&self) -> Option<Vec<u8>> {
        raw_bytes(self.value)
    }
}

/// Converts Lambda's signed bytes (`-128..=127`) to bytes. Unsigned values
/// (`128..=255`) are accepted too, as some tools write them that way.
fn signed_bytes(value: &Value) -> Option<Vec<u8>> {
    value
        .as_array()?
        .iter()
        .map(|b| {
            let n = b.as_i64()?;
            match n {
                -128..=-1 => Some((n as i8) as u8),
                0..=255 => Some(n as u8),
                _ => None,
            }
        })
        .collect()
}

fn decode(field: &Field, what: &str) -> Result<Option<Vec<u8>>, BadRecord> {
    match field {
        Field::Absent | Field::Null => Ok(None),
        Field::Text(text) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Some)
            // The offset only: base64's own message quotes the symbol.
            .map_err(|e| {
                BadRecord::new(
                    ErrorKind::InvalidBase64,
                    format!("the {what} is {}", redact::base64_error(&e)),
                )
            }),
        other => Err(malformed(format!(
            "the {what} must be a base64 string, not {}",
            other.kind()
        ))),
    }
}

fn raw_bytes(field: &Field) -> Option<Vec<u8>> {
    match field {
        Field::Absent | Field::Null => None,
        Field::Text(text) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_else(|_| text.as_bytes().to_vec()),
        ),
        Field::Int(n) => Some(n.to_string().into_bytes()),
        Field::Other(value) => Some(value.to_string().into_bytes()),
    }
}

fn malformed(message: String) -> BadRecord {
    BadRecord::new(ErrorKind::MalformedRecord, message)
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// --- reading the payload ----------------------------------------------------

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PayloadVisitor;
        impl<'de> Visitor<'de> for PayloadVisitor {
            type Value = Payload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Payload, A::Error> {
                Vec::<Value>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(Payload::Connector)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
                let mut records = None;
                while let Some(key) = map.next_key::<FieldName>()? {
                    match key {
                        FieldName::Records => records = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(match records {
                    Some(records) => Payload::Batch(Batch { records }),
                    None => Payload::Other("an object"),
                })
            }
            fn visit_bool<E>(self, _: bool) -> Result<Payload, E> {
                Ok(Payload::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Payload, E> {
                Ok(Payload::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Payload, E> {
                Ok(Payload::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Payload, E> {
                Ok(Payload::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Payload, E> {
                Ok(Payload::Other("a string"))
            }
            fn visit_unit<E>(self) -> Result<Payload, E> {
                Ok(Payload::Other("null"))
            }
        }
        deserializer.deserialize_any(PayloadVisitor)
    }
}

/// The keys the reading looks at; everything else is skipped unread.
enum FieldName {
    Records,
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
    Other,
}

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = FieldName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, name: &str) -> Result<FieldName, E> {
                Ok(match name {
                    "records" => FieldName::Records,
                    "topic" => FieldName::Topic,
                    "partition" => FieldName::Partition,
                    "offset" => FieldName::Offset,
                    "timestamp" => FieldName::Timestamp,
                    "key" => FieldName::Key,
                    "value" => FieldName::Value,
                    "headers" => FieldName::Headers,
                    _ => FieldName::Other,
                })
            }
        }
        deserializer.deserialize_identifier(NameVisitor)
    }
}

/// Whether a type is read from a JSON object or from an array.
trait Shape {
    const OBJECT: bool;
}

impl<T> Shape for BTreeMap<String, T> {
    const OBJECT: bool = true;
}

impl<T> Shape for Vec<T> {
    const OBJECT: bool = false;
}

impl Shape for RawRecord {
    const OBJECT: bool = true;
}

/// Reads `T` from an object or an array, as `T` expects, and any other JSON
/// value as its kind.
impl<'de, T: Deserialize<'de> + Shape> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Shape> Visitor<'de> for LenientVisitor<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lenient<T>, A::Error> {
                if T::OBJECT {
                    T::deserialize(de::value::MapAccessDeserializer::new(map))
                        .map(Lenient::Expected)
                } else {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(Lenient::Other("an object"))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient<T>, A::Error> {
                if T::OBJECT {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Lenient::Other("an array"))
                } else {
                    T::deserialize(de::value::SeqAccessDeserializer::new(seq))
                        .map(Lenient::Expected)
                }
            }
            fn visit_bool<E>(self, _: bool) -> Result<Lenient<T>, E> {
                Ok(Lenient::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Lenient<T>, E> {
                Ok(Lenient::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Lenient<T>, E> {
                Ok(Lenient::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Lenient<T>, E> {
                Ok(Lenient::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Lenient<T>, E> {
                Ok(Lenient::Other("a string"))
            }
            fn visit_unit<E>(self) -> Result<Lenient<T>, E> {
                Ok(Lenient::Null)
            }
        }
        deserializer.deserialize_any(LenientVisitor(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for RawRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = RawRecord;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRecord, A::Error> {
                let mut record = RawRecord::default();
                while let Some(key) = map.next_key::<FieldName>()? {
                    // Of repeated keys the last counts, as in a `Value`.
                    match key {
                        FieldName::Topic => record.topic = map.next_value()?,
                        FieldName::Partition => record.partition = map.next_value()?,
                        FieldName::Offset => record.offset = map.next_value()?,
                        FieldName::Timestamp => record.timestamp = map.next_value()?,
                        FieldName::Key => record.key = map.next_value()?,
                        FieldName::Value => record.value = map.next_value()?,
                        FieldName::Headers => record.headers = Some(map.next_value()?),
                        FieldName::Records | FieldName::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(record)
            }
        }
        deserializer.deserialize_map(RecordVisitor)
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Field, E> {
                Ok(Field::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Field, E> {
                Ok(Field::Text(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
                Ok(Field::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
                Ok(i64::try_from(v).map_or(Field::Other(Value::from(v)), Field::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Field, E> {
                Ok(Field::Other(Value::from(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Field, E> {
                Ok(Field::Other(Value::Bool(v)))
            }
            fn visit_unit<E>(self) -> Result<Field, E> {
                Ok(Field::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Field::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Field::Other)
            }
        }
        deserializer.deserialize_any(FieldVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The batch of an event with these `records`.
    fn event(records: Value) -> Batch {
        batch(json!({"eventSource": "aws:kafka", "records": records}))
    }

    fn batch(event: Value) -> Batch {
        match Payload::from_value(&event) {
            Payload::Batch(batch) => batch,
            other => panic!("not a batch: {other:?}"),
        }
    }

    #[test]
    fn records_are_grouped_per_partition_in_offset_order() {
        let e = event(json!({
            "clicks-v2-0": [
                {"topic": "clicks-v2", "partition": 0, "offset": 8, "value": "e30="},
                {"topic": "clicks-v2", "partition": 0, "offset": 7, "value": "e30="}
            ],
            "clicks-v2-1": [{"topic": "clicks-v2", "partition": 1, "offset": 3}]
        }));
        let parts = partitions(&e).unwrap();
        let offsets: Vec<Vec<i64>> = parts
            .iter()
            .map(|p| p.iter().map(|r| r.offset).collect())
            .collect();
        assert_eq!(offsets, vec![vec![7, 8], vec![3]]);
        assert_eq!(parts[1][0].topic, "clicks-v2");
        assert_eq!(parts[1][0].value().unwrap(), None);
    }

    #[test]
    fn topic_and_partition_fall_back_to_the_group_key() {
        let e = event(json!({"page-visits-4": [{"offset": 1}]}));
        let parts = partitions(&e).unwrap();
        assert_eq!(
            (parts[0][0].topic.as_ref(), parts[0][0].partition),
            ("page-visits", 4)
        );
    }

    #[test]
    fn a_record_without_an_offset_fails_the_whole_event() {
        let err = partitions(&event(json!({"t-0": [{"topic": "t", "partition": 0}]}))).unwrap_err();
        assert!(
            err.contains("records[\"t-0\"][0]") && err.contains("offset"),
            "{err}"
        );
        assert!(partitions(&batch(json!({"records": []})))
            .unwrap_err()
            .contains("not an array"));
        assert!(partitions(&batch(json!({"records": null})))
            .unwrap_err()
            .contains("needs a `records` object"));
        assert!(partitions(&event(json!({"t-0": {"offset": 1}})))
            .unwrap_err()
            .contains("records[\"t-0\"] must be a list, not an object"));
        assert!(partitions(&event(json!({"t-0": [7]})))
            .unwrap_err()
            .contains("a record must be an object, not a number"));
        assert_eq!(
            Payload::from_value(&json!({"Records": []})),
            Payload::Other("an object")
        );
    }

    #[test]
    fn negative_header_bytes_become_the_original_bytes() {
        let e = event(json!({"t-0": [{"offset": 1, "headers": [
            {"lang": [-61, -87]},
            {"trace": [97, 98]}
        ]}]}));
        let parts = partitions(&e).unwrap();
        assert_eq!(
            parts[0][0].headers().unwrap(),
            vec![
                ("lang".to_owned(), "é".as_bytes().to_vec()),
                ("trace".to_owned(), b"ab".to_vec())
            ]
        );
    }

    #[test]
    fn malformed_headers_and_keys_are_per_record_problems() {
        let e = event(json!({"t-0": [
            {"offset": 1, "headers": [{"x": "text"}]},
            {"offset": 2, "key": 42},
            {"offset": 3, "value": "%%%"}
        ]}));
        let parts = partitions(&e).unwrap();
        assert_eq!(
            parts[0][0].headers().unwrap_err().kind,
            ErrorKind::MalformedRecord
        );
        assert_eq!(
            parts[0][1].key().unwrap_err().kind,
            ErrorKind::MalformedRecord
        );
        assert_eq!(
            parts[0][2].value().unwrap_err().kind,
            ErrorKind::InvalidBase64
        );
        assert_eq!(parts[0][2].raw_value(), Some(b"%%%".to_vec()));
    }
}

#[cfg(test)]
mod reading_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_payload_shape_is_recognised() {
        assert_eq!(
            Payload::from_value(&json!([{"a": 1}])),
            Payload::Connector(vec![json!({"a": 1})])
        );
        for (value, kind) in [
            (json!("text"), "a string"),
            (json!(null), "null"),
            (json!(1.5), "a number"),
            (json!(true), "a boolean"),
            (json!({"eventSource": "aws:kafka"}), "an object"),
        ] {
            assert_eq!(Payload::from_value(&value), Payload::Other(kind));
        }
    }

    #[test]
    fn odd_fields_are_kept_as_they_came_and_repeated_keys_keep_the_last() {
        let text = r#"{"records": {"t-0": [
            {"offset": 1, "offset": 2, "key": {"a": [1, 2]}, "value": 18446744073709551615,
             "partition": "0", "timestamp": 1.5, "extra": {"deep": [null]}}
        ], "t-0": [{"offset": 9}]}}"#;
        let Payload::Batch(batch) = serde_json::from_str(text).unwrap() else {
            panic!("not a batch");
        };
        let parts = partitions(&batch).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].len(), 1);
        assert_eq!(parts[0][0].offset, 9);

        let text = r#"{"records": {"t-3": [
            {"offset": 1, "offset": 2, "key": {"a": [1, 2]}, "value": 18446744073709551615,
             "partition": "0", "timestamp": 1.5}
        ]}}"#;
        let Payload::Batch(batch) = serde_json::from_str(text).unwrap() else {
            panic!("not a batch");
        };
        let parts = partitions(&batch).unwrap();
        let record = &parts[0][0];
        assert_eq!(
            (record.offset, record.partition, record.timestamp_ms),
            (2, 3, None)
        );
        assert_eq!(record.raw_key(), Some(br#"{"a":[1,2]}"#.to_vec()));
        assert_eq!(record.raw_value(), Some(b"18446744073709551615".to_vec()));
        assert_eq!(
            record.value().unwrap_err().message,
            "the value must be a base64 string, not a number"
        );
        assert_eq!(
            record.key().unwrap_err().message,
            "the key must be a base64 string, not an object"
        );
    }

    /// Event-like JSON: `records` of every shape, records with the fields
    /// the reading looks at (and one it skips) holding values of every type.
    fn events() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let field = prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            "[a-z0-9=]{0,4}".prop_map(Value::from),
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!([])),
            Just(json!({"a": [1, -2]})),
            prop::collection::vec(-200i64..300, 0..3).prop_map(Value::from),
        ];
        let name = prop::sample::select(vec![
            "offset",
            "partition",
            "topic",
            "key",
            "value",
            "timestamp",
            "headers",
            "records",
            "x",
        ]);
        let record = prop_oneof![
            8 => prop::collection::btree_map(name, field, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            1 => Just(json!(7)),
            1 => Just(Value::Null),
        ];
        let group = prop_oneof![
            8 => prop::collection::vec(record, 0..3).prop_map(Value::from),
            1 => Just(Value::Null),
            1 => Just(json!({})),
        ];
        let records = prop_oneof![
            8 => prop::collection::btree_map("t-[0-2]|x", group, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            1 => Just(json!([])),
            1 => Just(Value::Null),
            1 => Just(json!("text")),
        ];
        records.prop_map(|records| json!({"eventSource": "aws:kafka", "records": records}))
    }

    /// What one record reads as: everything the handler asks of it.
    type Reading = (
        String,
        i64,
        i64,
        Option<i64>,
        Result<Option<Vec<u8>>, BadRecord>,
        Result<Option<Vec<u8>>, BadRecord>,
        Result<Vec<(String, Vec<u8>)>, BadRecord>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );

    fn readings(batch: &Batch) -> Result<Vec<Vec<Reading>>, String> {
        Ok(partitions(batch)?
            .iter()
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        (
                            r.topic.to_string(),
                            r.partition,
                            r.offset,
                            r.timestamp_ms,
                            r.key(),
                            r.value(),
                            r.headers(),
                            r.raw_key(),
                            r.raw_value(),
                        )
                    })
                    .collect()
            })
            .collect())
    }

    /// The reading before `Payload`: the same rules applied to a parsed
    /// `Value` (the code this module had, kept here as the reference).
    fn reference(event: &Value) -> Result<Vec<Vec<Reading>>, String> {
        let field = |v: Option<&Value>| -> Field {
            match v {
                None => Field::Absent,
                Some(Value::Null) => Field::Null,
                Some(Value::String(s)) => Field::Text(s.clone()),
                Some(other) => other
                    .as_i64()
                    .map_or(Field::Other(other.clone()), Field::Int),
            }
        };
        let records = match event.get("records") {
            Some(Value::Object(records)) => records,
            Some(Value::Null) | None => {
                return Err(
                    "a Kafka event needs a `records` object keyed by \"<topic>-<partition>\""
                        .into(),
                )
            }
            Some(other) => {
                return Err(format!(
                    "`records` must be an object keyed by \"<topic>-<partition>\", not {}",
                    kind_of(other)
                ))
            }
        };
        let mut out = Vec::new();
        for (group, list) in records {
            let Value::Array(list) = list else {
                return Err(format!(
                    "records[{group:?}] must be a list, not {}",
                    kind_of(list)
                ));
            };
            let fallback = split_group(group);
            let mut parsed = Vec::new();
            for (index, raw) in list.iter().enumerate() {
                let fail = |e: &str| format!("records[{group:?}][{index}]: {e}");
                let Value::Object(fields) = raw else {
                    return Err(fail(&format!(
                        "a record must be an object, not {}",
                        kind_of(raw)
                    )));
                };
                let offset = fields
                    .get("offset")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| fail("the record has no integer offset"))?;
                let topic = match (fields.get("topic").and_then(Value::as_str), fallback) {
                    (Some(topic), _) => topic.to_owned(),
                    (None, Some((topic, _))) => topic.to_owned(),
                    (None, None) => return Err(fail("the record has no topic")),
                };
                let partition = fields
                    .get("partition")
                    .and_then(Value::as_i64)
                    .or(fallback.map(|(_, p)| p))
                    .ok_or_else(|| fail("the record has no integer partition"))?;
                let (key, value) = (field(fields.get("key")), field(fields.get("value")));
                let record = SourceRecord {
                    topic: Cow::Owned(topic),
                    partition,
                    offset,
                    timestamp_ms: fields.get("timestamp").and_then(Value::as_i64),
                    key: &key,
                    value: &value,
                    headers: fields.get("headers"),
                };
                parsed.push((
                    record.topic.to_string(),
                    partition,
                    offset,
                    record.timestamp_ms,
                    record.key(),
                    record.value(),
                    record.headers(),
                    record.raw_key(),
                    record.raw_value(),
                ));
            }
            parsed.sort_by_key(|r| r.2);
            out.push(parsed);
        }
        Ok(out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Reading the payload from text gives what reading it from a
        /// parsed `Value` gives (the tests and the fuzz target use the
        /// latter), and what the `Value`-based reading gave.
        #[test]
        fn text_and_value_give_the_same_payload(event in events()) {
            let from_text: Payload = serde_json::from_str(&event.to_string()).unwrap();
            let from_value = Payload::from_value(&event);
            proptest::prop_assert_eq!(&from_text, &from_value);
            let Payload::Batch(batch) = &from_text else {
                return Err(proptest::test_runner::TestCaseError::fail("the events all have `records`"));
            };
            proptest::prop_assert_eq!(readings(batch), reference(&event));
        }
    }
}
