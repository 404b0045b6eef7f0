//! CPU per record, no broker: an MSK event read from its JSON text as the
//! runtime reads it for the handler (into `source::Payload`), split into its
//! topic-partitions, and every record's key and value decoded and the value
//! tagged with the built-in rules, against a bare `serde_json::Value` parse
//! and serialize of the same bytes as the floor.
//!
//! Each iteration handles a batch of [`RECORDS`] records, so criterion's
//! throughput line reads per record. `cargo bench -p kafka-tag-handler`
//! measures; `cargo test --benches` runs it once as a smoke test.
//! `scripts/bench.sh` reads the results from criterion's JSON output.

use std::hint::black_box;

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_tag_handler::rules::{RulesSource, Tagger};
use kafka_tag_handler::source::{self, Payload};
use kafka_tag_handler::visit;
use serde_json::{json, Value};

/// Records per iteration.
const RECORDS: usize = 100;

/// Page visits in the shapes the function accepts (field aliases, a crawler).
const VISITS: &[&str] = &[
    r#"{"url":"https://shop.example/blog/launch?utm_campaign=spring&utm_source=newsletter&utm_medium=email","referrer":"https://mail.google.com/","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1","visitor_id":"v-1001","timestamp":"2024-07-28T16:19:51.238Z","screen":{"w":390,"h":844},"experiments":["a","b"]}"#,
    r#"{"page_url":"https://shop.example/de/products/sneaker-42?gclid=Cj0KCQ","referer":"https://www.google.de/","userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36","sessionId":"s-77","ts":1722183592000,"cart_value":89.9}"#,
    r#"{"url":"https://shop.example/","referrer":"https://news.ycombinator.com/item?id=1","user_agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)","visitor_id":"crawler"}"#,
];

/// An MSK event of [`RECORDS`] records over six partitions.
fn event() -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut groups = serde_json::Map::new();
    for i in 0..RECORDS {
        let partition = i % 6;
        let record = json!({
            "topic": "page-visits",
            "partition": partition,
            "offset": 1000 + i / 6,
            "timestamp": 1_722_183_591_253_u64 + i as u64,
            "timestampType": "CREATE_TIME",
            "key": b64.encode(format!("v-{}", i % 1009)),
            "value": b64.encode(VISITS[i % VISITS.len()]),
            "headers": [{ "source-app": [119, 101, 98] }]
        });
        if let Value::Array(list) = groups
            .entry(format!("page-visits-{partition}"))
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(record);
        }
    }
    serde_json::to_vec(&json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/clickstream/7c5a3b1e-0f1d-4c2b-9a51-3f2d7e6b8a90-2",
        "bootstrapServers": "b-1.clickstream.example:9098",
        "records": groups
    }))
    .unwrap_or_default()
}

/// The function's work before publishing: the payload read as the runtime
/// reads it for `function_handler`, every record decoded and tagged.
fn ours(bytes: &[u8], tagger: &Tagger, tagged_at: &str) -> usize {
    let Ok(Payload::Batch(batch)) = serde_json::from_slice::<Payload>(bytes) else {
        return 0;
    };
    let Ok(partitions) = source::partitions(&batch) else {
        return 0;
    };
    let mut tagged = 0;
    for record in partitions.iter().flatten() {
        let key = record.key().ok().flatten();
        let Ok(Some(value)) = record.value() else {
            continue;
        };
        if let Ok(out) = visit::tag_bytes(&value, tagger, tagged_at) {
            black_box((key, out));
            tagged += 1;
        }
    }
    tagged
}

/// The floor: the same bytes parsed to a `Value` and written back.
fn floor(bytes: &[u8]) -> usize {
    let value: Value = serde_json::from_slice(bytes).unwrap_or_default();
    serde_json::to_vec(&value).map_or(0, |v| v.len())
}

fn kafka(c: &mut Criterion) {
    let tagger = match Tagger::load(&RulesSource::Embedded) {
        Ok(tagger) => tagger,
        Err(e) => panic!("the built-in rules do not compile: {e}"),
    };
    let tagged_at = "2024-07-28T16:19:51.238Z";
    let bytes = event();
    assert_eq!(
        ours(&bytes, &tagger, tagged_at),
        RECORDS,
        "every record is tagged"
    );
    let mut group = c.benchmark_group("kafka");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("floor", |b| b.iter(|| floor(black_box(&bytes))));
    group.bench_function("ours", |b| {
        b.iter(|| ours(black_box(&bytes), &tagger, tagged_at))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = test_support::bench::criterion();
    targets = kafka
}
criterion_main!(benches);
