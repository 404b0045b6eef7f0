//! The CDC batch paths of `cdc-enricher`: `doublecloud::transform` for a
//! DoubleCloud/Transferia batch and `firehose::transform` for a Firehose
//! transformation event.
//!
//! The input is the batch as JSON, read as raw JSON the way the handler
//! reads it; the expectations come from a `Value` parse of the same text.
//! Invariants (DoubleCloud):
//! * exactly one result per input record, in order, each copying the
//!   record's `eventID` (and the other envelope fields) or `""`; a record
//!   with a repeated key (which its typed read refuses) is only checked for
//!   being answered `ProcessingFailed` or dead-lettered in its place;
//! * `Split` results carry `cdc_split` and no `cdc`; `Ok` carries the
//!   original `cdc` moved to `<table>_ProcessingFailed` (the dead-letter
//!   table); `ProcessingFailed` (only for a record without a change item
//!   object) sends the original `cdc` back unchanged; `Dropped` carries
//!   neither;
//! * every output change item is an `insert` with the five documented
//!   columns, the IP in the `ip` column, and the output table when set;
//! * the response serializes to valid JSON with the same record count.
//!
//! Invariants (Firehose), for events whose record ids pass the check:
//! * one result per record, in order, with its `recordId`;
//! * `Ok` data is newline-terminated JSON objects, each carrying the IP;
//! * `ProcessingFailed` carries the original bytes when they decoded.

#![no_main]

use std::sync::Arc;

use base64::Engine as _;
use cdc_enricher::budget::{Budget, Framing, LAMBDA_RESPONSE_LIMIT};
use cdc_enricher::config::OnFailure;
use cdc_enricher::doublecloud::{self, ChangeItem, Enrichment, SharedStr};
use cdc_enricher::firehose;
use lambda_stream_kit::result::ResultKind;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::Value;
use stream_fuzz::is_json;

const IP: &str = "198.51.100.20";

fuzz_target!(|data: &[u8]| {
    let (Ok(event), Ok(raw)) = (
        serde_json::from_slice::<Value>(data),
        serde_json::from_slice::<&RawValue>(data),
    ) else {
        return;
    };
    for table in [None, Some("enriched")] {
        doublecloud_batch(&event, raw, table);
    }
    firehose_batch(&event, raw);
});

/// Whether `raw` has an object with a repeated key anywhere: a `Value`
/// keeps the last, a typed read refuses it.
fn has_repeated_key(raw: &RawValue) -> bool {
    fn count(value: &Value) -> usize {
        match value {
            Value::Object(map) => map.len() + map.values().map(count).sum::<usize>(),
            Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    serde_json::from_str::<Value>(raw.get())
        .map_or(true, |value| count(&value) != raw_key_count(raw.get()))
}

/// The number of object keys in `text`, repeated ones included.
fn raw_key_count(text: &str) -> usize {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<usize, M::Error> {
            let mut n = 0;
            while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                n += 1 + map.next_value::<Counted>()?.0;
            }
            Ok(n)
        }
        fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<usize, S::Error> {
            let mut n = 0;
            while let Some(Counted(k)) = seq.next_element()? {
                n += k;
            }
            Ok(n)
        }
        fn visit_bool<E>(self, _: bool) -> Result<usize, E> {
            Ok(0)
        }
        fn visit_i64<E>(self, _: i64) -> Result<usize, E> {
            Ok(0)
        }
        fn visit_u64<E>(self, _: u64) -> Result<usize, E> {
            Ok(0)
        }
        fn visit_f64<E>(self, _: f64) -> Result<usize, E> {
            Ok(0)
        }
        fn visit_str<E>(self, _: &str) -> Result<usize, E> {
            Ok(0)
        }
        fn visit_unit<E>(self) -> Result<usize, E> {
            Ok(0)
        }
    }
    struct Counted(usize);
    impl<'de> serde::Deserialize<'de> for Counted {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Keys).map(Counted)
        }
    }
    serde_json::from_str::<Counted>(text).map_or(0, |c| c.0)
}

