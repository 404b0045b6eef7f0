//! CDC enricher: the DoubleCloud/Transferia "lambda transformation" (and the
//! same enrichment as an Amazon Data Firehose transformation).
//!
//! A transfer reads Kafka messages into change items and posts them, in
//! batches, to this function's URL. Each message holds form-urlencoded
//! events, one per line; each event becomes one output change item enriched
//! with the function's public IP, and every input record gets exactly one
//! result, in order.
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | settings from the environment |
//! | [`handler`] | telling event shapes apart, the Function-URL envelope, whole-call errors |
//! | [`doublecloud`] | the DoubleCloud batch, per-record transformation and response |
//! | [`firehose`] | the Firehose transformation |
//! | [`budget`] | the answer's size budget under Lambda's 6 MB response limit |
//! | [`enrich`] | the message format: lines, form-urlencoded fields, the enriched event |
//! | [`ip`] | the enrichment IP, configured or fetched once (the shared library's HTTPS client) |
//! | [`json`] | reading the event and records as raw JSON, without a `Value` tree (records go through the shared `lenient` reader) |
//! | [`auth`] | the bearer token Function-URL callers must present (its secret read without the AWS SDK) |
//!
//! # Data flow
//!
//! `main` reads [`config::Config`] once and builds a [`handler::App`]
//! (no I/O). Per call, [`handler::function_handler`] checks the caller
//! (Function URL only), takes the record list, gets the IP from
//! [`ip::IpSource`] (skipped for the empty probe), and maps every record
//! through [`enrich::events`] to a result, pricing the answer against
//! [`budget::Budget`] as it goes.

pub mod auth;
pub mod budget;
pub mod config;
pub mod doublecloud;
pub mod enrich;
pub mod firehose;
pub mod handler;
pub mod ip;
pub mod json;
