//! One DynamoDB stream record: read leniently, mapped to its Kafka record,
//! or set aside with a reason and turned into its dead letter.
//!
//! A record is poison when it can never be published: it does not parse,
//! its image is missing or malformed, its `eventName` is unknown, or it has
//! no `SequenceNumber`. Poison goes to `DEAD_LETTER_TOPIC` when one is set,
//! with the reason in headers; without one it is reported, and the
//! mapping's retry limit and on-failure destination take it out of the
//! shard, so it cannot block it forever.

use std::collections::BTreeMap;

use aws_lambda_events::dynamodb::EventRecord;
use lambda_stream_kit::dynamodb::{attribute_text, item_to_json};
use lambda_stream_kit::kafka::{Delivery, OutgoingRecord};
use lambda_stream_kit::lenient::{self, Lenient};
use lambda_stream_kit::pipeline::{
    Mapped, Position, RecordHandler, Rejection, Sink, REJECTED_BY_BROKER, TOO_LARGE,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::{Config, KNOWN_EVENT_NAMES};

/// The kind of every poison record (the reason says which fault).
const MALFORMED: &str = "malformed-record";

/// Kafka header names set on every published record.
pub mod header {
    /// The DynamoDB `eventID`, unique per change: consumers deduplicate on it.
    pub const EVENT_ID: &str = "ddb-event-id";
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub const EVENT_NAME: &str = "ddb-event-name";
    /// The stream sequence number.
    pub const SEQUENCE_NUMBER: &str = "ddb-sequence-number";
    /// The stream ARN (`eventSourceARN`).
    pub const SOURCE_ARN: &str = "ddb-source-arn";
    /// Dead letters only: why the record could not be published.
    pub const DLQ_REASON: &str = "dlq-reason";
    /// Dead letters only: the topic the record was meant for.
    pub const DLQ_TOPIC: &str = "dlq-intended-topic";
}

/// One stream record as it came, and as far as it could be read.
#[derive(Debug)]
pub struct ChangeRecord<'a> {
    raw: &'a RawValue,
    read: Lenient<EventRecord, Coordinates>,
}

/// What can be had of a record that does not parse, field by field.
#[derive(Debug, Default, Deserialize)]
struct Coordinates {
    #[serde(rename = "eventID", default, deserialize_with = "lenient::text")]
    event_id: Option<String>,
    #[serde(rename = "eventName", default, deserialize_with = "lenient::text")]
    event_name: Option<String>,
    #[serde(rename = "eventSourceARN", default, deserialize_with = "lenient::text")]
    source_arn: Option<String>,
    #[serde(default, deserialize_with = "lenient::or_default")]
    dynamodb: StreamCoordinates,
}

#[derive(Debug, Default, Deserialize)]
struct StreamCoordinates {
    #[serde(rename = "SequenceNumber", default, deserialize_with = "lenient::text")]
    sequence_number: Option<String>,
}

impl<'a> ChangeRecord<'a> {
    /// Reads one record of the batch.
    pub fn read(raw: &'a RawValue) -> Self {
        Self {
            raw,
            read: lenient::read(raw, "record"),
        }
    }

    fn sequence_number(&self) -> Option<&str> {
        match &self.read {
            Lenient::Parsed(record) => record.change.sequence_number.as_deref(),
            Lenient::Unparsed { coordinates, .. } => {
                coordinates.dynamodb.sequence_number.as_deref()
            }
        }
    }

    fn event_id(&self) -> Option<&str> {
        match &self.read {
            Lenient::Parsed(record) => Some(&record.event_id),
            Lenient::Unparsed { coordinates, .. } => coordinates.event_id.as_deref(),
        }
    }

    fn event_name(&self) -> Option<&str> {
        match &self.read {
            Lenient::Parsed(record) => Some(&record.event_name),
            Lenient::Unparsed { coordinates, .. } => coordinates.event_name.as_deref(),
        }
    }

    fn source_arn(&self) -> Option<&str> {
        match &self.read {
            Lenient::Parsed(record) => record.event_source_arn.as_deref(),
            Lenient::Unparsed { coordinates, .. } => coordinates.source_arn.as_deref(),
        }
    }
}

/// The function's [`RecordHandler`]: stream records to Kafka records.
#[derive(Debug)]
pub struct Changes<'a, S: ?Sized> {
    /// The settings.
    pub config: &'a Config,
    /// Where dead letters go, for their size limit.
    pub sink: &'a S,
}

impl<'a, S: Sink + ?Sized> RecordHandler for Changes<'a, S> {
    type Record = ChangeRecord<'a>;

    fn position(&self, record: &ChangeRecord<'a>) -> Position {
        Position::stream(
            record.sequence_number().map(str::to_owned),
            record.event_id().map(str::to_owned),
        )
    }

