//! The producer function against a real broker (tansu, started by
//! `make test`).

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dynamo_stream_producer::handler::{function_handler, header, Config, StreamBatch};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::partitioner::partition_for_key;
use lambda_stream_kit::kafka::KafkaProducer;
use lambda_stream_kit::testing::{self, Fault, FaultProxy, PrivateBroker};

const STREAM_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026";

/// `count` INSERT records of about 300 bytes each; ids repeat every
/// `distinct_keys` records so per-key order can be checked.
fn batch(range: std::ops::Range<usize>, distinct_keys: usize) -> (String, Vec<usize>) {
    let records: Vec<String> = range
        .clone()
        .map(|i| {
            format!(
                r#"{{"awsRegion":"us-east-1","eventID":"event-{i}","eventName":"INSERT","eventSourceARN":"{STREAM_ARN}",
                "dynamodb":{{"ApproximateCreationDateTime":1763900000,"Keys":{{"id":{{"S":"order-{k}"}}}},
                "NewImage":{{"id":{{"S":"order-{k}"}},"seq":{{"N":"{i}"}},"customer":{{"S":"customer-{c}"}},
                "note":{{"S":"{note}"}}}},"SequenceNumber":"{seq:021}","SizeBytes":300,"StreamViewType":"NEW_IMAGE"}}}}"#,
                k = i % distinct_keys,
                c = i % 13,
                note = "x".repeat(180),
                seq = 1000 + i,
            )
        })
        .collect();
    (
        format!(r#"{{"Records":[{}]}}"#, records.join(",")),
        range.collect(),
    )
}

fn expected_value(i: usize, distinct_keys: usize) -> String {
    format!(
        r#"{{"customer":"customer-{}","id":"order-{}","note":"{}","seq":{i}}}"#,
        i % 13,
        i % distinct_keys,
        "x".repeat(180)
    )
}

fn context(budget: Duration) -> Context {
    let mut context = Context::default();
    context.deadline =
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + budget).as_millis() as u64;
    context
}

fn config(broker: &str, topic: &str, extra: &[(&str, &str)]) -> Config {
    let mut pairs = vec![
        ("KAFKA_BOOTSTRAP_SERVERS", broker),
        ("TOPIC_NAME", topic),
        ("DEADLINE_MARGIN_MS", "1000"),
    ];
    pairs.extend_from_slice(extra);
    Config::from_env(&Env::from_pairs(&pairs)).unwrap()
}

async fn invoke(
    producer: &KafkaProducer,
    config: &Config,
    event: &str,
    budget: Duration,
) -> Option<String> {
    let batch: StreamBatch = serde_json::from_str(event).unwrap();
    let response = function_handler(producer, config, LambdaEvent::new(batch, context(budget)))
        .await
        .unwrap();
    assert!(response.batch_item_failures.len() <= 1);
    response
        .batch_item_failures
        .first()
        .and_then(|f| f.item_identifier.clone())
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_thousand_inserts_land_exactly_as_expected() {
    let broker = testing::broker();
    let topic = testing::unique_topic("ddb-1000");
    testing::create_topic(&broker, &topic, 6).await.unwrap();
    let config = config(&broker, &topic, &[]);
    let producer = KafkaProducer::new(config.kafka.clone());

    let (event, indexes) = batch(0..1000, 1000);
    assert_eq!(
        invoke(&producer, &config, &event, Duration::from_secs(30)).await,
        None
    );

    let landed = testing::read_topic(&broker, &topic, 6, 1000, Duration::from_secs(30))
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
    let proxy_port = testing::free_port();
    let broker = PrivateBroker::start("127.0.0.1", proxy_port).await;
    let proxy = FaultProxy::start(proxy_port, broker.direct.clone()).await;
    let topic = "orders";
    broker.create_topic(topic, 6).await;

    let address = format!("127.0.0.1:{proxy_port}");
    // Small requests, so the batch needs many and the cut lands between them.
    let config = config(&address, topic, &[("KAFKA_MAX_MESSAGE_BYTES", "8192")]);
    let producer = KafkaProducer::new(config.kafka.clone());
    proxy.set(Fault::CutAfter(120_000));

    let (event, _) = batch(0..TOTAL, KEYS);
    let started = std::time::Instant::now();
    let reported = invoke(&producer, &config, &event, Duration::from_secs(6))
        .await
        .expect("the cut must leave records unacknowledged");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered after the deadline"
    );
    let first_failed = reported.parse::<usize>().unwrap() - 1000;
    assert!(
        first_failed > 0 && first_failed < TOTAL,
        "cut at {first_failed}"
    );
    eprintln!("broker lost after {first_failed} of {TOTAL} records were acknowledged");

    // The broker comes back (the read-back client needs it too). Everything
    // before the reported record is on the topic already.
    proxy.set(Fault::None);
    let before = testing::read_topic(
        &broker.direct,
        topic,
        6,
        first_failed,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let landed_before: std::collections::BTreeSet<i64> = before
        .iter()
        .map(|(_, r)| seq_of(r.record.value.as_deref().unwrap()))
        .collect();
    for i in 0..first_failed as i64 {
        assert!(
            landed_before.contains(&i),
            "record {i} was reported done but is missing"
        );
    }

    // Lambda redelivers from the reported record.
    let (retry, _) = batch(first_failed..TOTAL, KEYS);
    assert_eq!(
        invoke(&producer, &config, &retry, Duration::from_secs(20)).await,
        None
    );

    let all = testing::read_topic(&broker.direct, topic, 6, TOTAL, Duration::from_secs(20))
        .await
        .unwrap();
    let mut per_key: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (_, r) in &all {
        let key = String::from_utf8(r.record.key.clone().unwrap()).unwrap();
        per_key
            .entry(key)
            .or_default()
            .push((r.offset, seq_of(r.record.value.as_deref().unwrap())));
    }
    let mut present = std::collections::BTreeSet::new();
    for (key, mut entries) in per_key {
        entries.sort();
        let seqs: Vec<i64> = entries.iter().map(|(_, s)| *s).collect();
        // Redelivery may repeat records, never reorder a key.
        let firsts: Vec<i64> = dedup_first(&seqs);
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "key {key} out of order: {seqs:?}"
        );
        present.extend(seqs);
    }
    assert_eq!(present.len(), TOTAL, "every record is on the topic");
    broker.stop().await;
}

fn seq_of(value: &[u8]) -> i64 {
    let v: serde_json::Value = serde_json::from_slice(value).unwrap();
    v["seq"].as_i64().unwrap()
}

/// Each value at its first appearance, in order.
fn dedup_first(seqs: &[i64]) -> Vec<i64> {
    let mut seen = std::collections::BTreeSet::new();
    seqs.iter().copied().filter(|s| seen.insert(*s)).collect()
}
