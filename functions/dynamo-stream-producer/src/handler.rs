//! DynamoDB Streams to Kafka, with no record lost.
//!
//! Each invocation:
//! 1. plans every stream record: skip it (its `eventName` is not forwarded),
//!    send it, or set it aside as poison (it can never be sent: it does not
//!    parse, its image is missing or malformed, its `eventName` is unknown);
//! 2. sends every planned record with one batched produce, bounded by the
//!    invocation deadline less a safety margin;
//! 3. sends poison records (and records over the size limit) to
//!    `DEAD_LETTER_TOPIC` when one is set, with the reason in headers;
//! 4. answers with the sequence number of the first record that was neither
//!    skipped, acknowledged nor dead-lettered. Lambda redelivers from there,
//!    so nothing is reported done before the broker acknowledged it.
//!
//! Without a dead-letter topic a poison record is reported as a failure: the
//! mapping's retry limit and on-failure destination then take it out of the
//! shard, so it cannot block it forever.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::LambdaEvent;
use lambda_stream_kit::batch::dynamodb_response;
use lambda_stream_kit::config::{ConfigError, Env};
use lambda_stream_kit::deadline::stop_by;
use lambda_stream_kit::dynamodb::{attribute_text, item_to_json};
use lambda_stream_kit::kafka::{Delivery, KafkaConfig, KafkaProducer, OutgoingRecord};
use lambda_stream_kit::redact::json_error;
use lambda_stream_kit::runtime_api::FunctionError;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

/// The stream event names DynamoDB sends.
const KNOWN_EVENT_NAMES: [&str; 3] = ["INSERT", "MODIFY", "REMOVE"];

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

/// The function's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TOPIC_NAME`, default `test-topic`.
    pub topic: String,
    /// `EVENT_NAMES`, default `INSERT`.
    pub event_names: Vec<String>,
    /// `KEY_ATTRIBUTE`, default `id`.
    pub key_attribute: String,
    /// `DEAD_LETTER_TOPIC`, optional.
    pub dead_letter_topic: Option<String>,
    /// `DEADLINE_MARGIN_MS`, default 2000: time kept back from the
    /// invocation deadline to answer.
    pub deadline_margin: Duration,
    /// The shared `KAFKA_*` settings.
    pub kafka: KafkaConfig,
}

impl Config {
    /// Reads the settings.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let event_names = env
            .list("EVENT_NAMES")
            .unwrap_or_else(|| vec!["INSERT".to_owned()]);
        for name in &event_names {
            if !KNOWN_EVENT_NAMES.contains(&name.as_str()) {
                return Err(ConfigError::Invalid {
                    name: "EVENT_NAMES",
                    value: event_names.join(","),
                    reason: "each entry must be INSERT, MODIFY or REMOVE".into(),
                });
            }
        }
        Ok(Self {
            topic: env
                .optional("TOPIC_NAME")
                .unwrap_or_else(|| "test-topic".into()),
            event_names,
            key_attribute: env.optional("KEY_ATTRIBUTE").unwrap_or_else(|| "id".into()),
            dead_letter_topic: env.optional("DEAD_LETTER_TOPIC"),
            deadline_margin: Duration::from_millis(env.parse_or("DEADLINE_MARGIN_MS", 2000u64)?),
            kafka: KafkaConfig::from_env(env)?,
        })
    }
}

/// The DynamoDB Streams event, with each record kept raw so that one
/// malformed record cannot fail the whole batch.
#[derive(Debug, Deserialize)]
pub struct StreamBatch {
    /// The records; absent only when the event is not a stream event.
    #[serde(rename = "Records", default)]
    pub records: Option<Vec<Box<RawValue>>>,
}

/// What is to become of one record.
#[derive(Debug)]
enum Plan {
    /// Its `eventName` is not forwarded.
    Skip,
    /// Publish it.
    Send(OutgoingRecord),
    /// It can never be published.
    Poison(String),
}

/// Where one record ended up.
#[derive(Debug)]
enum Status {
    Done,
    Failed(String),
}

