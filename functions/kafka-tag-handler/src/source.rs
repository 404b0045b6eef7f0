//! Records as the MSK and self-managed Kafka event source mappings deliver
//! them, each read leniently.
//!
//! The event is `{"eventSource": "aws:kafka" | "SelfManagedKafka",
//! "records": {"<topic>-<partition>": [record…]}, …}`. It is read straight
//! from the invocation's JSON into [`Payload`], which keeps `records` as
//! raw JSON text (no `serde_json::Value` tree for the batch: that generic
//! tree cost more than tagging the records). [`partitions`] then splits it
//! into its lists and reads every record on its own with
//! [`lambda_stream_kit::lenient::read`]: as the typed record the mapping
//! sends, or, when a field has an unexpected type or a key is repeated,
//! field by field from the record's raw fields (of repeated keys the last
//! counts, as in a `serde_json::Value`). Either way one odd record cannot
//! make the whole event fail: a bad key, value or header list becomes a
//! per-record [`BadRecord`] when it is asked for. Only what makes a record
//! impossible to place (no offset, no partition) or an event that is not a
//! batch at all is an error for the whole event, which the mapping then
//! retries.
//!
//! Keys and values are base64 and may be absent. Headers are a list of
//! single-entry maps from name to an array of *signed* bytes (`[-61, -85]`
//! is "é"); they are turned back into bytes here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use chrono::{DateTime, Utc};
use lambda_stream_kit::lenient::JsonKind;
use lambda_stream_kit::lenient::{self, Lenient};
use lambda_stream_kit::redact;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
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

/// An event source mapping batch: its `records` as raw JSON text, read by
/// [`partitions`]. Other fields of the event are skipped.
#[derive(Debug, Clone)]
pub struct Batch {
    records: Box<RawValue>,
}

impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.records.get() == other.records.get()
    }
}

impl Payload {
    /// The payload of a JSON value (tests, tools): what the runtime's
    /// deserialization would give for its text.
    pub fn from_value(value: &Value) -> Self {
        // A `Value` deserializes into anything its text would, and the
        // payload accepts every shape: this cannot fail.
        Self::deserialize(value).unwrap_or(Self::Other("unreadable"))
    }
}

/// A record as the mapping sends it: the typed reading. (Text with
/// escapes, rare in these fields, is left to the field-by-field reading.)
#[derive(Debug, Deserialize)]
struct Record<'a> {
    topic: Option<&'a str>,
    partition: Option<i64>,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<&'a str>,
    value: Option<&'a str>,
    headers: Option<Headers>,
}

/// A header list: single-entry maps from name to signed bytes.
type Headers = Vec<BTreeMap<String, Vec<i64>>>;

/// A record that is not a [`Record`]: its fields, raw, each read on its own.
type RawFields<'a> = BTreeMap<String, &'a RawValue>;

/// A key, value or header list as its record has it: typed, or raw when the
/// typed reading could not take the record, so that its accessor can say
/// what is wrong with it.
#[derive(Debug, Clone)]
enum Field<'a, T> {
    Typed(T),
    Raw(&'a RawValue),
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
    key: Option<Field<'a, &'a str>>,
    value: Option<Field<'a, &'a str>>,
    headers: Option<Field<'a, Headers>>,
}

/// The batch, one list per topic-partition, each in offset order.
pub type Partitions<'a> = Vec<Vec<SourceRecord<'a>>>;

/// Splits the batch into its topic-partitions. Errors describe why the
/// event is not a Kafka batch.
pub fn partitions(batch: &Batch) -> Result<Partitions<'_>, String> {
    let groups = lists(&batch.records)?;
    let mut out = Vec::with_capacity(groups.len());
    for (group, list) in &groups {
        let list = list.as_ref().map_err(String::clone)?;
        let fallback = split_group(group);
        let mut parsed = list
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                SourceRecord::read(raw, fallback)
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

/// Each group's name and its records, or why it has none.
type Lists<'a> = Vec<(String, Result<Vec<&'a RawValue>, String>)>;

