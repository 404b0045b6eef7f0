//! Reading a Kinesis batch the project's one way
//! ([`lambda_stream_kit::lenient`]): the event's `Records` are kept as raw
//! JSON text, no tree built ([`KinesisBatch`]); each record is then parsed on
//! its own into [`Record`], its strings borrowed from the event; and when
//! that fails, only its coordinates (`eventID`, `kinesis.sequenceNumber`) are
//! read from the same text, so the failure can still be named and reported.
//!
//! The shapes are checked as the handler documents them. serde's derived
//! structs would also take a JSON array of their fields in order, which no
//! Kinesis event or record is, so every object here is read through
//! [`Object`], which takes a JSON object and nothing else.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use lambda_stream_kit::lenient::{self, Lenient};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Why a record cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is not a JSON object.
    #[error("record is not a JSON object")]
    NotAnObject,
    /// There is no `kinesis` object.
    #[error("record has no kinesis object")]
    MissingKinesis,
    /// A required `kinesis` field is absent or not a string.
    #[error("kinesis.{0} is missing or not a string")]
    MissingField(&'static str),
    /// `kinesis.data` is not standard base64.
    #[error("kinesis.data is not valid base64: {0}")]
    InvalidBase64(base64::DecodeError),
    /// The record has every field it needs and still does not parse (a
    /// field given twice, or a string that is not valid Unicode); the reason
    /// names the fault by category and position, never quoting the data.
    #[error("{0}")]
    Unparsed(String),
}

/// The Kinesis event as the runtime hands it over, each record kept as its
/// raw JSON text so that one bad record cannot fail the whole batch.
///
/// Any event reads: `records` is `None` when the event is not an object or
/// its `Records` is not an array, which the handler answers as not a batch.
#[derive(Debug, Default)]
pub struct KinesisBatch {
    /// The records; `None` when the event is not a Kinesis batch.
    pub records: Option<Vec<Box<RawValue>>>,
}

impl<'de> Deserialize<'de> for KinesisBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(rename = "Records", default, deserialize_with = "array")]
            records: Option<Vec<Box<RawValue>>>,
        }
        let Object(fields) = Object::<Fields>::deserialize(deserializer)?;
        Ok(Self {
            records: fields.and_then(|fields| fields.records),
        })
    }
}

/// A record that parsed: what the log line needs, borrowed from the event
/// where the JSON has no escapes.
#[derive(Debug, Deserialize)]
pub(crate) struct Record<'a> {
    #[serde(
        rename = "eventID",
        default,
        borrow,
        deserialize_with = "lenient::or_default"
    )]
    event_id: Option<Text<'a>>,
    /// The stream's fields.
    #[serde(borrow, deserialize_with = "object")]
    pub kinesis: Kinesis<'a>,
}

/// A parsed record's `kinesis` object.
#[derive(Debug, Deserialize)]
pub(crate) struct Kinesis<'a> {
    #[serde(
        rename = "partitionKey",
        default,
        borrow,
        deserialize_with = "lenient::or_default"
    )]
    partition_key: Option<Text<'a>>,
    /// The record's sequence number.
    #[serde(rename = "sequenceNumber", borrow)]
    pub sequence_number: Cow<'a, str>,
    /// The data, in base64.
    #[serde(borrow)]
    pub data: Cow<'a, str>,
    /// Fractional epoch seconds; `None` when absent or not a number.
    #[serde(
        rename = "approximateArrivalTimestamp",
        default,
        deserialize_with = "lenient::or_default"
    )]
    pub approximate_arrival_timestamp: Option<f64>,
}

impl<'a> Record<'a> {
    /// The part of `eventID` before the `:`.
    pub fn shard_id(&self) -> Option<&str> {
        let id = self.event_id.as_ref()?;
        split_event_id(&id.0).map(|(shard, _)| shard)
    }

    /// The partition key, when it is a string.
    pub fn partition_key(&self) -> Option<&str> {
        self.kinesis.partition_key.as_ref().map(|key| &*key.0)
    }

    /// This record, failed for `reason`.
    pub fn failed(self, reason: RecordError) -> Failure<'a> {
        Failure {
            sequence_number: Some(self.kinesis.sequence_number),
            event_id: self.event_id.map(|id| id.0),
            reason,
        }
    }
}

/// A record that could not be parsed, with what is known to name it.
#[derive(Debug)]
pub(crate) struct Failure<'a> {
    /// `kinesis.sequenceNumber`, else the one in `eventID`.
    pub sequence_number: Option<Cow<'a, str>>,
    /// `eventID`, when it is a string.
    pub event_id: Option<Cow<'a, str>>,
    /// Why it failed.
    pub reason: RecordError,
}

