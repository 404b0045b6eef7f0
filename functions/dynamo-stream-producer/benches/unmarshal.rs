//! CPU per record, no broker: what the handler does to each DynamoDB stream
//! record before producing (parse the record, unmarshal `NewImage` to JSON,
//! take the key, pick the partition), against a bare `serde_json::Value`
//! parse and serialize of the same bytes as the floor.
//!
//! Each iteration handles a batch of [`RECORDS`] records, so criterion's
//! throughput line reads per record. `scripts/bench.sh` reads the results
//! from criterion's JSON output.

use std::hint::black_box;

use aws_lambda_events::dynamodb::EventRecord;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::{function_handler, App, StreamBatch};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::dynamodb::{attribute_text, item_to_json};
use lambda_stream_kit::kafka::partitioner::partition_for_key;
use lambda_stream_kit::pipeline::MemorySink;
use serde_json::{json, Value};

/// Records per iteration.
const RECORDS: usize = 100;
const PARTITIONS: usize = 6;

/// A stream record whose item is about 300 bytes of JSON, as in the
/// end-to-end benchmark's events (`bench/events.py`).
fn record(i: usize) -> Value {
    let id = json!({ "S": format!("order-{i:07}") });
    json!({
        "eventID": format!("{i:032x}"),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_763_900_000 + i / 100,
            "Keys": { "id": id },
            "NewImage": {
                "id": id,
                "customer": { "S": format!("customer-{:05}", i % 977) },
                "status": { "S": "NEW" },
                "total": { "N": format!("{}.{:02}", (i * 37) % 1000, i % 100) },
                "currency": { "S": "EUR" },
                "created_at": { "S": "2026-01-01T00:12:34.123Z" },
                "items": { "L": [
                    { "M": { "sku": { "S": "SKU-00012" }, "qty": { "N": "2" }, "price": { "N": "19.95" } } },
                    { "M": { "sku": { "S": "SKU-00077" }, "qty": { "N": "1" }, "price": { "N": "83.55" } } }
                ] },
                "tags": { "SS": ["web", "promo"] },
                "shipping": { "M": {
                    "city": { "S": "Berlin" }, "zip": { "S": "10115" }, "express": { "BOOL": i.is_multiple_of(2) }
                } }
            },
            "SequenceNumber": format!("{}", 4_421_584_500_000_000_017_u128 + i as u128),
            "SizeBytes": 300,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000"
    })
}

fn event() -> Vec<u8> {
    let records: Vec<Value> = (0..RECORDS).map(record).collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap_or_default()
}

/// The handler's per-record work: the batch split into raw records, each
/// parsed into the typed stream record, its image unmarshalled to JSON
/// bytes, its key taken as text and hashed to a partition.
fn ours(bytes: &[u8]) -> usize {
    let batch: StreamBatch = match serde_json::from_slice(bytes) {
        Ok(batch) => batch,
        Err(_) => return 0,
    };
    let mut total = 0;
    for raw in batch.records.iter().flatten() {
        let Ok(record) = serde_json::from_str::<EventRecord>(raw.get()) else {
            continue;
        };
        let image = &record.change.new_image;
        let Ok(value) = item_to_json(image) else {
            continue;
        };
        let key = image
            .get("id")
            .and_then(|id| attribute_text(id).ok())
            .unwrap_or_default();
        let partition = partition_for_key(key.as_bytes(), PARTITIONS);
        total += value.len() + partition as usize;
    }
    total
}

/// The floor: the same bytes parsed to a `Value` and written back.
/// The whole handler, the pipeline included, into an in-memory sink: what
/// an invocation costs per record less the network.
fn handler(bytes: &[u8], app: &App<MemorySink>, runtime: &tokio::runtime::Runtime) -> usize {
    let Ok(batch) = serde_json::from_slice::<StreamBatch>(bytes) else {
        return 0;
    };
    let answer = runtime.block_on(function_handler(
        app,
        LambdaEvent::new(batch, Context::default()),
    ));
    answer.map_or(0, |a| a.batch_item_failures.len() + 1)
}

fn floor(bytes: &[u8]) -> usize {
    let value: Value = serde_json::from_slice(bytes).unwrap_or_default();
    serde_json::to_vec(&value).map_or(0, |v| v.len())
}

fn dynamodb(c: &mut Criterion) {
    let bytes = event();
    assert!(ours(&bytes) > 0, "the bench event must unmarshal");
    let mut group = c.benchmark_group("dynamodb");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("floor", |b| b.iter(|| floor(black_box(&bytes))));
    group.bench_function("ours", |b| b.iter(|| ours(black_box(&bytes))));
    let config = Config::from_env(&Env::from_pairs(&[(
        "KAFKA_BOOTSTRAP_SERVERS",
        "127.0.0.1:1",
    )]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    if let (Ok(config), Ok(runtime)) = (config, runtime) {
        // A fresh sink per batch, so that what it keeps does not grow.
        group.bench_function("handler", |b| {
            b.iter_batched(
                || App {
                    config: config.clone(),
                    sink: MemorySink::new(),
                },
                |app| handler(black_box(&bytes), &app, &runtime),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = test_support::bench::criterion();
    targets = dynamodb
}
criterion_main!(benches);