/// The lists of `records`, by group. A group that is not a list is an
/// error when its turn comes, so that the first problem in group order is
/// the one reported.
fn lists(records: &RawValue) -> Result<Lists<'_>, String> {
    // In one pass when every group is a list, as it is but in a broken event.
    if let Ok(groups) = serde_json::from_str::<BTreeMap<String, Vec<&RawValue>>>(records.get()) {
        return Ok(groups.into_iter().map(|(g, list)| (g, Ok(list))).collect());
    }
    let groups: BTreeMap<String, &RawValue> =
        serde_json::from_str(records.get()).map_err(|_| match kind_of_raw(records) {
            "null" => {
                "a Kafka event needs a `records` object keyed by \"<topic>-<partition>\"".to_owned()
            }
            kind => {
                format!("`records` must be an object keyed by \"<topic>-<partition>\", not {kind}")
            }
        })?;
    Ok(groups
        .into_iter()
        .map(|(group, list)| {
            let list = serde_json::from_str(list.get()).map_err(|_| {
                format!(
                    "records[{group:?}] must be a list, not {}",
                    kind_of_raw(list)
                )
            });
            (group, list)
        })
        .collect())
}

/// `("clicks-v2", 3)` for `"clicks-v2-3"`.
fn split_group(group: &str) -> Option<(&str, i64)> {
    let (topic, partition) = group.rsplit_once('-')?;
    Some((topic, partition.parse().ok()?))
}

impl<'a> SourceRecord<'a> {
    /// The record in `raw`, its topic and partition taken from the group
    /// (`fallback`) when it does not give them.
    fn read(raw: &'a RawValue, fallback: Option<(&str, i64)>) -> Result<Self, String> {
        let (topic, partition, mut record) =
            match lenient::read::<Record<'a>, RawFields<'a>>(raw, "record") {
                Lenient::Parsed(record) => (
                    record.topic.map(Cow::Borrowed),
                    record.partition,
                    Self {
                        topic: Cow::Borrowed(""),
                        partition: 0,
                        offset: record.offset,
                        timestamp_ms: record.timestamp,
                        key: record.key.map(Field::Typed),
                        value: record.value.map(Field::Typed),
                        headers: record.headers.map(Field::Typed),
                    },
                ),
                Lenient::Unparsed { coordinates, .. } => Self::loose(raw, &coordinates)?,
            };
        record.topic = match (topic, fallback) {
            (Some(topic), _) => topic,
            // The group's name is read afresh by each `partitions` call.
            (None, Some((topic, _))) => Cow::Owned(topic.to_owned()),
            (None, None) => return Err("the record has no topic".into()),
        };
        record.partition = partition
            .or(fallback.map(|(_, p)| p))
            .ok_or("the record has no integer partition")?;
        Ok(record)
    }

    /// A record that is not a [`Record`], read field by field: each field
    /// is taken when it has the expected type and left out otherwise, and
    /// key, value and headers are kept raw. Gives the topic and partition
    /// apart, as they may still come from the group.
    #[allow(clippy::type_complexity)]
    fn loose(
        raw: &'a RawValue,
        fields: &RawFields<'a>,
    ) -> Result<(Option<Cow<'a, str>>, Option<i64>, Self), String> {
        if !raw.get().starts_with('{') {
            return Err(format!(
                "a record must be an object, not {}",
                kind_of_raw(raw)
            ));
        }
        let int = |name: &str| {
            fields
                .get(name)
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
        };
        let given = |name: &str| fields.get(name).copied().filter(|raw| raw.get() != "null");
        let record = Self {
            topic: Cow::Borrowed(""),
            partition: 0,
            offset: int("offset").ok_or("the record has no integer offset")?,
            timestamp_ms: int("timestamp"),
            key: given("key").map(Field::Raw),
            value: given("value").map(Field::Raw),
            headers: given("headers").map(Field::Raw),
        };
        Ok((given("topic").and_then(text), int("partition"), record))
    }