    fn map(&self, record: &ChangeRecord<'a>) -> Mapped {
        let parsed = match &record.read {
            Lenient::Parsed(parsed) => parsed,
            Lenient::Unparsed { reason, .. } => {
                return Mapped::DeadLetter(Rejection::new(MALFORMED, reason.as_str()))
            }
        };
        let built = build_record(parsed, self.config);
        if record.sequence_number().is_none() && !matches!(built, Ok(None)) {
            return Mapped::DeadLetter(Rejection::new(MALFORMED, "record has no SequenceNumber"));
        }
        match built {
            Ok(None) => Mapped::Skip(None),
            Ok(Some((_, out))) => Mapped::Publish(out),
            Err(reason) => Mapped::DeadLetter(Rejection::new(MALFORMED, reason)),
        }
    }

    fn dead_letter(&self, record: &ChangeRecord<'a>, why: &Rejection) -> OutgoingRecord {
        dead_letter(record, why, self.config, self.sink)
    }

    fn published(&self, record: &ChangeRecord<'a>, topic: &str, delivery: Delivery) {
        tracing::info!(
            topic,
            partition = delivery.partition,
            offset = delivery.offset,
            sequence_number = record.sequence_number().unwrap_or(""),
            event_id = record.event_id().unwrap_or(""),
            "acknowledged"
        );
    }
}

/// The Kafka record for a stream record, with its key; `None` when its
/// `eventName` is not forwarded.
fn build_record(
    record: &EventRecord,
    config: &Config,
) -> Result<Option<(Vec<u8>, OutgoingRecord)>, String> {
    let name = record.event_name.as_str();
    if !KNOWN_EVENT_NAMES.contains(&name) {
        return Err(format!("unknown eventName {name:?}"));
    }
    if !config.event_names.iter().any(|n| n == name) {
        return Ok(None);
    }
    let change = &record.change;
    let image = match name {
        "REMOVE" if !change.old_image.is_empty() => &change.old_image,
        "REMOVE" => &change.keys,
        _ if change.new_image.is_empty() => {
            return Err(format!(
                "{name} record has no NewImage: the stream view type must be NEW_IMAGE or NEW_AND_OLD_IMAGES"
            ))
        }
        _ => &change.new_image,
    };
    let value = item_to_json(image).map_err(|e| format!("cannot unmarshal the image: {e}"))?;
    let key = match image.get(&config.key_attribute) {
        Some(attribute) => attribute_text(attribute)
            .map_err(|e| format!("cannot read key attribute {}: {e}", config.key_attribute))?
            .into_bytes(),
        None => item_to_json(&change.keys).map_err(|e| format!("cannot unmarshal Keys: {e}"))?,
    };
    let mut headers = BTreeMap::new();
    headers.insert(
        header::EVENT_ID.to_owned(),
        record.event_id.clone().into_bytes(),
    );
    headers.insert(header::EVENT_NAME.to_owned(), name.as_bytes().to_vec());
    if let Some(sequence_number) = &change.sequence_number {
        headers.insert(
            header::SEQUENCE_NUMBER.to_owned(),
            sequence_number.clone().into_bytes(),
        );
    }
    if let Some(arn) = &record.event_source_arn {
        headers.insert(header::SOURCE_ARN.to_owned(), arn.clone().into_bytes());
    }
    let created = change.approximate_creation_date_time;
    let timestamp = (created.timestamp_millis() != 0).then_some(created);
    Ok(Some((
        key.clone(),
        OutgoingRecord {
            key: Some(key),
            value: Some(value),
            headers,
            timestamp,
        },
    )))
}

/// The headers a dead letter keeps even as a stub.
const ESSENTIAL_HEADERS: [&str; 5] = [
    header::DLQ_REASON,
    header::DLQ_TOPIC,
    header::EVENT_ID,
    header::EVENT_NAME,
    header::SEQUENCE_NUMBER,
];

