//! Helpers for broker-backed tests, and an HTTP stub for the endpoints a
//! function calls outside Kafka (feature `test-util`).
//!
//! The broker comes from `KAFKA_TEST_BROKER` (`host:port`), which
//! `make test` sets after starting the local broker. Tests that need it are
//! marked `#[ignore]`, so a plain `cargo test` lists them as skipped rather
//! than passing them vacuously; `make test` runs them with
//! `--include-ignored`.

mod http_stub;
pub mod kafka_mapping;
mod oauth_gate;
mod refusing_broker;
pub mod stream_mapping;

pub use http_stub::{start_expecting_failure, FailedStart, HttpStub, RecordedRequest};
pub use oauth_gate::{GateLog, OauthBearerGate};
pub use refusing_broker::RefusingBroker;

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
        // tansu 0.6 reports a partition's high watermark as the base offset
        // of its last record batch plus one, so only an empty fetch proves
        // the end was reached.
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

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A private tansu broker for tests that need to break the network between
/// the producer and the broker. It listens on a plaintext port and
/// advertises `advertised_port`, where a [`FaultProxy`] (or a TLS proxy)
/// stands. Killed on drop.
#[derive(Debug)]
pub struct PrivateBroker {
    child: tokio::process::Child,
    /// The broker's own (plaintext) address.
    pub direct: String,
}

impl PrivateBroker {
    /// Starts tansu (`TANSU_BIN`) and waits until it accepts connections.
    #[allow(clippy::panic)]
    pub async fn start(advertised_host: &str, advertised_port: u16) -> Self {
        let bin = std::env::var("TANSU_BIN")
            .unwrap_or_else(|_| panic!("TANSU_BIN is not set: run `make test`"));
        let port = free_port();
        let child = tokio::process::Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--advertised-listener-url",
                &format!("tcp://{advertised_host}:{advertised_port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu: {e}"));
        let direct = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&direct).await.is_ok() {
                return Self { child, direct };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tansu did not open {direct}");
    }

    /// Creates a topic with tansu's own command, talking to the broker
    /// directly (its advertised address may be a proxy that is down).
    #[allow(clippy::panic)]
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let bin = std::env::var("TANSU_BIN").unwrap_or_default();
        let status = tokio::process::Command::new(bin)
            .args([
                "topic",
                "create",
                topic,
                "--partitions",
                &partitions.to_string(),
                "--broker",
            ])
            .arg(format!("tcp://{}", self.direct))
            .stdout(std::process::Stdio::null())
            .status()
            .await;
        assert!(
            matches!(status, Ok(s) if s.success()),
            "topic create failed: {status:?}"
        );
    }

    /// Stops the broker now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What a [`FaultProxy`] does with the bytes it relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relay everything.
    None,
    /// Hold every byte from now on: connections stay open, nothing moves.
    BlackHole,
    /// Relay, but wait this long before each chunk.
    Delay(Duration),
    /// Relay this many more client-to-broker bytes, then close every
    /// connection and refuse new ones: the broker is gone.
    CutAfter(usize),
    /// Relay about this many more client-to-broker bytes (whole reads),
    /// then hold everything, as [`Fault::BlackHole`] does.
    StallAfter(usize),
}

/// A TCP relay between the producer and a broker that can slow down,
/// swallow or cut the traffic on command.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    /// The port the proxy listens on.
    pub port: u16,
}

#[derive(Debug)]
struct ProxyState {
    fault: Fault,
    budget: usize,
    generation: u64,
}

impl FaultProxy {
    /// Listens on `port` and relays to `upstream`.
    #[allow(clippy::panic)]
    pub async fn start(port: u16, upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("cannot bind proxy port {port}: {e}"));
        let proxy = Self {
            state: std::sync::Arc::new(std::sync::Mutex::new(ProxyState {
                fault: Fault::None,
                budget: 0,
                generation: 0,
            })),
            port,
        };
        let state = std::sync::Arc::clone(&proxy.state);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let refuse = state
                    .lock()
                    .map(|s| matches!(s.fault, Fault::CutAfter(_)) && s.budget == 0)
                    .unwrap_or(true);
                if refuse {
                    drop(client);
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(relay(
                    client_read,
                    server_write,
                    std::sync::Arc::clone(&state),
                    true,
                ));
                tokio::spawn(relay(
                    server_read,
                    client_write,
                    std::sync::Arc::clone(&state),
                    false,
                ));
            }
        });
        proxy
    }

    /// Changes what the proxy does from now on.
    pub fn set(&self, fault: Fault) {
        if let Ok(mut s) = self.state.lock() {
            s.fault = fault;
            s.generation += 1;
            if let Fault::CutAfter(n) | Fault::StallAfter(n) = fault {
                s.budget = n;
            }
        }
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    client_to_broker: bool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let mut allowed = n;
        loop {
            let fault = match state.lock() {
                Ok(s) => s.fault,
                Err(_) => return,
            };
            match fault {
                Fault::None => break,
                Fault::BlackHole => tokio::time::sleep(Duration::from_millis(20)).await,
                Fault::Delay(d) => {
                    tokio::time::sleep(d).await;
                    break;
                }
                Fault::StallAfter(_) => {
                    let stalled = {
                        let Ok(mut s) = state.lock() else { return };
                        if s.budget > 0 && client_to_broker {
                            // The chunk goes through whole; the stall starts after it.
                            s.budget = s.budget.saturating_sub(n);
                            false
                        } else {
                            s.budget == 0
                        }
                    };
                    if !stalled {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Fault::CutAfter(_) => {
                    let Ok(mut s) = state.lock() else { return };
                    if !client_to_broker {
                        if s.budget == 0 {
                            return;
                        }
                        break;
                    }
                    if s.budget == 0 {
                        return;
                    }
                    allowed = allowed.min(s.budget);
                    s.budget -= allowed;
                    break;
                }
            }
        }
        if to.write_all(&buffer[..allowed]).await.is_err() {
            return;
        }
        if allowed < n {
            return;
        }
    }
}
