//! The shared producer against the broker of record (Apache Kafka, started by
//! `make test`).
//!
//! Read-back uses a plain rskafka client from `test_support`,
//! not the producer under test.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use lambda_stream_kit::kafka::partitioner::partition_for_key;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer, OutgoingRecord, ProduceError};
use tokio::time::Instant;

const NEEDS_BROKER: &str = "needs a broker: make test runs it";

fn record(i: usize) -> OutgoingRecord {
    OutgoingRecord {
        key: Some(format!("customer-{i}").into_bytes()),
        value: Some(format!(r#"{{"n":{i}}}"#).into_bytes()),
        headers: BTreeMap::from([
            ("source".to_owned(), b"test".to_vec()),
            ("index".to_owned(), i.to_string().into_bytes()),
        ]),
        timestamp: Some(
            Utc.timestamp_millis_opt(1_700_000_000_000 + i as i64)
                .unwrap(),
        ),
    }
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn records_land_with_value_key_headers_timestamp_on_the_java_partition() {
    let _ = NEEDS_BROKER;
    let broker = test_support::broker();
    let topic = test_support::unique_topic("producer-fields");
    test_support::create_topic(&broker, &topic, 6)
        .await
        .unwrap();

    let producer = KafkaProducer::new(KafkaConfig::plaintext(vec![broker.clone()]));
    let records: Vec<OutgoingRecord> = (0..300).map(record).collect();
    let outcomes = producer
        .produce(
            &topic,
            records.clone(),
            Instant::now() + Duration::from_secs(20),
        )
        .await;

    let mut deliveries = BTreeMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let delivery = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(
            delivery.partition,
            partition_for_key(format!("customer-{i}").as_bytes(), 6),
            "record {i} is not on Java's partition"
        );
        deliveries.insert((delivery.partition, delivery.offset), i);
    }

    let landed = test_support::read_topic(&broker, &topic, 6, 300, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(landed.len(), 300);
    let mut last_index_per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    for (partition, got) in landed {
        let i = deliveries[&(partition, got.offset)];
        let want = &records[i];
        assert_eq!(got.record.key, want.key, "key of record {i}");
        assert_eq!(got.record.value, want.value, "value of record {i}");
        assert_eq!(got.record.headers, want.headers, "headers of record {i}");
        assert_eq!(
            Some(got.record.timestamp),
            want.timestamp,
            "timestamp of record {i}"
        );
        if let Some(previous) = last_index_per_partition.insert(partition, i) {
            assert!(previous < i, "partition {partition} is out of input order");
        }
    }
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_batch_larger_than_one_request_is_split_and_keeps_order() {
    let broker = test_support::broker();
    let topic = test_support::unique_topic("producer-split");
    test_support::create_topic(&broker, &topic, 1)
        .await
        .unwrap();

    let mut config = KafkaConfig::plaintext(vec![broker.clone()]);
    config.max_message_bytes = 4096;
    let producer = KafkaProducer::new(config);
    let records: Vec<OutgoingRecord> = (0..200)
        .map(|i| OutgoingRecord {
            key: Some(b"same-key".to_vec()),
            value: Some(format!("{i:0>200}").into_bytes()),
            ..Default::default()
        })
        .collect();
    let outcomes = producer
        .produce(&topic, records, Instant::now() + Duration::from_secs(20))
        .await;
    let offsets: Vec<i64> = outcomes
        .iter()
        .map(|o| o.as_ref().unwrap().offset)
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets follow input order"
    );

    let landed = test_support::read_partition(&broker, &topic, 0, 200, Duration::from_secs(20))
        .await
        .unwrap();
    let values: Vec<Vec<u8>> = landed.into_iter().filter_map(|r| r.record.value).collect();
    let expected: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("{i:0>200}").into_bytes())
        .collect();
    assert_eq!(values, expected);
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_missing_topic_fails_every_record_with_a_clear_reason() {
    let broker = test_support::broker();
    let producer = KafkaProducer::new(KafkaConfig::plaintext(vec![broker]));
    let outcomes = producer
        .produce(
            &test_support::unique_topic("never-created"),
            vec![record(1), record(2)],
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    for outcome in outcomes {
        let err = outcome.unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}

#[tokio::test]
async fn with_nothing_listening_every_record_fails_within_the_deadline() {
    let port = test_support::free_port();
    let producer = KafkaProducer::new(KafkaConfig::plaintext(vec![format!("127.0.0.1:{port}")]));
    let started = Instant::now();
    let outcomes = producer
        .produce(
            "t",
            vec![record(1), record(2)],
            started + Duration::from_millis(1500),
        )
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    for outcome in outcomes {
        assert!(
            matches!(outcome, Err(ProduceError::Timeout { step: "connect" })),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_black_holed_broker_fails_within_the_deadline() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let producer = KafkaProducer::new(KafkaConfig::plaintext(vec![address.to_string()]));
    let started = Instant::now();
    let outcomes = producer
        .produce("t", vec![record(1)], started + Duration::from_millis(800))
        .await;
    assert!(started.elapsed() < Duration::from_millis(1800));
    assert!(outcomes[0].is_err());
}