/// Reads one record: typed, or failing that, its coordinates and the first
/// of the documented faults it has.
pub(crate) fn read(raw: &RawValue) -> Result<Record<'_>, Failure<'_>> {
    if !is_object(raw) {
        return Err(Failure {
            sequence_number: None,
            event_id: None,
            reason: RecordError::NotAnObject,
        });
    }
    let (coordinates, unparsed) =
        match lenient::read::<Record<'_>, Option<Coordinates<'_>>>(raw, "record") {
            Lenient::Parsed(record) => return Ok(record),
            Lenient::Unparsed {
                coordinates: Some(coordinates),
                reason,
            } => (coordinates, reason),
            Lenient::Unparsed {
                coordinates: None,
                reason,
            } => {
                return Err(Failure {
                    sequence_number: None,
                    event_id: None,
                    reason: RecordError::Unparsed(reason),
                })
            }
        };
    let reason = match &coordinates.kinesis.0 {
        None => RecordError::MissingKinesis,
        Some(kinesis) if kinesis.sequence_number.is_none() => {
            RecordError::MissingField("sequenceNumber")
        }
        Some(kinesis) if kinesis.data.is_none() => RecordError::MissingField("data"),
        Some(_) => RecordError::Unparsed(unparsed),
    };
    Err(Failure {
        sequence_number: coordinates.sequence_number(),
        event_id: coordinates.event_id.map(|id| id.0),
        reason,
    })
}

/// The sequence number that names `raw`, read from its coordinates only.
pub(crate) fn sequence_number(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !is_object(raw) {
        return None;
    }
    serde_json::from_str::<Coordinates<'_>>(raw.get())
        .ok()?
        .sequence_number()
}

/// Whether `raw` is a JSON object: a `RawValue`'s text starts at its value,
/// with no whitespace before it.
fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

/// What is read of a record that does not parse: each field optional, and
/// one of the wrong type costs no other.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Coordinates<'a> {
    #[serde(rename = "eventID", borrow, deserialize_with = "lenient::or_default")]
    event_id: Option<Text<'a>>,
    #[serde(borrow)]
    kinesis: Object<KinesisCoordinates<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KinesisCoordinates<'a> {
    #[serde(
        rename = "sequenceNumber",
        borrow,
        deserialize_with = "lenient::or_default"
    )]
    sequence_number: Option<Text<'a>>,
    /// Read only to tell a missing `data` from another fault.
    #[serde(borrow, deserialize_with = "lenient::or_default")]
    data: Option<Text<'a>>,
}

impl<'a> Coordinates<'a> {
    /// `kinesis.sequenceNumber`, else the one in `eventID`.
    fn sequence_number(&self) -> Option<Cow<'a, str>> {
        if let Some(Text(sequence_number)) = self
            .kinesis
            .0
            .as_ref()
            .and_then(|kinesis| kinesis.sequence_number.as_ref())
        {
            return Some(sequence_number.clone());
        }
        match &self.event_id.as_ref()?.0 {
            Cow::Borrowed(id) => split_event_id(id).map(|(_, seq)| Cow::Borrowed(seq)),
            Cow::Owned(id) => split_event_id(id).map(|(_, seq)| Cow::Owned(seq.to_owned())),
        }
    }
}

/// `eventID` is `shardId-…:sequenceNumber`: its two parts, when it has
/// both.
fn split_event_id(id: &str) -> Option<(&str, &str)> {
    id.split_once(':').filter(|(_, seq)| !seq.is_empty())
}

/// A string borrowed from the event, or owned when the JSON escapes it
/// (`&str` cannot take an escaped string).
#[derive(Debug, Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON object read as `T`, or `None` for any other value.
#[derive(Debug)]
struct Object<T>(Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(Shaped::<T>::new(Shape::Object))
            .map(Object)
    }
}

/// `deserialize_with` for a field that must be a JSON object.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    Object::deserialize(deserializer)?
        .0
        .ok_or_else(|| de::Error::custom("not a JSON object"))
}

/// `deserialize_with` for a JSON array read as `T`, `None` for any other
/// value.
fn array<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_any(Shaped::<T>::new(Shape::Array))
}

/// The kind of compound JSON value a [`Shaped`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    Array,
}

