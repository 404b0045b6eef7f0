//! Building blocks for AWS Lambda functions that sit on streams: DynamoDB
//! Streams, Kinesis, Kafka/MSK, Firehose and DoubleCloud transfers.
//!
//! # Layout
//!
//! | module | holds | feature |
//! |---|---|---|
//! | [`config`] | [`config::Env`], typed reads of environment variables, [`config::Secret`] | |
//! | `kafka` | connection settings, MSK IAM and SCRAM/PLAIN auth, the Java-compatible partitioner and the batched producer | `kafka` |
//! | `dynamodb` | `AttributeValue` maps to exact JSON | `dynamodb` |
//! | [`lenient`] | one record at a time: typed, or its coordinates and why not | |
//! | `pipeline` | one batch from records to Kafka and back to the source's answer: `RecordHandler`, `Sink`, `process_partial_response` | `kafka` |
//! | [`redact`] | error descriptions that never quote the input (serde_json errors by category and position) | |
//! | `result` | the `Ok` / `Dropped` / `ProcessingFailed` / `Split` model and its DoubleCloud and Firehose wire forms | `transform` |
//! | [`batch`] | partial batch responses for streams and Kafka | |
//! | [`deadline`] | the invocation deadline as a budget for network calls | |
//! | `aws` | bounded Secrets Manager reads without the SDK, from the Lambda environment; with `aws-sdk`, SDK configuration and reads through the SDK | `aws`, `aws-sdk` |
//! | `tls` | rustls client configuration (one crypto provider: `ring`; Mozilla roots and an optional CA file) | `tls` |
//! | `https` | a small HTTPS client (hyper, rustls on `ring`) for calls outside the event | `https` |
//! | [`telemetry`] | logging set-up (and, with `log-capture`, log capture for tests) | |
//! | [`runtime_api`] | [`runtime_api::FunctionError`] (a stable `errorType` for Lambda) and start-up failures reported to the Runtime API | |
//!
//! # Features
//!
//! None is on by default; each function names the ones it uses, so it
//! compiles and links only those. `https` turns on `tls`, `aws` turns on
//! `https`, `aws-sdk` turns on `aws`, and `kafka` turns on `aws-sdk` (MSK
//! IAM signing and `kafka:GetBootstrapBrokers` go through the SDK) and
//! `tls`. `log-capture` is for tests. The harnesses, proxies and stubs the
//! tests use are in the separate, unpublished test-support crate.
//!
//! # Data flow
//!
//! A function's `main` reads its configuration once ([`config::Env`]),
//! builds a `kafka::KafkaProducer` (no I/O) and hands both to its handler.
//! Per invocation the handler turns each record into an
//! `kafka::OutgoingRecord` (DynamoDB images through `dynamodb`), sends
//! the batch with one `kafka::KafkaProducer::produce` call bounded by
//! [`deadline::stop_by`], and answers with a [`batch`] response built from
//! the per-record outcomes. Transformation functions answer with `result`
//! types instead.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "aws")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
pub mod aws;
pub mod batch;
pub mod config;
pub mod deadline;
#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub mod dynamodb;
#[cfg(feature = "https")]
#[cfg_attr(docsrs, doc(cfg(feature = "https")))]
pub mod https;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
pub mod lenient;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod pipeline;
pub mod redact;
#[cfg(feature = "transform")]
#[cfg_attr(docsrs, doc(cfg(feature = "transform")))]
pub mod result;
pub mod runtime_api;
pub mod telemetry;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

/// The start of every function's `main`: logging ([`telemetry::init`]) and,
/// with the `tls` feature, the one TLS crypto provider (`ring`) as the
/// process default, so that no library that builds a TLS configuration can
/// find none and panic. Without `tls` the function links no rustls through
/// this crate, so there is no provider to install.
pub fn init() {
    telemetry::init();
    #[cfg(feature = "tls")]
    tls::install_process_default();
}

/// The error type handlers return to the Lambda runtime.
pub type Error = lambda_runtime::Error;