    /// The record timestamp, when it is given and valid.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.timestamp_ms.and_then(DateTime::from_timestamp_millis)
    }

    /// The decoded key; `None` when the record has none.
    pub fn key(&self) -> Result<Option<Vec<u8>>, BadRecord> {
        decode(&self.key, "key")
    }

    /// The decoded value; `None` for a record without one (a tombstone).
    pub fn value(&self) -> Result<Option<Vec<u8>>, BadRecord> {
        decode(&self.value, "value")
    }

    /// The headers as bytes, in their original order.
    pub fn headers(&self) -> Result<Vec<(String, Vec<u8>)>, BadRecord> {
        let list = match &self.headers {
            None => return Ok(Vec::new()),
            Some(Field::Typed(list)) => Cow::Borrowed(list),
            Some(Field::Raw(raw)) => Cow::Owned(loose_headers(raw)?),
        };
        let mut out = Vec::with_capacity(list.len());
        for (index, entry) in list.iter().enumerate() {
            for (name, bytes) in entry {
                let bytes = signed_bytes(bytes).ok_or_else(|| not_bytes(index, name))?;
                out.push((name.clone(), bytes));
            }
        }
        Ok(out)
    }

    /// The key as it can best be kept in a dead letter: decoded, or the
    /// text as sent when it is not base64.
    pub fn raw_key(&self) -> Option<Vec<u8>> {
        raw_bytes(&self.key)
    }

    /// The value as it can best be kept in a dead letter.
    pub fn raw_value(&self) -> Option<Vec<u8>> {
        raw_bytes(&self.value)
    }
}

/// A header list that the typed reading could not take, read entry by
/// entry so that the error names the first bad one.
fn loose_headers(raw: &RawValue) -> Result<Headers, BadRecord> {
    let list: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| malformed(format!("headers must be a list, not {}", kind_of_raw(raw))))?;
    let mut out = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let entry: BTreeMap<String, &RawValue> = serde_json::from_str(entry.get())
            .map_err(|_| malformed(format!("headers[{index}] must be an object")))?;
        let entry = entry
            .into_iter()
            .map(|(name, bytes)| match serde_json::from_str(bytes.get()) {
                Ok(bytes) => Ok((name, bytes)),
                Err(_) => Err(not_bytes(index, &name)),
            })
            .collect::<Result<_, _>>()?;
        out.push(entry);
    }
    Ok(out)
}

/// The header's place, not its name: the name is input too, and may be as
/// long as the record.
fn not_bytes(index: usize, name: &str) -> BadRecord {
    malformed(format!(
        "headers[{index}] ({} bytes of name) is not an array of bytes",
        name.len()
    ))
}

/// A JSON string's text, borrowed unless it has escapes; `None` for any
/// other JSON value.
fn text(raw: &RawValue) -> Option<Cow<'_, str>> {
    match serde_json::from_str(raw.get()) {
        Ok(text) => Some(Cow::Borrowed(text)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    }
}

/// Converts Lambda's signed bytes (`-128..=127`) to bytes. Unsigned values
/// (`128..=255`) are accepted too, as some tools write them that way.
fn signed_bytes(numbers: &[i64]) -> Option<Vec<u8>> {
    numbers
        .iter()
        .map(|&n| match n {
            -128..=-1 => Some((n as i8) as u8),
            0..=255 => Some(n as u8),
            _ => None,
        })
        .collect()
}

/// The text of a key or value, or why it has none.
fn text_of<'f>(field: &'f Field<'_, &str>, what: &str) -> Result<Cow<'f, str>, BadRecord> {
    match field {
        Field::Typed(text) => Ok(Cow::Borrowed(text)),
        Field::Raw(raw) => text(raw).ok_or_else(|| {
            malformed(format!(
                "the {what} must be a base64 string, not {}",
                kind_of_raw(raw)
            ))
        }),
    }
}

fn decode(field: &Option<Field<'_, &str>>, what: &str) -> Result<Option<Vec<u8>>, BadRecord> {
    let Some(field) = field else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(text_of(field, what)?.as_bytes())
        .map(Some)
        // The offset only: base64's own message quotes the symbol.
        .map_err(|e| {
            BadRecord::new(
                ErrorKind::InvalidBase64,
                format!("the {what} is {}", redact::base64_error(&e)),
            )
        })
}

