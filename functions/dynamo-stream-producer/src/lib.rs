//! DynamoDB stream producer: publishes DynamoDB Streams changes as JSON to a
//! Kafka/MSK topic.
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | the settings (`TOPIC_NAME`, `EVENT_NAMES`, `KEY_ATTRIBUTE`, `DEAD_LETTER_TOPIC`, …) |
//! | [`change`] | one stream record: read leniently, mapped to its Kafka record, or set aside as poison and turned into its dead letter |
//! | [`handler`] | the entry point: the batch through the shared pipeline, the partial batch response |
//!
//! `main.rs` wires it to the Lambda runtime.

pub mod change;
pub mod config;
pub mod handler;
