//! Tags clickstream page-visit events read from Kafka.
//!
//! It replaces a function that a Confluent AWS Lambda Sink connector called
//! for every page-visit message: under Lambda's own MSK or self-managed
//! Kafka event source mapping the function publishes its results itself,
//! tagged events to a response topic and unusable records to an error
//! topic. It still answers the connector's synchronous calls.
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | the settings (`RESPONSE_TOPIC`, `ERROR_TOPIC`, `ON_ERROR`, `TAG_RULES_FILE`) |
//! | [`rules`] | the rules file format, its compilation, and tagging a visit (URL rules, referrer channel, device) |
//! | [`visit`] | finding a page visit's fields (with aliases) and writing the tagged event |
//! | [`source`] | the payload as the runtime reads it, and the event source mapping's records, each read leniently |
//! | [`connector`] | the connector's array in, results array out |
//! | [`mapper`] | one batch record through the shared pipeline: tagged and published, or set aside as `ON_ERROR` says |
//! | [`handler`] | the entry point: trigger detection, the batch through the shared pipeline, the connector call |
//! | [`bad_record`] | why a record could not be tagged |
//!
//! # Data flow
//!
//! `main` reads [`config::Config`], compiles the [`rules::Tagger`] and
//! builds a `KafkaProducer` once, all held in a [`handler::App`]. The runtime reads each invocation's JSON
//! straight into a [`source::Payload`] (a connector array, or a batch's
//! `records` kept as raw JSON text). For a batch,
//! [`handler::function_handler`] splits the records per topic-partition
//! and reads each record on its own ([`source`]), then hands them to the
//! shared pipeline (`lambda_stream_kit::pipeline`) with
//! [`mapper::Tagging`], which decodes and tags each one ([`visit`],
//! [`rules`]); the pipeline sends the tagged events and the dead letters
//! with one produce call per topic and lists every record not handled.

pub mod bad_record;
pub mod config;
pub mod connector;
pub mod handler;
pub mod mapper;
pub mod rules;
pub mod source;
pub mod visit;

pub use handler::{function_handler, Answer, App};
