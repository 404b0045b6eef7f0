//! What the producer asks the broker, request by request, counted by a
//! [`FaultProxy`] that every connection goes through: the broker (a private
//! Apache Kafka, [`PrivateBroker`]) advertises the proxy, so leader
//! connections cross it too.
//!
//! A warm invocation must cost only its produce requests; a leader change
//! must cost one leader lookup and lose or duplicate nothing.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use lambda_stream_kit::kafka::partitioner::partition_for_key;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer, OutgoingRecord};
use test_support::{api_key, Fault, FaultProxy, PrivateBroker, Traffic};
use tokio::time::Instant;

const PARTITIONS: usize = 6;
/// What the producer allows for a request's and a record's framing
/// (`BATCH_OVERHEAD` and `RECORD_OVERHEAD` in `kafka/producer.rs`).
const BATCH_OVERHEAD: usize = 128;
const RECORD_OVERHEAD: usize = 32;

struct Rig {
    broker: PrivateBroker,
    proxy: FaultProxy,
    producer: KafkaProducer,
    config: KafkaConfig,
}

async fn rig(topic: &str) -> Rig {
    let (broker, proxy) = PrivateBroker::start_behind_proxy().await;
    broker.create_topic(topic, PARTITIONS as i32).await;
    let config = KafkaConfig::plaintext(vec![proxy.address()]);
    let producer = KafkaProducer::new(config.clone());
    Rig {
        broker,
        proxy,
        producer,
        config,
    }
}

/// Record `i` of a batch tagged `batch`: keyed, and named in its value so
/// the read-back can tell every copy apart.
fn record(batch: &str, i: usize) -> OutgoingRecord {
    OutgoingRecord {
        key: Some(format!("customer-{i}").into_bytes()),
        value: Some(format!("{batch}-{i}").into_bytes()),
        headers: BTreeMap::from([("source".to_owned(), b"round-trips".to_vec())]),
        timestamp: None,
    }
}

fn batch(name: &str, n: usize) -> Vec<OutgoingRecord> {
    (0..n).map(|i| record(name, i)).collect()
}

/// Produces `records`, asserting every one is acknowledged, and returns
/// what crossed the proxy meanwhile.
async fn produce_all(rig: &Rig, topic: &str, records: Vec<OutgoingRecord>) -> Traffic {
    let before = rig.proxy.traffic();
    let outcomes = rig
        .producer
        .produce(topic, records, Instant::now() + Duration::from_secs(20))
        .await;
    for (i, outcome) in outcomes.iter().enumerate() {
        assert!(outcome.is_ok(), "record {i}: {outcome:?}");
    }
    rig.proxy.traffic().since(&before)
}

fn describe(traffic: &Traffic) -> String {
    format!(
        "Metadata {}, ApiVersions {}, Produce {}, SASL {}, other {:?}, new connections {}",
        traffic.requests_of(api_key::METADATA),
        traffic.requests_of(api_key::API_VERSIONS),
        traffic.requests_of(api_key::PRODUCE),
        traffic.requests_of(api_key::SASL_HANDSHAKE)
            + traffic.requests_of(api_key::SASL_AUTHENTICATE),
        traffic
            .requests
            .iter()
            .filter(|(k, _)| {
                ![
                    api_key::METADATA,
                    api_key::API_VERSIONS,
                    api_key::PRODUCE,
                    api_key::SASL_HANDSHAKE,
                    api_key::SASL_AUTHENTICATE,
                ]
                .contains(k)
            })
            .collect::<Vec<_>>(),
        traffic.connections,
    )
}

/// The most produce requests `records` can need: the producer cuts each
/// partition's records, in order, into requests that fit
/// `max_message_bytes`. A record's `size()` is at least what the producer
/// counts for it, and cutting in order never needs fewer requests for
/// larger records, so this bounds it from above.
fn produce_requests_bound(records: &[OutgoingRecord], max_message_bytes: usize) -> usize {
    let budget = max_message_bytes - BATCH_OVERHEAD;
    let mut per_partition: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
    for record in records {
        let key = record.key.as_deref().unwrap();
        let (requests, used) = per_partition
            .entry(partition_for_key(key, PARTITIONS))
            .or_insert((1, 0));
        let size = record.size() + RECORD_OVERHEAD;
        if *used > 0 && *used + size > budget {
            *requests += 1;
            *used = 0;
        }
        *used += size;
    }
    per_partition.values().map(|(requests, _)| requests).sum()
}