fn doublecloud_batch(batch: &Value, raw: &RawValue, output_table: Option<&str>) {
    let is_list = batch.get("Records").is_some_and(Value::is_array);
    let raw_records = match doublecloud::take_records(raw) {
        Ok(records) => records,
        Err(_) => {
            assert!(!is_list, "a Records list was refused");
            return;
        }
    };
    let Some(records) = batch.get("Records").and_then(Value::as_array) else {
        // Repeated `Records` keys: the raw read took the last, as a Value.
        return;
    };
    assert_eq!(records.len(), raw_records.len(), "the same records");
    let enrichment = Enrichment {
        ip: SharedStr(Arc::from(IP)),
        output_table,
        on_failure: OnFailure::DeadLetterTable,
    };
    let mut budget =
        Budget::new(LAMBDA_RESPONSE_LIMIT, 0, Framing::Bare).expect("the limit holds nothing yet");
    let Ok(response) = doublecloud::transform(&raw_records, &enrichment, &mut budget) else {
        // Only an answer past Lambda's limit fails the batch here.
        return;
    };
    assert_eq!(
        response.records.len(),
        records.len(),
        "one result per record"
    );

    for ((record, raw), result) in records.iter().zip(&raw_records).zip(&response.records) {
        if has_repeated_key(raw) {
            // Read leniently: a repeated key in the envelope or the change
            // item fails the record in its place (ProcessingFailed, or Ok
            // with a dead letter), one inside a table_schema entry skips
            // that entry. The one result in its place is checked above.
            continue;
        }
        let text = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default();
        assert_eq!(result.envelope.event_id, text("eventID"));
        assert_eq!(
            result.envelope.invoke_identity_arn,
            text("invokeIdentityArn")
        );
        assert_eq!(result.envelope.event_version, text("eventVersion"));
        assert_eq!(result.envelope.event_name, text("eventName"));
        assert_eq!(result.envelope.event_source_arn, text("eventSourceARN"));
        match result.result {
            ResultKind::Split => {
                assert!(result.cdc.is_none());
                let items = result
                    .cdc_split
                    .as_ref()
                    .expect("a split carries cdc_split");
                let cdc = record.get("cdc").expect("a split record had a cdc");
                for item in items {
                    check_item(item, cdc, output_table);
                }
            }
            ResultKind::ProcessingFailed => {
                assert!(result.cdc_split.is_none());
                match (&result.cdc, record.get("cdc")) {
                    (Some(ChangeItem::Original(sent)), Some(original)) => {
                        let sent: Value =
                            serde_json::from_str(sent.get()).expect("the original is JSON");
                        assert_eq!(&sent, original, "the original cdc is sent back unchanged");
                        assert!(!original.is_object(), "a change item is dead-lettered");
                    }
                    (None, None) => {}
                    (sent, original) => panic!("failed record sent back {sent:?} for {original:?}"),
                }
            }
            ResultKind::Dropped => assert!(result.cdc.is_none() && result.cdc_split.is_none()),
            ResultKind::Ok => {
                let Some(ChangeItem::DeadLetter(item)) = &result.cdc else {
                    panic!("an Ok result is a dead letter");
                };
                let original = record.get("cdc").expect("a dead letter had a cdc");
                assert!(original.is_object());
                let table = original
                    .get("table")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                assert_eq!(item["table"], format!("{table}_ProcessingFailed"));
            }
        }
    }

    let text = serde_json::to_vec(&response).expect("the response serializes");
    assert!(is_json(&text));
    if let Ok(parsed) = serde_json::from_slice::<Value>(&text) {
        let count = parsed["Records"].as_array().map(Vec::len);
        assert_eq!(count, Some(records.len()));
    }
}

fn check_item(item: &ChangeItem, input: &Value, output_table: Option<&str>) {
    let ChangeItem::Enriched(_) = item else {
        panic!("a split item is not an enriched one");
    };
    let value = serde_json::to_value(item).expect("an item serializes");
    assert_eq!(value["kind"], "insert");
    assert_eq!(
        value["columnnames"],
        serde_json::json!(["ts", "ip", "data", "appid", "identity"])
    );
    let columns = value["columnvalues"].as_array().expect("columnvalues");
    assert_eq!(columns.len(), 5);
    assert!(
        columns[0].as_str().is_some_and(|ts| !ts.is_empty()),
        "ts is the required key"
    );
    assert_eq!(columns[1], IP);
    assert_eq!(value["table_schema"].as_array().map(Vec::len), Some(5));
    let table = output_table.or_else(|| input.get("table").and_then(Value::as_str));
    match table.filter(|t| !t.is_empty()) {
        Some(table) => assert_eq!(value["table"], table),
        None => assert!(value.get("table").is_none()),
    }
    match input
        .get("commitTime")
        .and_then(Value::as_u64)
        .filter(|t| *t != 0)
    {
        Some(time) => assert_eq!(value["commitTime"].as_u64(), Some(time), "commitTime exact"),
        None => assert!(value.get("commitTime").is_none()),
    }
}

fn firehose_batch(event: &Value, raw: &RawValue) {
    let Ok(raw_records) = firehose::take_records(raw) else {
        return;
    };
    if firehose::check_record_ids(&raw_records).is_err() {
        return;
    }
    let Some(records) = event.get("records").and_then(Value::as_array) else {
        return;
    };
    if records.len() != raw_records.len() || has_repeated_key(raw) {
        return;
    }
    let response = firehose::transform(raw_records, IP, LAMBDA_RESPONSE_LIMIT)
        .expect("small batches always fit");
    assert_eq!(
        response.records.len(),
        records.len(),
        "one result per record"
    );
    for (record, result) in records.iter().zip(&response.records) {
        assert_eq!(
            result.record_id.as_deref(),
            record.get("recordId").and_then(Value::as_str)
        );
        let original = record
            .get("data")
            .and_then(Value::as_str)
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok());
        match result.result.as_deref() {
            Some("Ok") => {
                let bytes: &[u8] = &result.data;
                assert!(bytes.ends_with(b"\n"), "Ok data ends with a newline");
                for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let object: Value = serde_json::from_slice(line).expect("an NDJSON line");
                    assert_eq!(object["ip"], IP);
                }
            }
            Some("Dropped") => assert!(result.data.is_empty()),
            Some("ProcessingFailed") => {
                let sent: &[u8] = &result.data;
                assert_eq!(sent, original.as_deref().unwrap_or_default());
            }
            other => panic!("unknown Firehose result {other:?}"),
        }
    }
}
