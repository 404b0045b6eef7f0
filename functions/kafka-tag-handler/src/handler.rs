//! The Lambda handler: recognises the trigger, tags, publishes, answers.
//!
//! * A JSON array is a synchronous call from the Confluent sink connector:
//!   see [`crate::connector`]. The answer carries the tagged events; with
//!   `ON_ERROR=dlq` bad records are published to `ERROR_TOPIC` first,
//!   bounded by the same deadline.
//! * An object with `records` is a batch from the MSK or self-managed Kafka
//!   event source mapping. Every record is decoded and tagged; tagged events
//!   go to `RESPONSE_TOPIC` and, with `ON_ERROR=dlq`, bad records to
//!   `ERROR_TOPIC`: one produce call per topic, both at once, bounded by the
//!   invocation deadline. The answer is the Kafka partial batch response.
//! * Anything else is an error for the whole call.
//!
//! # Order and failures in a batch
//!
//! Records of one source partition are handed to the producer in offset
//! order, and the producer keeps that order per destination partition. The
//! mapping resumes a partition at the lowest offset reported, so for each
//! source partition the answer names the first record that was not
//! published (a failed produce, or a bad record under `ON_ERROR=fail`).
//! Under `ON_ERROR=fail` the records after a bad one are not even sent:
//! they come back with the retry, and sending them now would only publish
//! them twice. A published record that comes back because an earlier one
//! failed is published again: delivery is at least once.
//!
//! # Records written
//!
//! A tagged event keeps the source record's key, timestamp and headers and
//! gains `source-topic`, `source-partition` and `source-offset` headers
//! (decimal text; they replace source headers of the same name). A dead
//! letter is the source record as it came, with the same source headers plus
//! `error-kind` and `error-message` (which never quotes the record: a parse
//! error gives its kind and position only, and the message is capped at
//! [`crate::bad_record::MAX_MESSAGE_BYTES`]). A dead letter too large to
//! send becomes a stub that fits: no value (then, if need be, no key and
//! only the source and error headers), with `dlq-original-bytes` and
//! `dlq-left-out` saying what it stands for. Kafka allows repeated header
//! names, the shared producer's record does not: of repeated names the last
//! one is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lambda_runtime::LambdaEvent;
use lambda_stream_kit::batch::{KafkaEventResponse, KafkaFailures};
use lambda_stream_kit::deadline::stop_by;
use lambda_stream_kit::kafka::{KafkaProducer, OutgoingRecord, ProduceError, ProduceOutcome};
use lambda_stream_kit::runtime_api::FunctionError;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::bad_record::{self, add_source_headers, BadRecord, Coordinates, ErrorKind, RawRecord};
use crate::config::{Config, OnError};
use crate::connector;
use crate::rules::Tagger;
use crate::source::{self, Batch, Payload, SourceRecord};
use crate::visit;

/// Time kept back from the invocation deadline to answer after producing.
pub const PUBLISH_MARGIN: Duration = Duration::from_secs(1);

/// Header naming the topic a record was read from.
pub const SOURCE_TOPIC_HEADER: &str = "source-topic";
/// Header naming the partition a record was read from (decimal text).
pub const SOURCE_PARTITION_HEADER: &str = "source-partition";
/// Header naming the offset a record was read from (decimal text).
pub const SOURCE_OFFSET_HEADER: &str = "source-offset";
/// Dead-letter header with the [`ErrorKind`] (`not-json`, …).
pub const ERROR_KIND_HEADER: &str = "error-kind";
/// Dead-letter header with the human-readable reason.
pub const ERROR_MESSAGE_HEADER: &str = "error-message";

/// What every invocation needs, built once at start-up.
#[derive(Debug)]
pub struct App {
    /// The settings.
    pub config: Config,
    /// The compiled tag rules.
    pub tagger: Tagger,
}

/// The function's answer: a partial batch response for the event source
/// mapping, or the results array for the connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// For an event source mapping batch.
    Batch(KafkaEventResponse),
    /// For a connector call: one entry per input record, in order.
    Connector(Vec<Value>),
}

