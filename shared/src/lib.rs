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
//! Every function has the same shape: `main.rs` wires, with
//! [`runtime_api::serve`] (logging and the TLS provider with [`init`]; its
//! `setup`, which reads the settings once from the environment into a typed
//! `Config` ([`config::Env`]) and builds the clients once; then
//! `run(service_fn(…))`), `config.rs` holds the settings and `handler.rs`
//! holds `function_handler(app, event)`, where `App` is what the execution
//! environment keeps between invocations.
//!
//! A function that writes to Kafka keeps the event's records raw, reads
//! each on its own ([`lenient`]), and hands the batch to the pipeline
//! (`pipeline::process_partial_response`) with its `RecordHandler`: one
//! record in, what becomes of it out. The pipeline produces through a
//! `Sink` (the `KafkaProducer`, or `MemorySink` in tests), dead-letters,
//! gives every record its disposition and answers as the source's event
//! source mapping expects. Transformation functions answer with `result`
//! types instead.
//!
//! # Writing a function
//!
//! A fifth function, Kinesis orders to Kafka, is its record type, its
//! mapper, a thin handler and `main`:
//!
//! ```no_run
//! # #[cfg(feature = "kafka")]
//! # mod example {
//! use aws_lambda_events::streams::KinesisEventResponse;
//! use lambda_runtime::LambdaEvent;
//! use lambda_stream_kit::config::Env;
//! use lambda_stream_kit::deadline::stop_by;
//! use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer, OutgoingRecord};
//! use lambda_stream_kit::lenient::{self, Lenient};
//! use lambda_stream_kit::pipeline::{
//!     answer, process_partial_response, Mapped, Position, RecordHandler, Rejection, Sink, Topics,
//! };
//! use lambda_stream_kit::runtime_api::{self, FunctionError};
//! use lambda_stream_kit::telemetry::trace;
//! use serde::Deserialize;
//! use serde_json::value::RawValue;
//!
//! /// The event, each record kept raw: one bad record cannot fail the batch.
//! #[derive(Deserialize)]
//! pub struct Batch {
//!     #[serde(rename = "Records")]
//!     records: Vec<Box<RawValue>>,
//! }
//!
//! /// What the function reads of a record.
//! #[derive(Deserialize)]
//! struct Order {
//!     #[serde(rename = "sequenceNumber")]
//!     sequence_number: String,
//!     customer: String,
//! }
//!
//! /// What it can still read of one that does not parse.
//! #[derive(Default, Deserialize)]
//! struct Coordinates {
//!     #[serde(rename = "sequenceNumber", default, deserialize_with = "lenient::text")]
//!     sequence_number: Option<String>,
//! }
//!
//! struct Orders;
//!
//! impl RecordHandler for Orders {
//!     type Record = (Box<RawValue>, Lenient<Order, Coordinates>);
//!
//!     fn position(&self, (_, read): &Self::Record) -> Position {
//!         let sequence_number = match read {
//!             Lenient::Parsed(order) => Some(order.sequence_number.clone()),
//!             Lenient::Unparsed { coordinates, .. } => coordinates.sequence_number.clone(),
//!         };
//!         Position::stream(sequence_number, None)
//!     }
//!
//!     fn map(&self, (raw, read): &Self::Record) -> Mapped {
//!         match read {
//!             Lenient::Parsed(order) => Mapped::Publish(OutgoingRecord {
//!                 key: Some(order.customer.clone().into_bytes()),
//!                 value: Some(raw.get().as_bytes().to_vec()),
//!                 ..OutgoingRecord::default()
//!             }),
//!             Lenient::Unparsed { reason, .. } => {
//!                 Mapped::DeadLetter(Rejection::new("malformed-record", reason.as_str()))
//!             }
//!         }
//!     }
//!
//!     fn dead_letter(&self, (raw, _): &Self::Record, why: &Rejection) -> OutgoingRecord {
//!         let mut letter = OutgoingRecord {
//!             value: Some(raw.get().as_bytes().to_vec()),
//!             ..OutgoingRecord::default()
//!         };
//!         letter.headers.insert("dlq-reason".into(), why.message.clone().into_bytes());
//!         letter
//!     }
//! }
//!
//! pub async fn function_handler(
//!     sink: &impl Sink,
//!     event: LambdaEvent<Batch>,
//! ) -> Result<KinesisEventResponse, FunctionError> {
//!     let deadline = stop_by(&event.context, std::time::Duration::from_secs(1));
//!     let records: Vec<_> = event
//!         .payload
//!         .records
//!         .into_iter()
//!         .map(|raw| {
//!             let read = lenient::read(&raw, "record");
//!             (raw, read)
//!         })
//!         .collect();
//!     let trace = event.context.xray_trace_id.as_deref().and_then(trace::traceparent);
//!     let topics = Topics {
//!         publish: "orders",
//!         dead_letters: Some("orders-dlq"),
//!         traceparent: trace.as_deref(),
//!     };
//!     process_partial_response(sink, &Orders, topics, &[records], deadline, &answer::KinesisStream)
//!         .await
//! }
//!
//! pub async fn main() -> std::process::ExitCode {
//!     runtime_api::serve(setup, function_handler).await
//! }
//!
//! fn setup(env: &Env<'_>) -> Result<KafkaProducer, FunctionError> {
//!     Ok(KafkaProducer::new(KafkaConfig::from_env(env)?))
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! Its tests hand `function_handler` a `pipeline::MemorySink` and read back
//! what landed on each topic (see the `pipeline` module's example).

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
