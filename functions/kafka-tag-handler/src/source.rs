//! Records as the MSK and self-managed Kafka event source mappings deliver
//! them, parsed leniently.
//!
//! The event is `{"eventSource": "aws:kafka" | "SelfManagedKafka",
//! "records": {"<topic>-<partition>": [record…]}, …}`. Each record is read on
//! its own from its raw JSON, so one odd record cannot make the whole event
//! fail to parse: a bad key, value or header list becomes a per-record
//! [`BadRecord`]. Only what makes a record impossible to place (no offset,
//! no partition) or an event that is not a batch at all is an error for the
//! whole event, which the mapping then retries.
//!
//! Keys and values are base64 and may be absent. Headers are a list of
//! single-entry maps from name to an array of *signed* bytes (`[-61, -85]`
//! is "é"); they are turned back into bytes here.

use std::borrow::Cow;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::bad_record::{BadRecord, ErrorKind};

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
    key: Option<&'a Value>,
    value: Option<&'a Value>,
    headers: Option<&'a Value>,
    raw: &'a Value,
}

/// The batch, one list per topic-partition, each in offset order.
pub type Partitions<'a> = Vec<Vec<SourceRecord<'a>>>;

/// Splits the event into its topic-partitions. Errors describe why the
/// event is not a Kafka batch.
pub fn partitions(event: &Value) -> Result<Partitions<'_>, String> {
    let records = match event.get("records") {
        Some(Value::Object(records)) => records,
        Some(Value::Null) | None => {
            return Err(
                "a Kafka event needs a `records` object keyed by \"<topic>-<partition>\"".into(),
            )
        }
        Some(other) => {
            return Err(format!(
                "`records` must be an object keyed by \"<topic>-<partition>\", not {}",
                kind_of(other)
            ))
        }
    };
    let mut out = Vec::with_capacity(records.len());
    for (group, list) in records {
        let Value::Array(list) = list else {
            return Err(format!(
                "records[{group:?}] must be a list, not {}",
                kind_of(list)
            ));
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
    fn parse(raw: &'a Value, fallback: Option<(&'a str, i64)>) -> Result<Self, String> {
        let Value::Object(fields) = raw else {
            return Err(format!("a record must be an object, not {}", kind_of(raw)));
        };
        let offset = fields
            .get("offset")
            .and_then(Value::as_i64)
            .ok_or("the record has no integer offset")?;
        let topic = match (fields.get("topic").and_then(Value::as_str), fallback) {
            (Some(topic), _) => Cow::Borrowed(topic),
            (None, Some((topic, _))) => Cow::Borrowed(topic),
            (None, None) => return Err("the record has no topic".into()),
        };
        let partition = fields
            .get("partition")
            .and_then(Value::as_i64)
            .or(fallback.map(|(_, p)| p))
            .ok_or("the record has no integer partition")?;
        Ok(Self {
            topic,
            partition,
            offset,
            timestamp_ms: fields.get("timestamp").and_then(Value::as_i64),
            key: fields.get("key"),
            value: fields.get("value"),
            headers: fields.get("headers"),
            raw,
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
                let bytes = signed_bytes(bytes).ok_or_else(|| {
                    malformed(format!("header {name:?} is not an array of bytes"))
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

    /// The whole record as JSON, for logs.
    pub fn raw(&self) -> &'a Value {
        self.raw
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

fn decode(field: Option<&Value>, what: &str) -> Result<Option<Vec<u8>>, BadRecord> {
    match field {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Some)
            .map_err(|e| {
                BadRecord::new(
                    ErrorKind::InvalidBase64,
                    format!("the {what} is not base64: {e}"),
                )
            }),
        Some(other) => Err(malformed(format!(
            "the {what} must be a base64 string, not {}",
            kind_of(other)
        ))),
    }
}

fn raw_bytes(field: Option<&Value>) -> Option<Vec<u8>> {
    match field? {
        Value::Null => None,
        Value::String(text) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_else(|_| text.as_bytes().to_vec()),
        ),
        other => Some(other.to_string().into_bytes()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(records: Value) -> Value {
        json!({"eventSource": "aws:kafka", "records": records})
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
        assert!(partitions(&json!({"records": []}))
            .unwrap_err()
            .contains("not an array"));
        assert!(partitions(&json!({"Records": []})).is_err());
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