/// Why a whole invocation failed (the caller retries it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The payload is neither a Kafka batch nor a connector array.
    #[error("not a Kafka event source mapping batch or a connector array: {0}")]
    WrongShape(String),
    /// A batch arrived but there is nowhere to publish it.
    #[error("RESPONSE_TOPIC must be set to handle Kafka event source mapping batches")]
    NoResponseTopic,
    /// Records were neither published nor dead-lettered, and the trigger
    /// does not honour a partial batch response: only failing the whole
    /// invocation makes Lambda deliver them again.
    #[error("{count} record(s) were not published or dead-lettered, the first {first}; failing the invocation so Lambda retries the batch (the trigger does not act on partial batch responses)")]
    Unpublished {
        /// How many.
        count: usize,
        /// The first, as `<topic>-<partition>@<offset>`.
        first: String,
    },
    /// A connector record is bad and `ON_ERROR=fail`.
    #[error("connector record {index}{position}: {bad} (ON_ERROR=fail)")]
    ConnectorRecord {
        /// Its position in the input array.
        index: usize,
        /// Its topic, partition and offset, when known.
        position: String,
        /// What is wrong with it.
        bad: BadRecord,
    },
    /// A bad connector record could not be dead-lettered (`ON_ERROR=dlq`).
    #[error(
        "connector record {index}{position}: {kind}, and publishing its dead letter to {topic} failed: {source}"
    )]
    ConnectorDeadLetter {
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

impl HandlerError {
    /// The `errorType` Lambda records for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::WrongShape(_) => "Event.Unrecognised",
            Self::NoResponseTopic => "Config.NoResponseTopic",
            Self::Unpublished { .. } => "Kafka.Unpublished",
            Self::ConnectorRecord { .. } => "Record.Rejected",
            Self::ConnectorDeadLetter { .. } => "Record.DeadLetterFailed",
        }
    }
}

/// Handles one invocation. The runtime reads the payload straight into a
/// [`Payload`] (see [`crate::source`]).
pub async fn function_handler(
    event: LambdaEvent<Payload>,
    app: &App,
    producer: &KafkaProducer,
) -> Result<Answer, FunctionError> {
    let (payload, context) = event.into_parts();
    let tagged_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let deadline = stop_by(&context, PUBLISH_MARGIN);
    let answer = match payload {
        Payload::Connector(items) => Box::pin(connector::handle(
            items, app, producer, &tagged_at, deadline,
        ))
        .await
        .map(Answer::Connector),
        Payload::Batch(batch) => {
            // Boxed: the producer's future is deep enough that, inlined into
            // the runtime's, it exceeds the compiler's type-layout depth.
            Box::pin(handle_batch(&batch, app, producer, &tagged_at, deadline))
                .await
                .map(Answer::Batch)
        }
        Payload::Other(kind) => Err(HandlerError::WrongShape(format!(
            "expected an object with `records` or an array, got {kind}"
        ))),
    };
    answer.map_err(|e| {
        tracing::error!(error = %e, error_type = e.error_type(), "invocation failed");
        FunctionError::new(e.error_type(), e)
    })
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    topic: String,
    partition: i64,
    offset: i64,
}

impl Position {
    fn of(record: &SourceRecord<'_>) -> Self {
        Self {
            topic: record.topic.clone().into_owned(),
            partition: record.partition,
            offset: record.offset,
        }
    }
}

/// What one batch turns into before anything is sent.
#[derive(Debug, Default)]
struct Plan {
    responses: Vec<(Position, OutgoingRecord)>,
    dead_letters: Vec<(Position, OutgoingRecord)>,
    failures: KafkaFailures,
    skipped: usize,
    held_back: usize,
}

