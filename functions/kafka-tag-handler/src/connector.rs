//! Synchronous invocation by the Confluent AWS Lambda Sink connector.
//!
//! The connector sends a JSON array of `{"payload": {"timestamp", "topic",
//! "partition", "offset", "key"?, "value", …}}` (unknown fields are
//! ignored; an item without `payload` is read as the payload itself). The
//! `value` is a JSON object, or a string holding JSON. The answer is an
//! array with exactly one entry per input, in order, which the connector
//! writes to its result topic (`aws.lambda.response.topic`):
//!
//! * a page visit: the tagged event;
//! * a bad record, with `ON_ERROR=dlq`: the record is published to
//!   `ERROR_TOPIC` first, with the same headers as a dead letter of the
//!   event source mapping path (`source-*` as far as the item gives them,
//!   `error-kind`, `error-message`; a stub when too large), and its entry
//!   says where it went:
//!   `{"status": "dead-lettered", "kind", "message", "index",
//!   "source": {"topic", "partition", "offset"},
//!   "dead_letter": {"topic", "partition", "offset"}}`.
//!   If any dead letter cannot be published by the deadline the whole call
//!   fails (`Record.DeadLetterFailed`): the connector then retries the
//!   batch or applies its `behavior.on.error`, and nothing is answered as
//!   handled that is not on a topic;
//! * a bad record, with `ON_ERROR=log`: a warning log line with its
//!   coordinates, and an error entry
//!   `{"error": {"kind", "message", "index", "topic", "partition", "offset"}}`
//!   in its place;
//! * a bad record, with `ON_ERROR=fail`: the whole call fails
//!   (`Record.Rejected`), naming the record, so a connector with
//!   `behavior.on.error=fail` stops there.
//!
//! Work is done in two steps: [`plan`] tags every item and builds the dead
//! letters without any I/O, and [`handle`] publishes them and fills in their
//! entries.
//!
//! This path does not go through `lambda_stream_kit::pipeline`. The
//! pipeline's work is publishing records and answering a source with the
//! positions that were not published; here nothing is published but dead
//! letters, the tagged events are the answer itself, and there is no
//! partial response: a call succeeds whole or fails whole. What the two
//! paths do alike is shared: the same mapping of a payload to a tagged
//! event or a [`BadRecord`] ([`crate::visit`]), the same dead letter and its
//! cut to fit ([`bad_record::dead_letter`]), and the same [`Sink`].

use std::collections::BTreeMap;

use chrono::DateTime;
use lambda_stream_kit::kafka::{Delivery, OutgoingRecord, ProduceError};
use lambda_stream_kit::pipeline::{stamp_if_it_fits, Sink};
use lambda_stream_kit::telemetry::error_chain;
use lambda_stream_kit::telemetry::metrics::{self, names};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::bad_record::{self, BadRecord, Coordinates, ErrorKind, RawRecord};
use crate::config::{Config, OnError};
use crate::rules::Tagger;
use crate::source::kind_of;
use crate::visit;

/// Why a connector call failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// A record is bad and `ON_ERROR=fail`.
    #[error("connector record {index}{position}: {bad} (ON_ERROR=fail)")]
    Record {
        /// Its position in the input array.
        index: usize,
        /// Its topic, partition and offset, when known.
        position: String,
        /// What is wrong with it.
        bad: BadRecord,
    },
    /// A bad record could not be dead-lettered (`ON_ERROR=dlq`).
    #[error(
        "connector record {index}{position}: {kind}, and publishing its dead letter to {topic} failed"
    )]
    DeadLetter {
        /// Its position in the input array.
        index: usize,
        /// Its topic, partition and offset, when known.
        position: String,
        /// What is wrong with it.
        kind: ErrorKind,
        /// The error topic.
        topic: String,
        /// Why publishing failed.
        #[source]
        source: ProduceError,
    },
}

impl ConnectorError {
    /// The `errorType` Lambda records for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Record { .. } => "Record.Rejected",
            Self::DeadLetter { .. } => "Record.DeadLetterFailed",
        }
    }
}

/// The answer before any dead letter is sent.
#[derive(Debug, Default)]
pub struct Plan {
    /// One entry per item, in order. The entry of a pending dead letter is
    /// `null` until it is published.
    pub entries: Vec<Value>,
    /// The dead letters to publish (`ON_ERROR=dlq` only).
    pub dead_letters: Vec<PendingDeadLetter>,
}

/// A bad item's dead letter, not sent yet.
#[derive(Debug)]
pub struct PendingDeadLetter {
    /// The item's place in the input array.
    pub index: usize,
    /// Why it could not be tagged.
    pub bad: BadRecord,
    /// The record for `ERROR_TOPIC`.
    pub record: OutgoingRecord,
    position: Position,
}

