//! Per-record cost of logging a Kinesis batch, against a bare serde_json
//! parse and serialize of the same records.
//!
//! `cargo bench -p kinesis-event-logger` prints a Markdown table; under
//! `cargo test --benches` it runs a few rounds only, as a smoke test.

#![allow(
    clippy::print_stdout,
    reason = "the table on stdout is the bench's output"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kinesis_event_logger::handler::{log_batch, Config};
use lambda_runtime::tracing::subscriber::{self, fmt::format::JsonFields};
use lambda_stream_kit::telemetry::JsonLines;
use serde_json::{json, Value};

const RECORDS: usize = 1000;

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

/// Best of `rounds` runs of `f`, per record.
fn per_record(rounds: u32, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
        / RECORDS as u32
}

fn main() {
    let rounds = if std::env::args().any(|a| a == "--bench") {
        50
    } else {
        2
    };
    let config = Config::default();
    let sink_subscriber = subscriber::fmt()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines::default())
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(sink_subscriber);

    let json_data =
        br#"{"orderId":"o-1001","amount":42.5,"items":[{"sku":"A-1","qty":2}],"paid":true}"#;
    let cases: [(&str, &[u8]); 3] = [
        ("text (tutorial record)", b"Hello, Lambda CLI World"),
        ("JSON", json_data),
        (
            "binary",
            &[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0xFF],
        ),
    ];
    println!("| data | serde_json parse+serialize | parse + log_batch (JSON lines to a sink) |");
    println!("|---|---|---|");
    for (name, data) in cases {
        let bytes = batch(data);
        let baseline = per_record(rounds, || {
            let event: Value = serde_json::from_slice(black_box(&bytes)).unwrap_or_default();
            for record in event["Records"].as_array().into_iter().flatten() {
                black_box(serde_json::to_string(record).unwrap_or_default());
            }
        });
        let ours = per_record(rounds, || {
            let event: Value = serde_json::from_slice(black_box(&bytes)).unwrap_or_default();
            black_box(log_batch(&event, &config).ok());
        });
        println!("| {name} | {baseline:?} | {ours:?} |");
    }
}