/// Every value on the topic and how often it is there.
async fn copies(rig: &Rig, topic: &str, expected: usize) -> BTreeMap<String, usize> {
    let landed = test_support::read_topic(
        &rig.broker.direct,
        topic,
        PARTITIONS as i32,
        expected,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let mut copies = BTreeMap::new();
    for (_, got) in landed {
        let value = String::from_utf8(got.record.value.unwrap()).unwrap();
        *copies.entry(value).or_default() += 1;
    }
    copies
}

/// The cold call is logged, not asserted, since rskafka decides it: with
/// six partitions it made 8 Metadata requests (the client build's, the
/// producer's `list_topics`, and one per partition client asking the leader
/// whether it leads), 7 ApiVersions and 7 connections (one per partition
/// client, all to the one broker), the partition clients concurrently.
#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_warm_invocation_asks_for_nothing_but_its_produce_requests() {
    let topic = "round-trips";
    let rig = rig(topic).await;
    // A millisecond each way, as between a Lambda function and its
    // cluster: the counts do not change, and the times show the round trips.
    rig.proxy.set(Fault::Latency(Duration::from_millis(1)));
    let started = Instant::now();
    let cold = produce_all(&rig, topic, batch("cold", 1000)).await;
    eprintln!(
        "cold call, 1000 records, {:?}: {}",
        started.elapsed(),
        describe(&cold)
    );

    let records = batch("warm", 1000);
    let bound = produce_requests_bound(&records, rig.config.max_message_bytes);
    // 1,000 small records: each partition's fit one request.
    assert_eq!(bound, PARTITIONS);
    let started = Instant::now();
    let warm = produce_all(&rig, topic, records).await;
    eprintln!(
        "warm call, 1000 records, {:?}: {}",
        started.elapsed(),
        describe(&warm)
    );
    assert_eq!(warm.requests_of(api_key::METADATA), 0, "{warm:?}");
    assert_eq!(warm.requests_of(api_key::API_VERSIONS), 0, "{warm:?}");
    assert_eq!(warm.requests_of(api_key::SASL_HANDSHAKE), 0, "{warm:?}");
    assert_eq!(warm.requests_of(api_key::SASL_AUTHENTICATE), 0, "{warm:?}");
    let produce = warm.requests_of(api_key::PRODUCE);
    assert!(
        (PARTITIONS..=bound).contains(&produce),
        "{produce} produce requests for {PARTITIONS} partitions (at most {bound})"
    );
    assert_eq!(
        warm.requests.values().sum::<usize>(),
        produce,
        "nothing but produce requests: {warm:?}"
    );
    assert_eq!(warm.connections, 0, "no new connection");
    rig.broker.stop().await;
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_leader_change_costs_one_leader_lookup_and_loses_or_duplicates_nothing() {
    let topic = "leader-change";
    let rig = rig(topic).await;
    produce_all(&rig, topic, batch("warm-up", 100)).await;

    // The broker that gets the next produce request no longer leads its
    // partition: it appends nothing and says so.
    rig.proxy.set(Fault::NotLeaderOnce);
    let during = produce_all(&rig, topic, batch("moved", 300)).await;
    eprintln!("leader change, 300 records: {}", describe(&during));
    assert_eq!(rig.proxy.fault(), Fault::None, "the fault fired");

    // rskafka's partition client drops the connection it thought led the
    // partition and finds the leader again (PartitionClient::get): a
    // metadata request to any broker, a connection to the leader, and a
    // metadata request to the leader itself, to check it agrees. Then the
    // refused request goes again, in the same call.
    assert_eq!(during.requests_of(api_key::METADATA), 2, "{during:?}");
    assert_eq!(during.requests_of(api_key::API_VERSIONS), 1, "{during:?}");
    assert_eq!(during.connections, 1, "{during:?}");
    assert_eq!(
        during.requests_of(api_key::PRODUCE),
        PARTITIONS + 1,
        "one request per partition, and the refused one again"
    );

    // Nothing was appended by the refused request: every record is there
    // exactly once.
    let copies = copies(&rig, topic, 400).await;
    assert_eq!(copies.len(), 400);
    let twice: Vec<_> = copies.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "duplicated or missing: {twice:?}");
    rig.broker.stop().await;
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_leader_change_after_the_append_duplicates_exactly_the_request_it_hit() {
    let topic = "leader-change-after-append";
    let rig = rig(topic).await;
    produce_all(&rig, topic, batch("warm-up", 100)).await;

    // The broker appends the next produce request, then answers as if it
    // had lost the leadership: the retry appends the same records again.
    rig.proxy.set(Fault::NotLeaderAfterAppendOnce);
    let records = batch("moved", 300);
    let during = produce_all(&rig, topic, records.clone()).await;
    eprintln!(
        "leader change after append, 300 records: {}",
        describe(&during)
    );
    assert_eq!(rig.proxy.fault(), Fault::None, "the fault fired");
    assert_eq!(during.requests_of(api_key::PRODUCE), PARTITIONS + 1);

    // At least once: the records of one partition (one request each) are
    // there twice, every other record once.
    let mut per_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let partition = partition_for_key(record.key.as_deref().unwrap(), PARTITIONS);
        per_partition
            .entry(partition)
            .or_default()
            .push(format!("moved-{i}"));
    }
    let landed = copies(&rig, topic, 100 + 300).await;
    let twice: Vec<&String> = landed
        .iter()
        .filter(|(_, &n)| n == 2)
        .map(|(value, _)| value)
        .collect();
    assert!(
        landed.values().all(|&n| n == 1 || n == 2),
        "a record is missing or there more than twice"
    );
    assert_eq!(landed.len(), 400, "a record is missing");
    let hit: Vec<_> = per_partition
        .iter()
        .filter(|(_, values)| values.iter().all(|v| twice.contains(&v)))
        .map(|(partition, values)| (*partition, values.len()))
        .collect();
    assert_eq!(hit.len(), 1, "one partition duplicated whole: {hit:?}");
    assert_eq!(twice.len(), hit[0].1, "and nothing else: {twice:?}");
    rig.broker.stop().await;
}
