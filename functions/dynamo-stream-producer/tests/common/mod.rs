//! Helpers shared by the broker-backed tests: generated DynamoDB batches,
//! invocation with a real deadline, and read-back checks.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::{function_handler, App, StreamBatch};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::config::Env;

pub const STREAM_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026";

/// `count` INSERT records of about 300 bytes each; ids repeat every
/// `distinct_keys` records so per-key order can be checked.
pub fn batch(range: std::ops::Range<usize>, distinct_keys: usize) -> (String, Vec<usize>) {
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

pub fn expected_value(i: usize, distinct_keys: usize) -> String {
    format!(
        r#"{{"customer":"customer-{}","id":"order-{}","note":"{}","seq":{i}}}"#,
        i % 13,
        i % distinct_keys,
        "x".repeat(180)
    )
}

pub fn context(budget: Duration) -> Context {
    test_support::context_expiring_in(budget)
}

pub fn config(broker: &str, topic: &str, extra: &[(&str, &str)]) -> Config {
    let mut pairs = vec![
        ("KAFKA_BOOTSTRAP_SERVERS", broker),
        ("TOPIC_NAME", topic),
        ("DEADLINE_MARGIN_MS", "1000"),
    ];
    pairs.extend_from_slice(extra);
    Config::from_env(&Env::from_pairs(&pairs)).unwrap()
}

pub async fn invoke(app: &App, event: &str, budget: Duration) -> Option<String> {
    let batch: StreamBatch = serde_json::from_str(event).unwrap();
    let response = function_handler(app, LambdaEvent::new(batch, context(budget)))
        .await
        .unwrap();
    assert!(response.batch_item_failures.len() <= 1);
    response
        .batch_item_failures
        .first()
        .and_then(|f| f.item_identifier.clone())
}

pub fn seq_of(value: &[u8]) -> i64 {
    let v: serde_json::Value = serde_json::from_slice(value).unwrap();
    v["seq"].as_i64().unwrap()
}

/// Each value at its first appearance, in order.
pub fn dedup_first(seqs: &[i64]) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    seqs.iter().copied().filter(|s| seen.insert(*s)).collect()
}

/// Reads the whole topic and checks that every record of `0..total` is
/// there and that no key's records are out of order (redelivery may repeat
/// a record, never reorder one).
pub async fn assert_complete_and_ordered(broker: &str, topic: &str, total: usize) {
    let all = test_support::read_topic(broker, topic, 6, total, Duration::from_secs(30))
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
    let mut present = BTreeSet::new();
    for (key, mut entries) in per_key {
        entries.sort();
        let seqs: Vec<i64> = entries.iter().map(|(_, s)| *s).collect();
        let firsts = dedup_first(&seqs);
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "key {key} out of order: {seqs:?}"
        );
        present.extend(seqs);
    }
    let missing: Vec<usize> = (0..total)
        .filter(|i| !present.contains(&(*i as i64)))
        .collect();
    assert!(missing.is_empty(), "missing records: {missing:?}");
}
