//! DynamoDB stream producer: publishes DynamoDB Streams changes as JSON to a
//! Kafka/MSK topic. The logic is in [`handler`]; `main.rs` wires it to the
//! Lambda runtime.

pub mod handler;