async fn handle_batch(
    batch: &Batch,
    app: &App,
    producer: &KafkaProducer,
    tagged_at: &str,
    deadline: Instant,
) -> Result<KafkaEventResponse, HandlerError> {
    let partitions = source::partitions(batch).map_err(HandlerError::WrongShape)?;
    let total: usize = partitions.iter().map(Vec::len).sum();
    if total == 0 {
        tracing::info!("empty batch");
        return Ok(KafkaEventResponse::default());
    }
    let response_topic = app
        .config
        .response_topic
        .as_deref()
        .ok_or(HandlerError::NoResponseTopic)?;

    let mut plan = Plan::default();
    // Where each source record is, so a tagged event the broker refuses can
    // be dead-lettered as its source record.
    let mut sources: BTreeMap<Position, &SourceRecord<'_>> = BTreeMap::new();
    for records in &partitions {
        for (index, record) in records.iter().enumerate() {
            let bad = match tagged_record(record, &app.tagger, tagged_at, producer) {
                Ok(out) => {
                    sources.insert(Position::of(record), record);
                    plan.responses.push((Position::of(record), out));
                    continue;
                }
                Err(bad) => bad,
            };
            warn_bad(&Position::of(record), &bad, app, "record cannot be tagged");
            match (app.config.on_error, app.config.error_topic.as_deref()) {
                (OnError::Dlq, Some(_)) => plan
                    .dead_letters
                    .push((Position::of(record), dead_letter(record, &bad, producer))),
                (OnError::Log, _) => plan.skipped += 1,
                // `Dlq` always has a topic (the config checks it); without
                // one, failing is the only choice that loses nothing.
                (OnError::Fail | OnError::Dlq, _) => {
                    // The bad record and every later one of its partition:
                    // the mapping retries exactly the records listed, and
                    // the later ones wait behind it to keep their order.
                    for held in &records[index..] {
                        plan.failures.add(&held.topic, held.partition, held.offset);
                    }
                    plan.held_back += records.len() - index - 1;
                    break;
                }
            }
        }
    }

    tracing::debug!(
        budget_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64,
        responses = plan.responses.len(),
        dead_letters = plan.dead_letters.len(),
        "publishing"
    );
    let error_topic = app.config.error_topic.as_deref().unwrap_or_default();
    let (responses, dead_letters) = (
        std::mem::take(&mut plan.responses),
        std::mem::take(&mut plan.dead_letters),
    );
    let (published, dead_lettered) = tokio::join!(
        publish(producer, response_topic, responses, deadline),
        publish(producer, error_topic, dead_letters, deadline),
    );
    let mut delivered = 0;
    let mut failed_partitions = BTreeSet::new();
    // Tagged events the broker refused outright: the source record becomes
    // a dead letter (ON_ERROR=dlq), is skipped with its coordinates (log),
    // or is reported (fail), as a record that cannot be tagged would be.
    let (published, refused): (Vec<_>, Vec<_>) = published
        .into_iter()
        .partition(|(_, outcome)| !outcome.as_ref().is_err_and(ProduceError::is_permanent));
    let mut refused_letters = Vec::new();
    for (position, outcome) in refused {
        let reason = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        let bad = BadRecord::new(ErrorKind::RejectedByBroker, reason);
        warn_bad(&position, &bad, app, "the broker refused the tagged event");
        let source = sources.get(&position);
        match (
            app.config.on_error,
            app.config.error_topic.as_deref(),
            source,
        ) {
            (OnError::Dlq, Some(_), Some(record)) => {
                refused_letters.push((position, dead_letter(record, &bad, producer)));
            }
            (OnError::Log, _, _) => plan.skipped += 1,
            _ => plan
                .failures
                .add(&position.topic, position.partition, position.offset),
        }
    }
    let refused_dead_lettered = publish(producer, error_topic, refused_letters, deadline).await;
    for (topic, outcomes) in [
        (response_topic, published),
        (error_topic, dead_lettered),
        (error_topic, refused_dead_lettered),
    ] {
        for (position, outcome) in outcomes {
            match outcome {
                Ok(_) => delivered += 1,
                Err(error) => {
                    if failed_partitions.insert((position.topic.clone(), position.partition)) {
                        tracing::warn!(
                            destination = topic,
                            topic = %position.topic,
                            partition = position.partition,
                            offset = position.offset,
                            error = %error,
                            "publishing failed; the partition will be retried from here"
                        );
                    }
                    plan.failures
                        .add(&position.topic, position.partition, position.offset);
                }
            }
        }
    }
    tracing::info!(
        records = total,
        delivered,
        skipped = plan.skipped,
        held_back = plan.held_back,
        failed_partitions = failed_partitions.len(),
        "batch handled"
    );
    if !plan.failures.is_empty() && !app.config.partial_batch_responses {
        let first = plan
            .failures
            .first()
            .map(|(topic, partition, offset)| format!("{topic}-{partition}@{offset}"))
            .unwrap_or_default();
        return Err(HandlerError::Unpublished {
            count: plan.failures.len(),
            first,
        });
    }
    Ok(plan.failures.into_response())
}

