//! Test support for the workspace (unpublished; only ever a
//! dev-dependency): helpers for broker-backed tests on Apache Kafka, a
//! fault-injecting proxy for the network, an HTTP stub for the endpoints a function calls
//! outside Kafka, emulators of Lambda's event source mappings, and the
//! small things tests kept writing again (a free port, a `Context` with a
//! deadline, how Lambda reads a log line's level).
//!
//! | item | what it is |
//! |---|---|
//! | [`broker`], [`unique_topic`], [`create_topic`], [`read_topic`], … | the shared test broker (`KAFKA_TEST_BROKER`) and plain rskafka reads |
//! | [`listeners`], [`admin`], [`read_back`] | the shared broker's every listener (`KAFKA_TEST_LISTENERS`), Kafka's Admin client, and kafka-python reading a topic back |
//! | [`PrivateBroker`] | an Apache Kafka broker of the test's own, behind a front |
//! | [`FaultProxy`] | a TCP relay that delays, stalls or cuts traffic and counts requests |
//! | [`HttpStub`], [`start_expecting_failure`] | a plain HTTP/1.1 stub; a function binary started with a bad configuration |
//! | [`kafka_mapping`], [`stream_mapping`] | Lambda's Kafka and DynamoDB Streams/Kinesis event source mappings |
//! | [`transfer_engine`] | the Transferia transfer engine's side of a transformation call |
//! | [`live`], [`http_client`] | the same mappings run live against moto, the broker and `cargo lambda watch` (`mapping-runner`) |
//! | [`free_port`], [`context_expiring_in`], [`lambda_reads_level`] | the small helpers |
//!
//! The broker is Apache Kafka, started by `scripts/kafka.sh`. Its address
//! comes from `KAFKA_TEST_BROKER` (`host:port`), which `make test` sets
//! after starting it. Tests that need it are
//! marked `#[ignore]`, so a plain `cargo test` lists them as skipped rather
//! than passing them vacuously; `make test` runs them with
//! `--include-ignored`.
//!
//! The crate depends on no crate of the workspace, so lambda-stream-kit's
//! own unit tests can use it without building a second lambda-stream-kit.

pub mod bench;
mod fault_proxy;
pub mod http_client;
mod http_stub;
mod kafka_broker;
pub mod kafka_mapping;
mod kafka_wire;
pub mod live;
pub mod stream_mapping;
pub mod transfer_engine;

pub use fault_proxy::{Fault, FaultProxy, Traffic};
pub use http_stub::{start_expecting_failure, FailedStart, HttpStub, RecordedRequest};
pub use kafka_broker::{
    admin, create_secret, listeners, moto, new_topic, read_back, ConsumedRecord, IamCredentials,
    ListenerMode, Listeners, LogCursor, PrivateBroker, ReadBack, StoredBatch,
};
pub use kafka_wire::{api_key, NOT_LEADER_OR_FOLLOWER};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::RecordAndOffset;
use rskafka::BackoffConfig;

/// The test broker's address. Panics with instructions when unset, so a
/// broker test can never pass without a broker.
#[allow(clippy::panic)]
pub fn broker() -> String {
    match std::env::var("KAFKA_TEST_BROKER") {
        Ok(b) if !b.trim().is_empty() => b.trim().to_owned(),
        _ => panic!("KAFKA_TEST_BROKER is not set: run `make test`, which starts a local broker"),
    }
}

/// A topic name no other test uses.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain rskafka client for setting up and reading back, independent of
/// the producer under test.
pub async fn client(broker: &str) -> Result<Client, rskafka::client::error::Error> {
    ClientBuilder::new(vec![broker.to_owned()])
        .backoff_config(BackoffConfig {
            deadline: Some(Duration::from_secs(10)),
            ..Default::default()
        })
        .build()
        .await
}

/// Creates `topic` with `partitions` partitions and waits until every
/// partition has a leader.
pub async fn create_topic(
    broker: &str,
    topic: &str,
    partitions: i32,
) -> Result<(), rskafka::client::error::Error> {
    let client = client(broker).await?;
    client
        .controller_client()?
        .create_topic(topic, partitions, 1, 5_000)
        .await?;
    for partition in 0..partitions {
        client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await?;
    }
    Ok(())
}

/// Reads every record of one partition from offset 0 until `expected`
/// records arrived or `timeout` passed.
pub async fn read_partition(
    broker: &str,
    topic: &str,
    partition: i32,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<RecordAndOffset>, rskafka::client::error::Error> {
    read_partition_with(&client(broker).await?, topic, partition, expected, timeout).await
}

/// [`read_partition`] through a client of the caller's, for brokers that
/// need authentication.
pub async fn read_partition_with(
    client: &Client,
    topic: &str,
    partition: i32,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<RecordAndOffset>, rskafka::client::error::Error> {
    let partition_client = client
        .partition_client(topic, partition, UnknownTopicHandling::Error)
        .await?;
    let stop = tokio::time::Instant::now() + timeout;
    let mut records = Vec::new();
    let mut offset = 0;
    loop {
        let fetch = partition_client.fetch_records(offset, 1..10_000_000, 200);
        let Ok(fetched) = tokio::time::timeout_at(stop, fetch).await else {
            break;
        };
        // Only an empty fetch proves the end was reached: the records of a
        // produce may still be on their way.
        let (batch, _high_watermark) = fetched?;
        let caught_up = batch.is_empty();
        if let Some(last) = batch.last() {
            offset = last.offset + 1;
        }
        records.extend(batch);
        if (records.len() >= expected && caught_up) || tokio::time::Instant::now() >= stop {
            break;
        }
    }
    Ok(records)
}

/// Reads every partition of `topic`, returning `(partition, record)` pairs.
pub async fn read_topic(
    broker: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<(i32, RecordAndOffset)>, rskafka::client::error::Error> {
    let stop = tokio::time::Instant::now() + timeout;
    loop {
        let mut all = Vec::new();
        for partition in 0..partitions {
            // Each partition is read until caught up with its high watermark.
            let budget = stop
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_secs(2));
            let records = read_partition(broker, topic, partition, 0, budget).await?;
            all.extend(records.into_iter().map(|r| (partition, r)));
        }
        if all.len() >= expected || tokio::time::Instant::now() >= stop {
            return Ok(all);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A free loopback port: bound and released, so nothing listens on it
/// (fine for tests; another process could take it in between).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A Lambda context whose deadline is `budget` from now, as the runtime
/// sets it (milliseconds since the Unix epoch).
pub fn context_expiring_in(budget: Duration) -> lambda_runtime::Context {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut context = lambda_runtime::Context::default();
    context.deadline = u64::try_from((now + budget).as_millis()).unwrap_or(u64::MAX);
    context
}

/// The levels Lambda's log filter knows.
const LAMBDA_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The level Lambda's JSON log filter gives `line`: its `level` when the
/// line also has a valid RFC 3339 `timestamp`, INFO otherwise (Lambda
/// developer guide, "Log-level filtering").
pub fn lambda_reads_level(line: &serde_json::Value) -> &str {
    let stamped = line["timestamp"]
        .as_str()
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
    match line["level"].as_str() {
        Some(level) if stamped && LAMBDA_LEVELS.contains(&level) => level,
        _ => "INFO",
    }
}