fn raw_bytes(field: &Option<Field<'_, &str>>) -> Option<Vec<u8>> {
    let text = match field.as_ref()? {
        Field::Typed(text) => Cow::Borrowed(*text),
        Field::Raw(raw) => match text(raw) {
            Some(text) => text,
            // Not text: written as a `Value` writes it (compact), as before.
            None => {
                let value = serde_json::from_str::<Value>(raw.get());
                return Some(
                    value
                        .map_or_else(|_| raw.get().into(), |v| v.to_string())
                        .into_bytes(),
                );
            }
        },
    };
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .unwrap_or_else(|_| text.as_bytes().to_vec()),
    )
}

fn malformed(message: String) -> BadRecord {
    BadRecord::new(ErrorKind::MalformedRecord, message)
}

/// The kind of JSON value, as the error messages name it.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    JsonKind::of_value(value).name()
}

/// What [`kind_of`] says of the value, from its first character.
fn kind_of_raw(raw: &RawValue) -> &'static str {
    JsonKind::of(raw).name()
}

// --- reading the payload ----------------------------------------------------

/// The payload's shape from the first token: an array is read as the
/// connector's values, an object for its `records` (kept raw), anything
/// else by its kind.
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
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "records" {
                        records = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
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
            // Header lists, good and bad, and text with escapes.
            prop::collection::vec(-200i64..300, 0..3)
                .prop_map(|bytes| json!([{"a\"é": bytes, "b": [97]}, {}])),
            Just(json!([{"x": [1.5]}, 3])),
            Just(json!("e30\"=")),
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

    /// The reading before records were read with `lenient::read`: the
    /// same rules applied to a parsed `Value`, accessors included (the
    /// code this module had, kept here as the reference).
    fn reference(event: &Value) -> Result<Vec<Vec<Reading>>, String> {
        fn given(v: Option<&Value>) -> Option<&Value> {
            v.filter(|v| !v.is_null())
        }
        let decode = |v: Option<&Value>, what: &str| match given(v) {
            None => Ok(None),
            Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Some)
                .map_err(|e| {
                    BadRecord::new(
                        ErrorKind::InvalidBase64,
                        format!("the {what} is {}", redact::base64_error(&e)),
                    )
                }),
            Some(other) => Err(malformed(format!(
                "the {what} must be a base64 string, not {}",
                kind_of(other)
            ))),
        };
        let raw = |v: Option<&Value>| {
            given(v).map(|v| match v {
                Value::String(text) => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap_or_else(|_| text.as_bytes().to_vec()),
                other => other.to_string().into_bytes(),
            })
        };
        let headers = |v: Option<&Value>| {
            let list = match given(v) {
                None => return Ok(Vec::new()),
                Some(Value::Array(list)) => list,
                Some(other) => {
                    return Err(malformed(format!(
                        "headers must be a list, not {}",
                        kind_of(other)
                    )))
                }
            };
            let mut out = Vec::new();
            for (index, entry) in list.iter().enumerate() {
                let Value::Object(entry) = entry else {
                    return Err(malformed(format!("headers[{index}] must be an object")));
                };
                for (name, bytes) in entry {
                    let bytes: Option<Vec<u8>> = bytes.as_array().and_then(|bytes| {
                        bytes
                            .iter()
                            .map(|b| match b.as_i64()? {
                                n @ -128..=-1 => Some((n as i8) as u8),
                                n @ 0..=255 => Some(n as u8),
                                _ => None,
                            })
                            .collect()
                    });
                    let bytes = bytes.ok_or_else(|| {
                        malformed(format!(
                            "headers[{index}] ({} bytes of name) is not an array of bytes",
                            name.len()
                        ))
                    })?;
                    out.push((name.clone(), bytes));
                }
            }
            Ok(out)
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
            for (index, raw_record) in list.iter().enumerate() {
                let fail = |e: &str| format!("records[{group:?}][{index}]: {e}");
                let Value::Object(fields) = raw_record else {
                    return Err(fail(&format!(
                        "a record must be an object, not {}",
                        kind_of(raw_record)
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
                let (key, value) = (fields.get("key"), fields.get("value"));
                parsed.push((
                    topic,
                    partition,
                    offset,
                    fields.get("timestamp").and_then(Value::as_i64),
                    decode(key, "key"),
                    decode(value, "value"),
                    headers(fields.get("headers")),
                    raw(key),
                    raw(value),
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
        /// latter), and every record reads as the `Value`-based reading
        /// read it, whether it took the typed or the field-by-field way.
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
