//! Building blocks for AWS Lambda functions that sit on streams: DynamoDB
//! Streams, Kinesis, Kafka/MSK, Firehose and DoubleCloud transfers.
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | [`config::Env`], typed reads of environment variables, [`config::Secret`] |
//! | [`kafka`] | connection settings, MSK IAM and SCRAM/PLAIN auth, TLS, the Java-compatible partitioner and the batched producer |
//! | [`dynamodb`] | `AttributeValue` maps to exact JSON |
//! | [`lenient`] | one record at a time: typed, or its coordinates and why not |
//! | [`pipeline`] | one batch from records to Kafka and back to the source's answer: [`pipeline::RecordHandler`], [`pipeline::Sink`], [`pipeline::process_partial_response`] |
//! | [`redact`] | error descriptions that never quote the input (serde_json errors by category and position) |
//! | [`result`] | the `Ok` / `Dropped` / `ProcessingFailed` / `Split` model and its DoubleCloud and Firehose wire forms |
//! | [`batch`] | partial batch responses for streams and Kafka |
//! | [`deadline`] | the invocation deadline as a budget for network calls |
//! | [`aws`] | SDK configuration, and bounded Secrets Manager reads (through the SDK, or without it from the Lambda environment) |
//! | [`https`] | a small HTTPS client (hyper, rustls on `ring`) for calls outside the event |
//! | [`telemetry`] | logging set-up (and log capture for tests) |
//! | [`runtime_api`] | [`runtime_api::FunctionError`] (a stable `errorType` for Lambda) and start-up failures reported to the Runtime API |
//!
//! # Data flow
//!
//! A function's `main` reads its configuration once ([`config::Env`]),
//! builds a [`kafka::KafkaProducer`] (no I/O) and hands both to its handler.
//! Per invocation the handler turns each record into an
//! [`kafka::OutgoingRecord`] (DynamoDB images through [`dynamodb`]), sends
//! the batch with one [`kafka::KafkaProducer::produce`] call bounded by
//! [`deadline::stop_by`], and answers with a [`batch`] response built from
//! the per-record outcomes. Transformation functions answer with [`result`]
//! types instead.

pub mod aws;
pub mod batch;
pub mod config;
pub mod deadline;
pub mod dynamodb;
pub mod https;
pub mod kafka;
pub mod lenient;
pub mod pipeline;
pub mod redact;
pub mod result;
pub mod runtime_api;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;

/// The start of every function's `main`: logging ([`telemetry::init`]) and
/// the one TLS crypto provider (`ring`) as the process default, so that no
/// library that builds a TLS configuration can find none and panic.
pub fn init() {
    telemetry::init();
    // An error only means a default is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The error type handlers return to the Lambda runtime.
pub type Error = lambda_runtime::Error;