/// The dead letter for a poison record: the original stream record as
/// value, the reason and the coordinates in headers; when that is too large
/// to send, the shared stub ([`Sink::fit_dead_letter`]) without the value,
/// marked with the original size. Its key is the record's own key when the
/// record could be built (it is too large, or the broker refused it), else
/// the event id.
fn dead_letter(
    record: &ChangeRecord<'_>,
    why: &Rejection,
    config: &Config,
    sink: &(impl Sink + ?Sized),
) -> OutgoingRecord {
    let mut headers = BTreeMap::new();
    headers.insert(
        header::DLQ_REASON.to_owned(),
        why.message.as_bytes().to_vec(),
    );
    headers.insert(
        header::DLQ_TOPIC.to_owned(),
        config.topic.clone().into_bytes(),
    );
    for (name, value) in [
        (header::EVENT_ID, record.event_id()),
        (header::EVENT_NAME, record.event_name()),
        (header::SEQUENCE_NUMBER, record.sequence_number()),
        (header::SOURCE_ARN, record.source_arn()),
    ] {
        if let Some(value) = value {
            headers.insert(name.to_owned(), value.as_bytes().to_vec());
        }
    }
    let own_key = match (&record.read, why.kind) {
        (Lenient::Parsed(parsed), TOO_LARGE | REJECTED_BY_BROKER) => build_record(parsed, config)
            .ok()
            .flatten()
            .map(|(key, _)| key),
        _ => None,
    };
    let letter = OutgoingRecord {
        key: own_key.or_else(|| record.event_id().map(|id| id.as_bytes().to_vec())),
        value: Some(record.raw.get().as_bytes().to_vec()),
        headers,
        timestamp: None,
    };
    sink.fit_dead_letter(letter, &ESSENTIAL_HEADERS)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lambda_stream_kit::config::Env;
    use lambda_stream_kit::pipeline::MemorySink;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut all = vec![("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")];
        all.extend_from_slice(pairs);
        Config::from_env(&Env::from_pairs(&all)).unwrap()
    }

    fn record(json: &str) -> EventRecord {
        serde_json::from_str(json).unwrap()
    }

    fn insert(id: &str, extra: &str) -> String {
        format!(
            r#"{{"awsRegion":"us-east-1","eventID":"e-{id}","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/T/stream/S",
               "dynamodb":{{"ApproximateCreationDateTime":1700000000,"Keys":{{"id":{{"S":"{id}"}}}},
               "NewImage":{{"id":{{"S":"{id}"}},"n":{{"N":"12345678901234567890123456789012345678"}}{extra}}},
               "SequenceNumber":"{id}00","SizeBytes":50,"StreamViewType":"NEW_AND_OLD_IMAGES"}}}}"#
        )
    }

    #[test]
    fn an_insert_becomes_exact_json_keyed_by_id_with_headers_and_timestamp() {
        let (key, out) = build_record(&record(&insert("a1", "")), &config(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(key, b"a1");
        assert_eq!(
            String::from_utf8(out.value.unwrap()).unwrap(),
            r#"{"id":"a1","n":12345678901234567890123456789012345678}"#
        );
        assert_eq!(out.headers[header::EVENT_ID], b"e-a1");
        assert_eq!(out.headers[header::EVENT_NAME], b"INSERT");
        assert_eq!(out.headers[header::SEQUENCE_NUMBER], b"a100");
        assert_eq!(
            out.headers[header::SOURCE_ARN],
            b"arn:aws:dynamodb:us-east-1:1:table/T/stream/S"
        );
        assert_eq!(out.timestamp.unwrap().timestamp(), 1_700_000_000);
    }

    #[test]
    fn without_the_key_attribute_the_key_is_the_canonical_keys_json() {
        let json = r#"{"awsRegion":"us-east-1","eventID":"e","eventName":"INSERT","dynamodb":{"Keys":{"sk":{"N":"2"},"pk":{"S":"p"}},
            "NewImage":{"pk":{"S":"p"},"sk":{"N":"2"}},"SequenceNumber":"1","SizeBytes":1}}"#;
        let (key, out) = build_record(&record(json), &config(&[])).unwrap().unwrap();
        assert_eq!(key, br#"{"pk":"p","sk":2}"#);
        assert_eq!(
            out.timestamp, None,
            "no ApproximateCreationDateTime means broker time"
        );
    }

    #[test]
    fn a_remove_sends_the_old_image_or_else_the_keys() {
        let cfg = config(&[("EVENT_NAMES", "INSERT,MODIFY,REMOVE")]);
        let with_old = r#"{"awsRegion":"us-east-1","eventID":"e","eventName":"REMOVE","dynamodb":{"Keys":{"id":{"S":"k"}},
            "OldImage":{"id":{"S":"k"},"v":{"BOOL":true}},"SequenceNumber":"1","SizeBytes":1}}"#;
        let (_, out) = build_record(&record(with_old), &cfg).unwrap().unwrap();
        assert_eq!(out.value.unwrap(), br#"{"id":"k","v":true}"#);
        let keys_only = r#"{"awsRegion":"us-east-1","eventID":"e","eventName":"REMOVE","dynamodb":{"Keys":{"id":{"S":"k"}},"SequenceNumber":"1","SizeBytes":1}}"#;
        let (_, out) = build_record(&record(keys_only), &cfg).unwrap().unwrap();
        assert_eq!(out.value.unwrap(), br#"{"id":"k"}"#);
    }

    #[test]
    fn names_not_forwarded_are_skipped_and_unknown_names_are_poison() {
        let modify = insert("m", "").replace("INSERT", "MODIFY");
        assert!(build_record(&record(&modify), &config(&[]))
            .unwrap()
            .is_none());
        let odd = insert("m", "").replace("INSERT", "TRUNCATE");
        let err = build_record(&record(&odd), &config(&[])).unwrap_err();
        assert!(err.contains("unknown eventName"), "{err}");
    }

    #[test]
    fn a_missing_new_image_or_a_bad_number_is_poison_with_a_reason() {
        let no_image = r#"{"awsRegion":"us-east-1","eventID":"e","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"k"}},"SequenceNumber":"1","SizeBytes":1,"StreamViewType":"KEYS_ONLY"}}"#;
        let err = build_record(&record(no_image), &config(&[])).unwrap_err();
        assert!(err.contains("no NewImage"), "{err}");
        let bad_number = insert("x", r#","price":{"N":"twelve"}"#);
        let err = build_record(&record(&bad_number), &config(&[])).unwrap_err();
        assert!(
            err.contains("price") && err.contains("not a number"),
            "{err}"
        );
        assert!(!err.contains("twelve"), "the value is data: {err}");
    }

    #[test]
    fn an_unparseable_record_keeps_its_coordinates() {
        let raw = RawValue::from_string(
            r#"{"awsRegion":"us-east-1","eventID":"e9","eventName":"INSERT","dynamodb":{"NewImage":{"b":{"B":"%%%"}},"SequenceNumber":"900","SizeBytes":1}}"#.to_owned(),
        )
        .unwrap();
        assert_eq!(ChangeRecord::read(&raw).sequence_number(), Some("900"));
        let (why, letter) = poison_letter(&raw, &config(&[]));
        assert!(why.message.contains("does not parse"), "{why:?}");
        assert_eq!(letter.key.as_deref(), Some(&b"e9"[..]), "the event id");
        assert_eq!(letter.value.as_deref(), Some(raw.get().as_bytes()));
        assert_eq!(
            String::from_utf8_lossy(&letter.headers[header::DLQ_REASON]),
            "record does not parse: unexpected JSON (data error at line 1, column 100)"
        );
        assert_eq!(letter.headers[header::SEQUENCE_NUMBER], b"900");
    }

    /// What the mapper makes of a poison record: why, and its dead letter.
    fn poison_letter(raw: &RawValue, cfg: &Config) -> (Rejection, OutgoingRecord) {
        let record = ChangeRecord::read(raw);
        let sink = MemorySink::new();
        let mapper = Changes {
            config: cfg,
            sink: &sink,
        };
        let Mapped::DeadLetter(why) = mapper.map(&record) else {
            panic!("a poison record is dead-lettered")
        };
        let letter = mapper.dead_letter(&record, &why);
        (why, letter)
    }

    /// A record serde_json cannot read, whose error message would quote
    /// the value: `invalid type: string "hunter2-SECRET", expected a boolean`.
    pub(crate) fn record_with_secret() -> Box<RawValue> {
        RawValue::from_string(
            r#"{"awsRegion":"us-east-1","eventID":"e7","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"k"}},"NewImage":{"id":{"S":"k"},"ok":{"BOOL":"hunter2-SECRET"}},"SequenceNumber":"700","SizeBytes":1}}"#.to_owned(),
        )
        .unwrap()
    }

    #[test]
    fn a_bad_value_is_not_quoted_in_the_dlq_reason() {
        let raw = record_with_secret();
        let err = serde_json::from_str::<EventRecord>(raw.get()).unwrap_err();
        assert!(
            err.to_string().contains("hunter2-SECRET"),
            "serde_json quotes it: {err}"
        );
        let cfg = config(&[("DEAD_LETTER_TOPIC", "dead")]);
        let (_, letter) = poison_letter(&raw, &cfg);
        assert_eq!(
            String::from_utf8_lossy(&letter.headers[header::DLQ_REASON]),
            "record does not parse: unexpected JSON (data error at line 1, column 153)"
        );
        for (name, value) in &letter.headers {
            assert!(
                !String::from_utf8_lossy(value).contains("hunter2"),
                "header {name}"
            );
        }
        // The value is the record as it came: what a replay needs.
        assert_eq!(letter.value.as_deref(), Some(raw.get().as_bytes()));
    }

    #[test]
    fn a_too_large_record_is_dead_lettered_under_its_own_key() {
        let cfg = config(&[("DEAD_LETTER_TOPIC", "dead")]);
        let sink = MemorySink::new();
        let mapper = Changes {
            config: &cfg,
            sink: &sink,
        };
        let raw = RawValue::from_string(insert("k7", "")).unwrap();
        let record = ChangeRecord::read(&raw);
        let letter = mapper.dead_letter(&record, &Rejection::new(TOO_LARGE, "too large"));
        assert_eq!(letter.key.as_deref(), Some(&b"k7"[..]));
        assert_eq!(letter.headers[header::DLQ_REASON], b"too large");
    }
}