/// One record with what the handler knows about it.
#[derive(Debug)]
struct Planned<'a> {
    raw: &'a RawValue,
    sequence_number: Option<String>,
    event_id: Option<String>,
    event_name: Option<String>,
    source_arn: Option<String>,
    key: Option<Vec<u8>>,
    plan: Plan,
}

/// Handles one DynamoDB Streams batch.
pub async fn function_handler(
    producer: &KafkaProducer,
    config: &Config,
    event: LambdaEvent<StreamBatch>,
) -> Result<DynamoDbEventResponse, FunctionError> {
    let started = Instant::now();
    let deadline = stop_by(&event.context, config.deadline_margin);
    let Some(records) = event.payload.records else {
        return Err(FunctionError::new(
            "Event.NotDynamoDbStream",
            "the event has no Records list: is this a DynamoDB Streams event?",
        ));
    };
    let mut planned: Vec<Planned<'_>> = records.iter().map(|raw| plan(raw, config)).collect();
    let mut statuses: Vec<Option<Status>> = planned.iter().map(|_| None).collect();

    // 1. The main batch.
    let mut to_send = Vec::new();
    let mut sent_index = Vec::new();
    let mut skipped = 0usize;
    for (i, p) in planned.iter_mut().enumerate() {
        match std::mem::replace(&mut p.plan, Plan::Skip) {
            Plan::Skip => {
                skipped += 1;
                statuses[i] = Some(Status::Done);
            }
            Plan::Send(record) => {
                sent_index.push(i);
                to_send.push(record);
            }
            poison @ Plan::Poison(_) => p.plan = poison,
        }
    }
    let forwarded = to_send.len();
    let outcomes = if to_send.is_empty() {
        Vec::new()
    } else {
        producer.produce(&config.topic, to_send, deadline).await
    };
    let mut acknowledged = 0usize;
    for (i, outcome) in sent_index.into_iter().zip(outcomes) {
        let p = &mut planned[i];
        match outcome {
            Ok(delivery) => {
                acknowledged += 1;
                log_ack(&config.topic, delivery, p);
                statuses[i] = Some(Status::Done);
            }
            Err(e) if e.is_permanent() => p.plan = Plan::Poison(e.to_string()),
            Err(e) => statuses[i] = Some(Status::Failed(e.to_string())),
        }
    }

    // 2. Poison records: dead-letter them, or report them.
    let poison: Vec<usize> = (0..planned.len())
        .filter(|&i| matches!(planned[i].plan, Plan::Poison(_)))
        .collect();
    let mut dead_lettered = 0usize;
    match &config.dead_letter_topic {
        Some(dlq) if !poison.is_empty() => {
            let letters = poison
                .iter()
                .map(|&i| dead_letter(&planned[i], config, producer))
                .collect();
            let outcomes = producer.produce(dlq, letters, deadline).await;
            for (&i, outcome) in poison.iter().zip(outcomes) {
                let reason = poison_reason(&planned[i]);
                match outcome {
                    Ok(delivery) => {
                        dead_lettered += 1;
                        tracing::warn!(
                            sequence_number = planned[i].sequence_number.as_deref().unwrap_or(""),
                            reason,
                            dead_letter_topic = dlq.as_str(),
                            partition = delivery.partition,
                            offset = delivery.offset,
                            "record dead-lettered"
                        );
                        statuses[i] = Some(Status::Done);
                    }
                    Err(e) => {
                        statuses[i] = Some(Status::Failed(format!(
                            "{reason}; dead-lettering failed too: {e}"
                        )))
                    }
                }
            }
        }
        _ => {
            for &i in &poison {
                let reason = poison_reason(&planned[i]);
                tracing::warn!(
                    sequence_number = planned[i].sequence_number.as_deref().unwrap_or(""),
                    event_id = planned[i].event_id.as_deref().unwrap_or(""),
                    reason,
                    "record cannot be published and no DEAD_LETTER_TOPIC is set"
                );
                statuses[i] = Some(Status::Failed(reason.to_owned()));
            }
        }
    }

    // 3. The first record not durably handled.
    let first_failure = statuses.iter().enumerate().find_map(|(i, s)| match s {
        Some(Status::Done) => None,
        Some(Status::Failed(reason)) => Some((i, reason.as_str())),
        None => Some((i, "not handled")),
    });
    let failed = statuses
        .iter()
        .filter(|s| !matches!(s, Some(Status::Done)))
        .count();
    tracing::info!(
        records = planned.len(),
        forwarded,
        acknowledged,
        skipped,
        dead_lettered,
        failed,
        duration_ms = started.elapsed().as_millis() as u64,
        "batch done"
    );
    let Some((index, reason)) = first_failure else {
        return Ok(dynamodb_response(None));
    };
    match planned[index].sequence_number.as_deref() {
        Some(sequence_number) => {
            tracing::warn!(
                sequence_number,
                event_id = planned[index].event_id.as_deref().unwrap_or(""),
                reason,
                failed,
                "reporting the first record not acknowledged; Lambda redelivers from it"
            );
            Ok(dynamodb_response(Some(sequence_number)))
        }
        None => Err(FunctionError::new(
            "Record.Unidentifiable",
            format!(
                "record {index} failed ({reason}) and has no SequenceNumber to report; failing the whole batch"
            ),
        )),
    }
}