/// The WARN line for a record set aside: its coordinates, what is wrong
/// and what `ON_ERROR` does with it (the line `ON_ERROR=log` leaves as the
/// record's only trace).
fn warn_bad(position: &Position, bad: &BadRecord, app: &App, message: &str) {
    tracing::warn!(
        topic = %position.topic,
        partition = position.partition,
        offset = position.offset,
        kind = bad.kind.as_str(),
        reason = %bad.message,
        on_error = %app.config.on_error,
        "{message}"
    );
}

/// Sends one topic's records (nothing at all when there are none) and pairs
/// each outcome with its source position.
async fn publish(
    producer: &KafkaProducer,
    topic: &str,
    batch: Vec<(Position, OutgoingRecord)>,
    deadline: Instant,
) -> Vec<(Position, ProduceOutcome)> {
    if batch.is_empty() {
        return Vec::new();
    }
    let (positions, records): (Vec<Position>, Vec<OutgoingRecord>) = batch.into_iter().unzip();
    let outcomes = producer.produce(topic, records, deadline).await;
    positions.into_iter().zip(outcomes).collect()
}

/// The tagged event as a record for the response topic: the original key,
/// the original headers plus the source position, the original timestamp.
fn tagged_record(
    record: &SourceRecord<'_>,
    tagger: &Tagger,
    tagged_at: &str,
    producer: &KafkaProducer,
) -> Result<OutgoingRecord, BadRecord> {
    let key = record.key()?;
    let value = record
        .value()?
        .ok_or_else(|| BadRecord::new(ErrorKind::NotJson, "the record has no value"))?;
    let mut headers: BTreeMap<String, Vec<u8>> = record.headers()?.into_iter().collect();
    let tagged = visit::tag_bytes(&value, tagger, tagged_at)?;
    add_source_headers(&mut headers, coordinates(record));
    let out = OutgoingRecord {
        key,
        value: Some(tagged),
        headers,
        timestamp: record.timestamp(),
    };
    if !producer.fits(&out) {
        let max_bytes = producer.config().max_message_bytes;
        return Err(BadRecord::new(
            ErrorKind::TooLarge,
            format!(
                "the tagged record is {} bytes, over the {max_bytes}-byte limit (KAFKA_MAX_MESSAGE_BYTES)",
                out.size()
            ),
        ));
    }
    Ok(out)
}

/// The raw record as a dead letter (see [`bad_record::dead_letter`]): key
/// and value as they came (decoded when they are base64), original headers
/// when readable, plus the error and source headers; a stub when that is
/// too large to send.
fn dead_letter(
    record: &SourceRecord<'_>,
    bad: &BadRecord,
    producer: &KafkaProducer,
) -> OutgoingRecord {
    let raw = RawRecord {
        key: record.raw_key(),
        value: record.raw_value(),
        headers: record
            .headers()
            .map(|h| h.into_iter().collect())
            .unwrap_or_default(),
        timestamp: record.timestamp(),
    };
    bad_record::dead_letter(raw, coordinates(record), bad, producer)
}

fn coordinates<'r>(record: &'r SourceRecord<'_>) -> Coordinates<'r> {
    Coordinates {
        topic: Some(&record.topic),
        partition: Some(record.partition),
        offset: Some(record.offset),
    }
}

#[cfg(test)]
mod tests;
