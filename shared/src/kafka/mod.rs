//! Producing to Kafka and Amazon MSK over rskafka.
//!
//! * [`config`]: connection settings from the environment.
//! * [`auth`]: MSK IAM tokens and SCRAM/PLAIN credentials.
//! * [`tls`]: rustls client configuration (one crypto provider: `ring`);
//!   the crate's [`crate::tls`] module, re-exported here for callers that
//!   name it under `kafka`.
//! * [`partitioner`]: Java-compatible key partitioning.
//! * [`producer`]: the batched, bounded producer.
//! * [`relay`]: the loopback relay that gives broker connections `TCP_NODELAY`.

pub mod auth;
pub mod config;
pub mod partitioner;
pub mod producer;
pub mod relay;
pub use crate::tls;

pub use config::{AuthMode, Bootstrap, Compression, KafkaConfig};
pub use producer::{
    Delivery, KafkaProducer, OutgoingRecord, PasswordReader, ProduceError, ProduceOutcome,
};
