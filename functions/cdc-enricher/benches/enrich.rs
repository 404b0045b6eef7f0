//! CPU per record, no network: a DoubleCloud batch read as the runtime
//! hands it over (raw JSON), each record read on its own, each change
//! item's message split into lines, each line parsed and enriched, and the
//! response serialized, against a bare `serde_json::Value` parse and
//! serialize of the same bytes as the floor.
//!
//! Each iteration handles a batch of [`RECORDS`] records (one event line
//! each, like the reference sample), so criterion's throughput line reads
//! per record. `scripts/bench.sh` reads the results from criterion's JSON
//! output.

use std::hint::black_box;
use std::sync::Arc;

use cdc_enricher::budget::{Budget, Framing, LAMBDA_RESPONSE_LIMIT};
use cdc_enricher::config::OnFailure;
use cdc_enricher::doublecloud::{take_records, transform, Enrichment, SharedStr};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::value::RawValue;
use serde_json::Value;

/// Records per iteration.
const RECORDS: usize = 100;

/// The reference sample's record, repeated with distinct ids and offsets.
fn event() -> Vec<u8> {
    let sample: Value =
        serde_json::from_str(include_str!("../../../events/cdc-doublecloud-sample.json"))
            .unwrap_or_default();
    let Some(record) = sample.pointer("/Records/0") else {
        return Vec::new();
    };
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let mut r = record.clone();
            if let Some(lsn) = r.pointer_mut("/cdc/nextlsn") {
                *lsn = Value::from(i);
            }
            if let Some(id) = r.get_mut("eventID") {
                *id = Value::from(format!("{i}.0"));
            }
            r
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap_or_default()
}

/// What the runtime and the handler do with a DoubleCloud batch once the
/// handler has the IP.
fn ours(bytes: &[u8], enrichment: &Enrichment<'_>) -> usize {
    let Ok(batch) = serde_json::from_slice::<Box<RawValue>>(bytes) else {
        return 0;
    };
    let Ok(records) = take_records(&batch) else {
        return 0;
    };
    let Some(mut budget) = Budget::new(LAMBDA_RESPONSE_LIMIT, 0, Framing::Bare) else {
        return 0;
    };
    transform(&records, enrichment, &mut budget)
        .ok()
        .and_then(|response| serde_json::to_vec(&response).ok())
        .map_or(0, |v| v.len())
}

/// The floor: the same bytes parsed to a `Value` and written back.
fn floor(bytes: &[u8]) -> usize {
    let value: Value = serde_json::from_slice(bytes).unwrap_or_default();
    serde_json::to_vec(&value).map_or(0, |v| v.len())
}

fn cdc(c: &mut Criterion) {
    let bytes = event();
    let enrichment = Enrichment {
        ip: SharedStr(Arc::from("44.201.33.239")),
        output_table: None,
        on_failure: OnFailure::DeadLetterTable,
    };
    let answer = ours(&bytes, &enrichment);
    assert!(answer > 0, "the bench event must enrich");
    let mut group = c.benchmark_group("cdc");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("floor", |b| b.iter(|| floor(black_box(&bytes))));
    group.bench_function("ours", |b| b.iter(|| ours(black_box(&bytes), &enrichment)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = test_support::bench::criterion();
    targets = cdc
}
criterion_main!(benches);