/// Reads a JSON value of one [`Shape`] as `T`, and skips any other value,
/// giving `None`. Nothing is buffered: an object or array is handed to `T`
/// as it is read.
struct Shaped<T> {
    shape: Shape,
    value: PhantomData<T>,
}

impl<T> Shaped<T> {
    fn new(shape: Shape) -> Self {
        Self {
            shape,
            value: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Shaped<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match self.shape {
            Shape::Object => T::deserialize(MapAccessDeserializer::new(map)).map(Some),
            Shape::Array => IgnoredAny.visit_map(map).map(|_| None),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        match self.shape {
            Shape::Array => T::deserialize(SeqAccessDeserializer::new(seq)).map(Some),
            Shape::Object => IgnoredAny.visit_seq(seq).map(|_| None),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("valid JSON")
    }

    fn batch(text: &str) -> KinesisBatch {
        serde_json::from_str(text).expect("every JSON value reads as a batch")
    }

    #[test]
    fn any_event_reads_and_only_a_records_array_makes_a_batch() {
        let records = batch(r#"{"Records": [{"a": 1}, 2, "three"], "other": {}}"#).records;
        let texts: Vec<&str> = records.iter().flatten().map(|r| r.get()).collect();
        assert_eq!(texts, [r#"{"a": 1}"#, "2", r#""three""#]);
        for not_a_batch in [
            "{}",
            r#"{"Records": null}"#,
            r#"{"Records": {"0": {}}}"#,
            r#"{"Records": "[]"}"#,
            "[[{}]]",
            "\"Records\"",
            "null",
            "7",
        ] {
            assert!(batch(not_a_batch).records.is_none(), "{not_a_batch}");
        }
    }

    #[test]
    fn the_runtime_s_own_deserializer_reads_the_batch() {
        // lambda_runtime wraps serde_json in serde_path_to_error.
        let text = r#"{"Records": [{"kinesis": {}}, [1]]}"#;
        let batch: KinesisBatch =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
                .expect("reads");
        assert_eq!(batch.records.map(|r| r.len()), Some(2));
    }

    #[test]
    fn escaped_strings_are_read_and_plain_ones_borrowed() {
        let raw = raw(
            r#"{"eventID":"shard\u002D1:42","kinesis":{"sequenceNumber":"42","data":"YQ\/=","partitionKey":"p\"k"}}"#,
        );
        let record = read(&raw).expect("parses");
        assert_eq!(record.shard_id(), Some("shard-1"));
        assert_eq!(record.partition_key(), Some("p\"k"));
        assert_eq!(record.kinesis.data, "YQ/=");
        assert!(matches!(
            record.kinesis.sequence_number,
            Cow::Borrowed("42")
        ));
    }

    #[test]
    fn arrays_are_not_taken_for_objects() {
        let array = raw(r#"["shard:1", {"sequenceNumber":"1","data":""}]"#);
        let failure = read(&array).unwrap_err();
        assert_eq!(failure.reason, RecordError::NotAnObject);
        assert_eq!(failure.sequence_number, None);
        let kinesis_array = raw(r#"{"eventID":"s:9","kinesis":["1",""]}"#);
        let failure = read(&kinesis_array).unwrap_err();
        assert_eq!(failure.reason, RecordError::MissingKinesis);
        assert_eq!(failure.sequence_number.as_deref(), Some("9"));
        assert_eq!(
            sequence_number(&raw(r#"[{"kinesis":{"sequenceNumber":"1"}}]"#)),
            None
        );
    }

    #[test]
    fn a_record_with_its_fields_that_still_does_not_parse_keeps_its_name() {
        let twice = raw(
            r#"{"kinesis":{"sequenceNumber":"7","data":"","partitionKey":"a","partitionKey":"b"}}"#,
        );
        let failure = read(&twice).unwrap_err();
        assert_eq!(failure.sequence_number.as_deref(), Some("7"));
        let RecordError::Unparsed(reason) = failure.reason else {
            panic!("{:?}", failure.reason)
        };
        assert!(reason.starts_with("record does not parse: "), "{reason}");
    }

    #[test]
    fn odd_optional_fields_are_left_out_without_failing_the_record() {
        let odd = raw(
            r#"{"eventID":5,"kinesis":{"sequenceNumber":"1","data":"","partitionKey":[],"approximateArrivalTimestamp":"soon"}}"#,
        );
        let record = read(&odd).expect("parses");
        assert_eq!(record.shard_id(), None);
        assert_eq!(record.partition_key(), None);
        assert_eq!(record.kinesis.approximate_arrival_timestamp, None);
    }
}
