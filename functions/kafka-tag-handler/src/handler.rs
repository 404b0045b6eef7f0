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

use lambda_runtime::LambdaEvent;
use lambda_stream_kit::batch::KafkaEventResponse;
use lambda_stream_kit::deadline::stop_by;
use lambda_stream_kit::kafka::KafkaProducer;
use lambda_stream_kit::pipeline::{answer, process_partial_response, Sink, Topics};
use lambda_stream_kit::runtime_api::FunctionError;
use lambda_stream_kit::telemetry::error_chain;
use lambda_stream_kit::telemetry::trace::traceparent;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

pub use crate::bad_record::{
    ERROR_KIND_HEADER, ERROR_MESSAGE_HEADER, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
};
use crate::config::Config;
use crate::connector::{self, ConnectorError};
use crate::mapper::Tagging;
use crate::rules::Tagger;
use crate::source::{self, Batch, Payload};

/// Time kept back from the invocation deadline to answer after producing.
pub const PUBLISH_MARGIN: Duration = Duration::from_secs(1);

/// What every invocation needs, built once per execution environment.
#[derive(Debug)]
pub struct App<S = KafkaProducer> {
    /// The settings.
    pub config: Config,
    /// The compiled tag rules.
    pub tagger: Tagger,
    /// Where records go: the Kafka producer, or an in-memory sink in tests.
    pub sink: S,
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
    /// A connector call failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

impl HandlerError {
    /// The `errorType` Lambda records for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::WrongShape(_) => "Event.Unrecognised",
            Self::NoResponseTopic => "Config.NoResponseTopic",
            Self::Connector(e) => e.error_type(),
        }
    }
}

impl From<HandlerError> for FunctionError {
    fn from(error: HandlerError) -> Self {
        let message = error_chain(&error);
        tracing::error!(error = %message, error_type = error.error_type(), "invocation failed");
        FunctionError::new(error.error_type(), message)
    }
}

/// Handles one invocation. The runtime reads the payload straight into a
/// [`Payload`] (see [`crate::source`]).
pub async fn function_handler<S: Sink>(
    app: &App<S>,
    event: LambdaEvent<Payload>,
) -> Result<Answer, FunctionError> {
    let (payload, context) = event.into_parts();
    let tagged_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let deadline = stop_by(&context, PUBLISH_MARGIN);
    let trace = context.xray_trace_id.as_deref().and_then(traceparent);
    let trace = trace.as_deref();
    match payload {
        Payload::Connector(items) => Ok(Answer::Connector(
            connector::handle(
                items,
                &app.config,
                &app.tagger,
                &app.sink,
                &tagged_at,
                deadline,
                trace,
            )
            .await
            .map_err(HandlerError::from)?,
        )),
        Payload::Batch(batch) => handle_batch(&batch, app, &tagged_at, deadline, trace)
            .await
            .map(Answer::Batch),
        Payload::Other(kind) => Err(HandlerError::WrongShape(format!(
            "expected an object with `records` or an array, got {kind}"
        ))
        .into()),
    }
}

async fn handle_batch<S: Sink>(
    batch: &Batch,
    app: &App<S>,
    tagged_at: &str,
    deadline: Instant,
    trace: Option<&str>,
) -> Result<KafkaEventResponse, FunctionError> {
    let partitions = source::partitions(batch).map_err(HandlerError::WrongShape)?;
    if partitions.iter().all(Vec::is_empty) {
        tracing::info!("empty batch");
        return Ok(KafkaEventResponse::default());
    }
    let response_topic = app
        .config
        .response_topic
        .as_deref()
        .ok_or(HandlerError::NoResponseTopic)?;
    let mapper = Tagging {
        config: &app.config,
        tagger: &app.tagger,
        sink: &app.sink,
        tagged_at,
    };
    let topics = Topics {
        publish: response_topic,
        dead_letters: app.config.error_topic.as_deref(),
        traceparent: trace,
    };
    let answer = answer::KafkaMapping {
        partial_batch_responses: app.config.partial_batch_responses,
    };
    process_partial_response(&app.sink, &mapper, topics, &partitions, deadline, &answer).await
}

#[cfg(test)]
mod tests;
