//! The source's way of answering a [`Report`], by the rules of its event
//! source mapping (see [`crate::batch`]).

use aws_lambda_events::streams::{DynamoDbEventResponse, KinesisEventResponse};

use crate::batch::{dynamodb_response, kinesis_response, KafkaEventResponse, KafkaFailures};
use crate::pipeline::{warn_at, Position, Report};
use crate::runtime_api::FunctionError;

/// Turns a batch's [`Report`] into the source's answer, or into a failed
/// invocation when only that makes the source deliver the records again.
pub trait Answer {
    /// What the function returns.
    type Response;

    /// The answer for `report`.
    fn answer(&self, report: &Report) -> Result<Self::Response, FunctionError>;
}

/// DynamoDB Streams: the first record not done, by sequence number.
#[derive(Debug, Clone, Copy, Default)]
pub struct DynamoDbStream;

/// Kinesis: the first record not done, by sequence number.
#[derive(Debug, Clone, Copy, Default)]
pub struct KinesisStream;

/// The MSK or self-managed Kafka event source mapping.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaMapping {
    /// Whether the mapping acts on a partial batch response
    /// (`ReportBatchItemFailures`, provisioned mode). Without it any
    /// successful answer commits the whole batch, so records not done fail
    /// the invocation instead.
    pub partial_batch_responses: bool,
}

impl Answer for DynamoDbStream {
    type Response = DynamoDbEventResponse;

    fn answer(&self, report: &Report) -> Result<Self::Response, FunctionError> {
        first_not_done(report).map(dynamodb_response)
    }
}

impl Answer for KinesisStream {
    type Response = KinesisEventResponse;

    fn answer(&self, report: &Report) -> Result<Self::Response, FunctionError> {
        first_not_done(report).map(kinesis_response)
    }
}

/// The sequence number a stream resumes from: the first record not done.
/// A stream checkpoints at the lowest sequence number reported, so the
/// records after it come again too.
fn first_not_done(report: &Report) -> Result<Option<&str>, FunctionError> {
    let Some((index, entry)) = report
        .entries
        .iter()
        .enumerate()
        .find(|(_, e)| !e.disposition.is_done())
    else {
        return Ok(None);
    };
    let reason = entry.disposition.reason().unwrap_or_default();
    let not_done = report.not_done().count();
    match &entry.position {
        Position::Stream {
            sequence_number: Some(sequence_number),
            ..
        } => {
            warn_at!(
                &entry.position,
                reason,
                not_done,
                "reporting the first record not done; Lambda redelivers from it"
            );
            Ok(Some(sequence_number))
        }
        _ => Err(FunctionError::new(
            "Record.Unidentifiable",
            format!(
                "record {index} failed ({reason}) and has no SequenceNumber to report; failing the whole batch"
            ),
        )),
    }
}

impl Answer for KafkaMapping {
    type Response = KafkaEventResponse;

    fn answer(&self, report: &Report) -> Result<Self::Response, FunctionError> {
        let mut failures = KafkaFailures::default();
        for entry in report.not_done() {
            match &entry.position {
                Position::Kafka {
                    topic,
                    partition,
                    offset,
                } => failures.add(topic, *partition, *offset),
                Position::Stream { .. } => {
                    return Err(FunctionError::new(
                        "Record.Unidentifiable",
                        format!(
                            "a record without a Kafka position failed: {}",
                            entry.position
                        ),
                    ))
                }
            }
        }
        if failures.is_empty() || self.partial_batch_responses {
            return Ok(failures.into_response());
        }
        let first = failures
            .first()
            .map(|(topic, partition, offset)| format!("{topic}-{partition}@{offset}"))
            .unwrap_or_default();
        let error = FunctionError::new(
            "Kafka.Unpublished",
            format!(
                "{} record(s) were not published or dead-lettered, the first {first}; failing the invocation so Lambda retries the batch (the trigger does not act on partial batch responses)",
                failures.len()
            ),
        );
        tracing::error!(
            error = error.message(),
            error_type = error.error_type(),
            "invocation failed"
        );
        Err(error)
    }
}
