//! CPU per record, no network: a Kinesis batch parsed as the runtime parses
//! it (into `KinesisBatch`, each record kept raw) and every record read,
//! decoded and formatted as its JSON log line (written to a sink), against a
//! bare `serde_json::Value` parse and serialize of the same bytes as the
//! floor. Three kinds of record data: the tutorial's text, a JSON document
//! (nested in the line) and binary (logged as base64).
//!
//! Each iteration handles a batch of [`RECORDS`] records, so criterion's
//! throughput line reads per record. `cargo bench -p kinesis-event-logger`
//! measures; `cargo test --benches` runs each case once as a smoke test.
//! `scripts/bench.sh` reads the results from criterion's JSON output.

use std::hint::black_box;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kinesis_event_logger::config::Config;
use kinesis_event_logger::handler::{log_batch, KinesisBatch};
use lambda_runtime::tracing::subscriber::{self, fmt::format::JsonFields};
use lambda_stream_kit::telemetry::JsonLines;
use serde_json::{json, Value};

/// Records per iteration.
const RECORDS: usize = 100;

fn batch(data: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let seq = format!("4959033827149025660855969253836157109592157598913658{i:04}");
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "user-42",
                    "sequenceNumber": seq,
                    "data": encoded,
                    "approximateArrivalTimestamp": 1545084650.987
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000006:{seq}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::111122223333:role/lambda-kinesis-role",
                "awsRegion": "us-east-2",
                "eventSourceARN": "arn:aws:kinesis:us-east-2:111122223333:stream/lambda-stream"
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap_or_default()
}

/// The function's work: the event parsed as the runtime does, every record
/// logged.
fn ours(bytes: &[u8], config: &Config) -> usize {
    let batch: KinesisBatch = serde_json::from_slice(bytes).unwrap_or_default();
    log_batch(&batch, config).map_or(0, |outcome| outcome.lines)
}

/// The floor: the same bytes parsed to a `Value` and written back.
fn floor(bytes: &[u8]) -> usize {
    let value: Value = serde_json::from_slice(bytes).unwrap_or_default();
    serde_json::to_vec(&value).map_or(0, |v| v.len())
}

fn kinesis(c: &mut Criterion) {
    let config = Config::default();
    // The function's own line format, written nowhere: the cost measured is
    // decoding and formatting, not the terminal.
    let sink = subscriber::fmt()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines::default())
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(sink);

    let json_data =
        br#"{"orderId":"o-1001","amount":42.5,"items":[{"sku":"A-1","qty":2}],"paid":true}"#;
    let cases: [(&str, &[u8]); 3] = [
        ("text", b"Hello, Lambda CLI World"),
        ("json", json_data),
        (
            "binary",
            &[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0xFF],
        ),
    ];
    let mut group = c.benchmark_group("kinesis");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, data) in cases {
        let bytes = batch(data);
        assert_eq!(ours(&bytes, &config), RECORDS, "every record is logged");
        group.bench_with_input(BenchmarkId::new("floor", name), &bytes, |b, bytes| {
            b.iter(|| floor(black_box(bytes)))
        });
        group.bench_with_input(BenchmarkId::new("ours", name), &bytes, |b, bytes| {
            b.iter(|| ours(black_box(bytes), &config))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = test_support::bench::criterion();
    targets = kinesis
}
criterion_main!(benches);
