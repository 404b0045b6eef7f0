//! The producer function against the broker of record (Apache Kafka,
//! started by `make test`).

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{batch, config, expected_value, invoke, seq_of, STREAM_ARN};
use dynamo_stream_producer::change::header;
use dynamo_stream_producer::handler::App;
use lambda_stream_kit::kafka::partitioner::partition_for_key;
use test_support::{Fault, PrivateBroker};

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_thousand_inserts_land_exactly_as_expected() {
    let broker = test_support::broker();
    let topic = test_support::unique_topic("ddb-1000");
    test_support::create_topic(&broker, &topic, 6)
        .await
        .unwrap();
    let config = config(&broker, &topic, &[]);
    let app = App::new(config.clone());

    let (event, indexes) = batch(0..1000, 1000);
    assert_eq!(invoke(&app, &event, Duration::from_secs(30)).await, None);

    let landed = test_support::read_topic(&broker, &topic, 6, 1000, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(landed.len(), 1000);
    let mut seen = BTreeMap::new();
    for (partition, got) in landed {
        let key = String::from_utf8(got.record.key.clone().unwrap()).unwrap();
        let i: usize = key.trim_start_matches("order-").parse().unwrap();
        assert_eq!(
            partition,
            partition_for_key(key.as_bytes(), 6),
            "{key} is not on Java's partition"
        );
        assert_eq!(
            String::from_utf8(got.record.value.clone().unwrap()).unwrap(),
            expected_value(i, 1000)
        );
        let headers = &got.record.headers;
        assert_eq!(headers[header::EVENT_ID], format!("event-{i}").into_bytes());
        assert_eq!(headers[header::EVENT_NAME], b"INSERT");
        assert_eq!(
            headers[header::SEQUENCE_NUMBER],
            format!("{:021}", 1000 + i).into_bytes()
        );
        assert_eq!(headers[header::SOURCE_ARN], STREAM_ARN.as_bytes());
        assert_eq!(got.record.timestamp.timestamp(), 1_763_900_000);
        assert!(seen.insert(i, ()).is_none(), "record {i} landed twice");
    }
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), indexes);
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_broker_lost_mid_batch_is_reported_right_and_a_retry_completes_the_topic() {
    const TOTAL: usize = 1000;
    const KEYS: usize = 40;
    let (broker, proxy) = PrivateBroker::start_behind_proxy().await;
    let topic = "orders";
    broker.create_topic(topic, 6).await;

    let address = proxy.address();
    // Small requests, so the batch needs many and the cut lands between them;
    // uncompressed, so the cut's byte count is the records' own.
    let config = config(
        &address,
        topic,
        &[
            ("KAFKA_MAX_MESSAGE_BYTES", "8192"),
            ("KAFKA_COMPRESSION", "none"),
        ],
    );
    let app = App::new(config.clone());
    proxy.set(Fault::CutAfter(120_000));

    let (event, _) = batch(0..TOTAL, KEYS);
    let started = std::time::Instant::now();
    let reported = invoke(&app, &event, Duration::from_secs(6))
        .await
        .expect("the cut must leave records unacknowledged");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered after the deadline"
    );
    let first_failed = reported.parse::<usize>().unwrap() - 1000;
    assert!(first_failed < TOTAL, "the cut left nothing unacknowledged");

    // The broker comes back (the read-back client needs it too). Everything
    // before the reported record is on the topic already.
    proxy.set(Fault::None);
    let before = test_support::read_topic(
        &broker.direct,
        topic,
        6,
        first_failed.max(1),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let landed_before: std::collections::BTreeSet<i64> = before
        .iter()
        .map(|(_, r)| seq_of(r.record.value.as_deref().unwrap()))
        .collect();
    // Mid-batch: some records were acknowledged before the cut. The
    // partitions are sent concurrently, so the partition holding the lowest
    // unacknowledged record varies from run to run, and it may be record 0
    // while other partitions got far (then the check below is empty, and
    // this one still shows the cut fell inside the batch).
    assert!(
        !landed_before.is_empty(),
        "the cut came before any record of the batch"
    );
    eprintln!(
        "broker lost after {} of {TOTAL} records were acknowledged; the first missing is {first_failed}",
        landed_before.len()
    );
    for i in 0..first_failed as i64 {
        assert!(
            landed_before.contains(&i),
            "record {i} was reported done but is missing"
        );
    }

    // Lambda redelivers from the reported record.
    let (retry, _) = batch(first_failed..TOTAL, KEYS);
    assert_eq!(invoke(&app, &retry, Duration::from_secs(20)).await, None);

    common::assert_complete_and_ordered(&broker.direct, topic, TOTAL).await;
    broker.stop().await;
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn with_a_dead_letter_topic_every_poison_record_lands_there_with_its_reason() {
    let broker = test_support::broker();
    let topic = test_support::unique_topic("ddb-main");
    let dlq = test_support::unique_topic("ddb-dlq");
    test_support::create_topic(&broker, &topic, 6)
        .await
        .unwrap();
    test_support::create_topic(&broker, &dlq, 1).await.unwrap();
    let config = config(&broker, &topic, &[("DEAD_LETTER_TOPIC", dlq.as_str())]);
    let app = App::new(config.clone());

    let poison = [
        (
            "dynamodb-missing-image.json",
            "5000000000000000000000000001",
            "no NewImage",
        ),
        (
            "dynamodb-invalid-base64.json",
            "5000000000000000000000000003",
            // Position only: the reason never quotes the record.
            "data error at line",
        ),
        (
            "dynamodb-bad-number.json",
            "5000000000000000000000000004",
            "has an N value that is not a number",
        ),
        (
            "dynamodb-deep-nesting.json",
            "5000000000000000000000000005",
            "nested deeper",
        ),
        (
            "dynamodb-oversized.json",
            "5000000000000000000000000006",
            "over the",
        ),
        (
            "dynamodb-unknown-event-name.json",
            "5000000000000000000000000007",
            "unknown eventName",
        ),
    ];
    for (file, _, _) in poison {
        let path = format!("{}/../../events/bad/{file}", env!("CARGO_MANIFEST_DIR"));
        let event = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            invoke(&app, &event, Duration::from_secs(20)).await,
            None,
            "{file}"
        );
    }
    let letters = test_support::read_topic(&broker, &dlq, 1, poison.len(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(letters.len(), poison.len());
    for ((_, letter), (file, sequence_number, reason)) in letters.iter().zip(poison) {
        let headers = &letter.record.headers;
        assert_eq!(
            headers[header::SEQUENCE_NUMBER],
            sequence_number.as_bytes(),
            "{file}"
        );
        let why = String::from_utf8_lossy(&headers[header::DLQ_REASON]);
        assert!(why.contains(reason), "{file}: {why}");
        assert_eq!(headers[header::DLQ_TOPIC], topic.as_bytes());
        if file == "dynamodb-oversized.json" {
            // Too large to send whole: the shared stub, with the size.
            assert!(letter.record.value.is_none(), "{file}");
            assert!(headers.contains_key("dlq-original-bytes"), "{file}");
        } else {
            assert!(letter.record.value.as_ref().is_some_and(|v| !v.is_empty()));
        }
    }
    // The good record sharing a batch with a poison one was published.
    let main = test_support::read_topic(&broker, &topic, 6, 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(main.len(), 1);
}
