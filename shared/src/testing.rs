//! Helpers for broker-backed tests (feature `test-util`).
//!
//! The broker comes from `KAFKA_TEST_BROKER` (`host:port`), which
//! `make test` sets after starting the local broker. Tests that need it are
//! marked `#[ignore]`, so a plain `cargo test` lists them as skipped rather
//! than passing them vacuously; `make test` runs them with
//! `--include-ignored`.

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
    let client = client(broker).await?;
    let partition_client = client
        .partition_client(topic, partition, UnknownTopicHandling::Error)
        .await?;
    let stop = tokio::time::Instant::now() + timeout;
    let mut records = Vec::new();
    let mut offset = 0;
    while records.len() < expected && tokio::time::Instant::now() < stop {
        let (batch, high_watermark) = partition_client
            .fetch_records(offset, 1..10_000_000, 500)
            .await?;
        if let Some(last) = batch.last() {
            offset = last.offset + 1;
        }
        records.extend(batch);
        if offset >= high_watermark && records.len() >= expected {
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
            let records = read_partition(broker, topic, partition, 0, Duration::from_millis(1)).await?;
            all.extend(records.into_iter().map(|r| (partition, r)));
        }
        if all.len() >= expected || tokio::time::Instant::now() >= stop {
            return Ok(all);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
