//! Kinesis event logger: writes every record of a Kinesis batch as one
//! structured log line an operator can read and query.
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | the settings (`LOG_DATA_MAX_BYTES`, `LOG_MAX_LINES_PER_AGGREGATE`, `LOG_MAX_LINES_PER_INVOCATION`) |
//! | [`handler`] | the entry point, the batch loop, data classification |
//! | [`record`] | the batch type and reading each record: typed, or its coordinates only |
//! | [`kpl`] | the KPL aggregate reader (magic, protobuf, MD5) |
//!
//! # Data flow
//!
//! The runtime hands [`handler::function_handler`] the event as a
//! [`record::KinesisBatch`], each record still raw JSON text. Each record is
//! read on its own, its base64 data decoded into one reused buffer;
//! KPL aggregates are split into user records borrowed from that buffer, and
//! each (user) record becomes one `tracing` event whose `data` is text,
//! nested JSON or base64. Records that cannot be parsed become the Kinesis
//! partial batch response.

pub mod config;
pub mod handler;
pub mod kpl;
pub mod record;