fn poison_reason<'p>(p: &'p Planned<'_>) -> &'p str {
    match &p.plan {
        Plan::Poison(reason) => reason,
        _ => "unknown",
    }
}

fn log_ack(topic: &str, delivery: Delivery, p: &Planned<'_>) {
    tracing::info!(
        topic,
        partition = delivery.partition,
        offset = delivery.offset,
        key = p
            .key
            .as_deref()
            .map(String::from_utf8_lossy)
            .as_deref()
            .unwrap_or(""),
        sequence_number = p.sequence_number.as_deref().unwrap_or(""),
        "acknowledged"
    );
}

/// Decides what to do with one raw record.
fn plan<'a>(raw: &'a RawValue, config: &Config) -> Planned<'a> {
    let record = match serde_json::from_str::<EventRecord>(raw.get()) {
        Ok(record) => record,
        // Position only: the reason goes into the log and the dlq-reason
        // header, and serde_json's message would quote the item's values.
        Err(e) => return unparseable(raw, format!("record does not parse: {}", json_error(&e))),
    };
    let sequence_number = record.change.sequence_number.clone();
    let mut planned = Planned {
        raw,
        sequence_number,
        event_id: Some(record.event_id.clone()),
        event_name: Some(record.event_name.clone()),
        source_arn: record.event_source_arn.clone(),
        key: None,
        plan: Plan::Skip,
    };
    planned.plan = match build_record(&record, config) {
        Ok(None) => Plan::Skip,
        Ok(Some((key, outgoing))) => {
            planned.key = Some(key);
            Plan::Send(outgoing)
        }
        Err(reason) => Plan::Poison(reason),
    };
    if planned.sequence_number.is_none() && !matches!(planned.plan, Plan::Skip) {
        planned.plan = Plan::Poison("record has no SequenceNumber".into());
    }
    planned
}