/// Tags every item, publishes the dead letters and answers; see the module
/// doc. Publishing is bounded by `deadline`; each dead letter carries the
/// invocation's `traceparent`, when there is one.
pub async fn handle(
    items: Vec<Value>,
    config: &Config,
    tagger: &Tagger,
    sink: &(impl Sink + ?Sized),
    tagged_at: &str,
    deadline: Instant,
    traceparent: Option<&str>,
) -> Result<Vec<Value>, ConnectorError> {
    let received = items.len();
    let answered = async {
        let Plan {
            mut entries,
            dead_letters,
        } = plan(items, config, tagger, tagged_at, sink)?;
        if dead_letters.is_empty() {
            return Ok(entries);
        }
        // `plan` only sets dead letters aside when there is a topic for them.
        let topic = config.error_topic.as_deref().unwrap_or_default();
        let (letters, records): (Vec<_>, Vec<_>) = dead_letters
            .into_iter()
            .map(|letter| {
                let PendingDeadLetter {
                    index,
                    bad,
                    mut record,
                    position,
                } = letter;
                stamp_if_it_fits(sink, &mut record, traceparent);
                ((index, bad, position), record)
            })
            .unzip();
        let outcomes = sink.produce(topic, records, deadline).await;
        let mut first_failure = None;
        for ((index, bad, position), outcome) in letters.into_iter().zip(outcomes) {
            match outcome {
                Ok(delivery) => {
                    tracing::info!(
                        index,
                        topic = position.topic.as_deref(),
                        partition = position.partition,
                        offset = position.offset,
                        kind = bad.kind.as_str(),
                        error_topic = topic,
                        error_partition = delivery.partition,
                        error_offset = delivery.offset,
                        "connector record dead-lettered"
                    );
                    if let Some(entry) = entries.get_mut(index) {
                        *entry = dead_lettered_entry(index, &position, &bad, topic, delivery);
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        index,
                        topic = position.topic.as_deref(),
                        partition = position.partition,
                        offset = position.offset,
                        kind = bad.kind.as_str(),
                        error_topic = topic,
                        error = %error_chain(&error),
                        "dead-lettering a connector record failed; failing the call"
                    );
                    first_failure.get_or_insert(ConnectorError::DeadLetter {
                        index,
                        position: position.to_string(),
                        kind: bad.kind,
                        topic: topic.to_owned(),
                        source: error,
                    });
                }
            }
        }
        match first_failure {
            Some(error) => Err(error),
            None => Ok(entries),
        }
    }
    .await;
    count(received, &answered);
    answered
}

/// Adds a connector call to the invocation's metrics: tagged events count
/// as published (the connector writes them to its result topic), error
/// entries as skipped, and a failed call hands every record back.
fn count(received: usize, answered: &Result<Vec<Value>, ConnectorError>) {
    let (mut published, mut dead_lettered, mut skipped) = (0, 0, 0);
    for entry in answered.as_deref().unwrap_or_default() {
        if entry.get("error").is_some() {
            skipped += 1;
        } else if entry.get("status").is_some_and(|s| s == "dead-lettered") {
            dead_lettered += 1;
        } else {
            published += 1;
        }
    }
    let reported = if answered.is_err() { received } else { 0 };
    metrics::count_each(&[
        (names::RECORDS_RECEIVED, received),
        (names::BATCH_SIZE, received),
        (names::RECORDS_PUBLISHED, published),
        (names::RECORDS_DEAD_LETTERED, dead_lettered),
        (names::RECORDS_SKIPPED, skipped),
        (names::RECORDS_FAILED, usize::from(answered.is_err())),
        (names::RECORDS_REPORTED, reported),
    ]);
}

/// Tags every item and, with `ON_ERROR=dlq`, builds the dead letters of the
/// bad ones (cut to fit `sink`'s limit), without any I/O. Fails at the
/// first bad item with `ON_ERROR=fail`.
pub fn plan(
    items: Vec<Value>,
    config: &Config,
    tagger: &Tagger,
    tagged_at: &str,
    sink: &(impl Sink + ?Sized),
) -> Result<Plan, ConnectorError> {
    let mut plan = Plan {
        entries: Vec::with_capacity(items.len()),
        dead_letters: Vec::new(),
    };
    for (index, item) in items.into_iter().enumerate() {
        let position = Position::of(&item);
        let (bad, raw) = match tag_item(item, tagger, tagged_at) {
            Ok(tagged) => {
                plan.entries.push(tagged);
                continue;
            }
            Err(failed) => failed,
        };
        tracing::warn!(
            index,
            topic = position.topic.as_deref(),
            partition = position.partition,
            offset = position.offset,
            kind = bad.kind.as_str(),
            reason = %bad.message,
            on_error = %config.on_error,
            "connector record cannot be tagged"
        );
        match (config.on_error, config.error_topic.as_deref()) {
            (OnError::Dlq, Some(_)) => {
                let record = bad_record::dead_letter(
                    raw_record(raw),
                    position.coordinates(),
                    &bad.clone().into(),
                    sink,
                );
                plan.entries.push(Value::Null);
                plan.dead_letters.push(PendingDeadLetter {
                    index,
                    bad,
                    record,
                    position,
                });
            }
            (OnError::Log, _) => plan.entries.push(error_entry(index, &position, &bad)),
            // `Dlq` always has a topic (the config checks it); without one,
            // failing is the only choice that loses nothing.
            (OnError::Fail | OnError::Dlq, _) => {
                return Err(ConnectorError::Record {
                    index,
                    position: position.to_string(),
                    bad,
                })
            }
        }
    }
    Ok(plan)
}