/// Pulls what can be had out of a record that does not parse, so it can
/// still be reported or dead-lettered.
fn unparseable(raw: &RawValue, reason: String) -> Planned<'_> {
    let value: serde_json::Value = serde_json::from_str(raw.get()).unwrap_or_default();
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Planned {
        raw,
        sequence_number: text("/dynamodb/SequenceNumber"),
        event_id: text("/eventID"),
        event_name: text("/eventName"),
        source_arn: text("/eventSourceARN"),
        key: None,
        plan: Plan::Poison(reason),
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
/// to send, the shared stub ([`KafkaProducer::fit_dead_letter`]) without the
/// value, marked with the original size.
fn dead_letter(p: &Planned<'_>, config: &Config, producer: &KafkaProducer) -> OutgoingRecord {
    let mut headers = BTreeMap::new();
    headers.insert(
        header::DLQ_REASON.to_owned(),
        poison_reason(p).as_bytes().to_vec(),
    );
    headers.insert(
        header::DLQ_TOPIC.to_owned(),
        config.topic.clone().into_bytes(),
    );
    for (name, value) in [
        (header::EVENT_ID, &p.event_id),
        (header::EVENT_NAME, &p.event_name),
        (header::SEQUENCE_NUMBER, &p.sequence_number),
        (header::SOURCE_ARN, &p.source_arn),
    ] {
        if let Some(value) = value {
            headers.insert(name.to_owned(), value.clone().into_bytes());
        }
    }
    let letter = OutgoingRecord {
        key: p
            .key
            .clone()
            .or_else(|| p.event_id.clone().map(String::into_bytes)),
        value: Some(p.raw.get().as_bytes().to_vec()),
        headers,
        timestamp: None,
    };
    producer.fit_dead_letter(letter, &ESSENTIAL_HEADERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut all = vec![("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")];
        all.extend_from_slice(pairs);
        Config::from_env(&Env::from_pairs(&all)).unwrap()
    }

    fn fixture(name: &str) -> StreamBatch {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
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
    fn config_defaults_follow_the_original_workshop() {
        let c = config(&[]);
        assert_eq!(c.topic, "test-topic");
        assert_eq!(c.event_names, vec!["INSERT"]);
        assert_eq!(c.key_attribute, "id");
        assert_eq!(c.dead_letter_topic, None);
    }

    #[test]
    fn unknown_event_names_in_config_are_rejected_by_name() {
        let err = Config::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
            ("EVENT_NAMES", "INSERT,UPSERT"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("EVENT_NAMES"), "{err}");
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
        let p = plan(&raw, &config(&[]));
        assert_eq!(p.sequence_number.as_deref(), Some("900"));
        assert!(
            matches!(&p.plan, Plan::Poison(r) if r.contains("does not parse")),
            "{:?}",
            p.plan
        );
        let cfg = config(&[]);
        let letter = dead_letter(&p, &cfg, &KafkaProducer::new(cfg.kafka.clone()));
        assert_eq!(letter.value.as_deref(), Some(raw.get().as_bytes()));
        assert_eq!(
            String::from_utf8_lossy(&letter.headers[header::DLQ_REASON]),
            "record does not parse: unexpected JSON (data error at line 1, column 100)"
        );
        assert_eq!(letter.headers[header::SEQUENCE_NUMBER], b"900");
    }

    /// A record serde_json cannot read, whose error message would quote
    /// the value: `invalid type: string "hunter2-SECRET", expected a boolean`.
    fn record_with_secret() -> Box<RawValue> {
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
        let p = plan(&raw, &cfg);
        let letter = dead_letter(&p, &cfg, &KafkaProducer::new(cfg.kafka.clone()));
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

    #[tokio::test]
    async fn a_bad_value_is_not_quoted_in_log_lines() {
        let batch = StreamBatch {
            records: Some(vec![record_with_secret()]),
        };
        let (result, logs) = lambda_stream_kit::telemetry::capture(function_handler(
            &KafkaProducer::new(config(&[]).kafka),
            &config(&[]),
            LambdaEvent::new(batch, Context::default()),
        ))
        .await;
        let reported: Vec<_> = result
            .unwrap()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(reported, vec![Some("700".to_owned())]);
        assert!(
            logs.text().contains("record does not parse"),
            "{}",
            logs.text()
        );
        assert!(!logs.text().contains("hunter2"), "{}", logs.text());
    }

    #[tokio::test]
    async fn with_the_broker_down_the_first_record_is_reported_within_the_deadline() {
        let producer = KafkaProducer::new(config(&[]).kafka);
        let mut context = Context::default();
        context.deadline = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64)
            + 3000;
        let cfg = config(&[("DEADLINE_MARGIN_MS", "1000")]);
        let started = Instant::now();
        let response = function_handler(
            &producer,
            &cfg,
            LambdaEvent::new(fixture("dynamodb-mixed.json"), context),
        )
        .await
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
        let reported: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(
            reported,
            vec![Some("4421584500000000017450439091".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_batch_with_nothing_to_forward_succeeds_without_a_broker() {
        let producer = KafkaProducer::new(config(&[]).kafka);
        let response = function_handler(
            &producer,
            &config(&[]),
            LambdaEvent::new(fixture("dynamodb-modify.json"), Context::default()),
        )
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn an_event_without_records_is_a_clear_error() {
        let producer = KafkaProducer::new(config(&[]).kafka);
        let batch: StreamBatch = serde_json::from_str(r#"{"Items": []}"#).unwrap();
        let err = function_handler(
            &producer,
            &config(&[]),
            LambdaEvent::new(batch, Context::default()),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no Records"), "{err}");
    }

    /// Every malformed input in `events/bad/` and what becomes of it when no
    /// dead-letter topic is set: a clear error, or the bad record reported
    /// (with its reason logged) so the mapping's retry limit and on-failure
    /// destination take over. Nothing panics and nothing is dropped.
    #[tokio::test]
    async fn every_bad_fixture_has_its_documented_outcome() {
        enum Expect {
            Unparseable,
            WholeBatchError(&'static str),
            Reported(&'static str, &'static str),
            Success,
        }
        use Expect::*;
        let cases = [
            ("dynamodb-invalid-json.json", Unparseable),
            (
                "dynamodb-wrong-shape.json",
                WholeBatchError("no SequenceNumber"),
            ),
            (
                "dynamodb-no-sequence-number.json",
                WholeBatchError("no SequenceNumber"),
            ),
            (
                "dynamodb-missing-image.json",
                Reported("5000000000000000000000000001", "no NewImage"),
            ),
            (
                "dynamodb-invalid-base64.json",
                Reported(
                    "5000000000000000000000000003",
                    "record does not parse: unexpected JSON (data error",
                ),
            ),
            (
                "dynamodb-bad-number.json",
                Reported(
                    "5000000000000000000000000004",
                    "attribute price has an N value that is not a number",
                ),
            ),
            (
                "dynamodb-deep-nesting.json",
                Reported("5000000000000000000000000005", "nested deeper"),
            ),
            (
                "dynamodb-oversized.json",
                Reported("5000000000000000000000000006", "over the"),
            ),
            (
                "dynamodb-unknown-event-name.json",
                Reported("5000000000000000000000000007", "unknown eventName"),
            ),
            ("dynamodb-empty-batch.json", Success),
        ];
        let producer = KafkaProducer::new(config(&[]).kafka);
        let cfg = config(&[("DEADLINE_MARGIN_MS", "0")]);
        for (file, expect) in cases {
            let path = format!("{}/../../events/bad/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let batch = match serde_json::from_str::<StreamBatch>(&text) {
                Ok(batch) => batch,
                Err(e) => {
                    assert!(matches!(expect, Unparseable), "{file} should parse: {e}");
                    continue;
                }
            };
            let mut context = Context::default();
            context.deadline = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64)
                + 1500;
            let (result, logs) = lambda_stream_kit::telemetry::capture(function_handler(
                &producer,
                &cfg,
                LambdaEvent::new(batch, context),
            ))
            .await;
            match expect {
                Unparseable => panic!("{file} was expected not to parse"),
                WholeBatchError(text) => {
                    let err = result.expect_err(file).to_string();
                    assert!(err.contains(text), "{file}: {err}");
                }
                Reported(sequence_number, reason) => {
                    let response = result.unwrap();
                    let reported: Vec<_> = response
                        .batch_item_failures
                        .iter()
                        .map(|f| f.item_identifier.as_deref().unwrap_or(""))
                        .collect();
                    assert_eq!(reported, vec![sequence_number], "{file}");
                    let logged = logs.text();
                    assert!(
                        logged.contains(reason),
                        "{file}: the reason {reason:?} is not logged:\n{logged}"
                    );
                }
                Success => assert!(result.unwrap().batch_item_failures.is_empty(), "{file}"),
            }
        }
    }
}