/// The tagged event, or why not with the item's payload (or the item, when
/// it has no payload object) as it came.
fn tag_item(item: Value, tagger: &Tagger, tagged_at: &str) -> Result<Value, (BadRecord, Value)> {
    let mut payload = match item {
        Value::Object(mut fields) if fields.get("payload").is_some_and(Value::is_object) => {
            match fields.remove("payload") {
                Some(Value::Object(payload)) => payload,
                _ => fields,
            }
        }
        Value::Object(fields) => fields,
        other => {
            let bad = BadRecord::new(
                ErrorKind::MalformedRecord,
                format!(
                    "a connector record must be an object, not {}",
                    kind_of(&other)
                ),
            );
            return Err((bad, other));
        }
    };
    let result = match payload.remove("value") {
        None | Some(Value::Null) => Err((
            BadRecord::new(ErrorKind::NotJson, "the record has no value"),
            None,
        )),
        Some(Value::String(text)) => {
            visit::tag_text(&text, tagger, tagged_at).map_err(|bad| (bad, Some(text.into())))
        }
        Some(value) => visit::tag_value_or_return(value, tagger, tagged_at)
            .map_err(|(bad, value)| (bad, Some(value))),
    };
    result.map_err(|(bad, value)| {
        if let Some(value) = value {
            payload.insert("value".into(), value);
        }
        (bad, Value::Object(payload))
    })
}

/// The parts of a bad item that go into its dead letter: the payload's key,
/// value and timestamp, or for an item that is not an object, the item
/// itself as the value. Text goes as its bytes, other JSON as its text.
fn raw_record(raw: Value) -> RawRecord {
    let Value::Object(mut payload) = raw else {
        return RawRecord {
            value: bytes_of(raw),
            ..RawRecord::default()
        };
    };
    RawRecord {
        key: payload.remove("key").and_then(bytes_of),
        value: payload.remove("value").and_then(bytes_of),
        headers: BTreeMap::new(),
        timestamp: payload
            .get("timestamp")
            .and_then(Value::as_i64)
            .and_then(DateTime::from_timestamp_millis),
    }
}

fn bytes_of(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.into_bytes()),
        other => Some(other.to_string().into_bytes()),
    }
}

/// Where a connector record came from, as far as it says.
#[derive(Debug, Default)]
struct Position {
    topic: Option<String>,
    partition: Option<i64>,
    offset: Option<i64>,
}

impl Position {
    fn of(item: &Value) -> Self {
        let payload = item
            .get("payload")
            .filter(|p| p.is_object())
            .unwrap_or(item);
        Self {
            topic: payload
                .get("topic")
                .and_then(Value::as_str)
                .map(str::to_owned),
            partition: payload.get("partition").and_then(Value::as_i64),
            offset: payload.get("offset").and_then(Value::as_i64),
        }
    }

    fn coordinates(&self) -> Coordinates<'_> {
        Coordinates {
            topic: self.topic.as_deref(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.topic, self.partition, self.offset) {
            (Some(t), Some(p), Some(o)) => write!(f, " ({t}-{p} at offset {o})"),
            _ => Ok(()),
        }
    }
}

fn error_entry(index: usize, position: &Position, bad: &BadRecord) -> Value {
    json!({"error": {
        "kind": bad.kind.as_str(),
        "message": bad.message,
        "index": index,
        "topic": position.topic,
        "partition": position.partition,
        "offset": position.offset,
    }})
}

fn dead_lettered_entry(
    index: usize,
    position: &Position,
    bad: &BadRecord,
    topic: &str,
    delivery: Delivery,
) -> Value {
    json!({
        "status": "dead-lettered",
        "kind": bad.kind.as_str(),
        "message": bad.message,
        "index": index,
        "source": {
            "topic": position.topic,
            "partition": position.partition,
            "offset": position.offset,
        },
        "dead_letter": {
            "topic": topic,
            "partition": delivery.partition,
            "offset": delivery.offset,
        },
    })
}

#[cfg(test)]
mod tests;
