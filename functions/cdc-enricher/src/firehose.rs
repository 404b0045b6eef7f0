//! The same enrichment as an Amazon Data Firehose transformation.
//!
//! Each record's `data` is base64 of a message in the format of
//! [`crate::enrich`]. The answer per `recordId`:
//! * `Ok` with newline-delimited JSON, one enriched object per event, each
//!   line ending in `\n` so that records concatenated by the destination
//!   stay one object per line;
//! * `Dropped` when the data is empty or holds only blank lines;
//! * `ProcessingFailed` when the data is missing, not base64, not UTF-8, or
//!   has a bad line; it carries the original bytes back (nothing when they
//!   could not be decoded: Firehose delivers its own copy of the original to
//!   the error output anyway).
//!
//! A record without a `recordId` cannot be answered, and Firehose rejects a
//! response that misses one, so the whole call fails instead.

use std::collections::HashMap;

use aws_lambda_events::firehose::KinesisFirehoseResponse;
use base64::Engine as _;
use lambda_stream_kit::result::{firehose_record, Outcome};
use serde_json::Value;

use crate::doublecloud::json_kind;
use crate::enrich;

/// Why a Firehose event cannot be answered record by record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirehoseError {
    /// `records` is not a list.
    #[error("records is {0}, expected a list")]
    NotAList(&'static str),
    /// A record has no `recordId` to answer with.
    #[error("record {index} has no recordId, so it cannot be answered")]
    NoRecordId {
        /// Its position in the batch.
        index: usize,
    },
    /// Two records share a `recordId`.
    #[error("record {index} repeats recordId {record_id:?}, which must be answered exactly once")]
    DuplicateRecordId {
        /// Its position in the batch.
        index: usize,
        /// The repeated id.
        record_id: String,
    },
}

/// Takes the records out of a Firehose event.
pub fn take_records(event: &mut Value) -> Result<Vec<Value>, FirehoseError> {
    match event.get_mut("records").map(Value::take) {
        Some(Value::Array(records)) => Ok(records),
        Some(other) => Err(FirehoseError::NotAList(json_kind(&other))),
        None => Err(FirehoseError::NotAList("absent")),
    }
}

/// Checks that every record can be answered, before any work is done.
pub fn check_record_ids(records: &[Value]) -> Result<(), FirehoseError> {
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let id = record
            .get("recordId")
            .and_then(Value::as_str)
            .ok_or(FirehoseError::NoRecordId { index })?;
        if !seen.insert(id) {
            return Err(FirehoseError::DuplicateRecordId {
                index,
                record_id: id.to_owned(),
            });
        }
    }
    Ok(())
}

/// Transforms every record; the ids must have passed [`check_record_ids`].
pub fn transform(records: Vec<Value>, ip: &str) -> KinesisFirehoseResponse {
    let mut response = KinesisFirehoseResponse::default();
    response.records = records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            let record_id = record
                .get("recordId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let (outcome, original) = transform_data(record.get("data"), ip);
            if let Outcome::ProcessingFailed { reason } = &outcome {
                tracing::warn!(index, record_id = %record_id, reason = %reason, "record failed");
            }
            firehose_record(record_id, outcome, original, HashMap::new())
        })
        .collect();
    response
}

/// The outcome for one record's `data`, and the original bytes to send back
/// with a failure.
fn transform_data(data: Option<&Value>, ip: &str) -> (Outcome<Vec<u8>>, Vec<u8>) {
    let encoded = match data {
        Some(Value::String(text)) => text,
        Some(Value::Null) | None => return (Outcome::failed("record has no data"), Vec::new()),
        Some(other) => {
            let reason = format!("data is {}, expected base64 text", json_kind(other));
            return (Outcome::failed(reason), Vec::new());
        }
    };
    let bytes = match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) => bytes,
        Err(e) => {
            return (
                Outcome::failed(format!("data is not valid base64: {e}")),
                Vec::new(),
            )
        }
    };
    let outcome = match std::str::from_utf8(&bytes) {
        Err(_) => Outcome::failed("data is not UTF-8 text"),
        Ok(text) => match enrich::parse_message(text) {
            Err(e) => Outcome::failed(e.to_string()),
            Ok(events) if events.is_empty() => Outcome::Dropped,
            Ok(events) => ndjson(&events, ip),
        },
    };
    (outcome, bytes)
}

fn ndjson(events: &[enrich::EnrichedEvent], ip: &str) -> Outcome<Vec<u8>> {
    let mut out = Vec::with_capacity(events.len() * 192);
    for event in events {
        if let Err(e) = serde_json::to_writer(&mut out, &event.as_json(ip)) {
            return Outcome::failed(format!("cannot serialize an enriched event: {e}"));
        }
        out.push(b'\n');
    }
    Outcome::Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn answer(records: Value) -> Vec<Value> {
        let mut event =
            json!({"invocationId": "i", "deliveryStreamArn": "arn", "records": records});
        let records = take_records(&mut event).unwrap();
        check_record_ids(&records).unwrap();
        serde_json::to_value(transform(records, "44.201.33.239")).unwrap()["records"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn decoded(record: &Value) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(record["data"].as_str().unwrap())
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn every_event_becomes_one_json_line() {
        let results =
            answer(json!([{"recordId": "r1", "data": b64("ts=1&data={\"appid\":\"a\"}\n\nts=2")}]));
        assert_eq!(results[0]["result"], "Ok");
        assert_eq!(
            decoded(&results[0]),
            "{\"appid\":\"a\",\"data\":null,\"identity\":null,\"ip\":\"44.201.33.239\",\"ts\":\"1\"}\n\
             {\"appid\":null,\"data\":\"\",\"identity\":null,\"ip\":\"44.201.33.239\",\"ts\":\"2\"}\n"
        );
    }

    #[test]
    fn empty_and_blank_data_are_dropped() {
        let results =
            answer(json!([{"recordId": "a", "data": ""}, {"recordId": "b", "data": b64("\n \n")}]));
        assert_eq!(results[0]["result"], "Dropped");
        assert_eq!(results[1]["result"], "Dropped");
    }

    #[test]
    fn malformed_data_fails_and_carries_the_original_back() {
        let results = answer(json!([
            {"recordId": "a", "data": b64("no timestamp here")},
            {"recordId": "b", "data": "%%%"},
            {"recordId": "c"},
            {"recordId": "d", "data": 5},
            {"recordId": "e", "data": "/w=="},
        ]));
        assert!(
            results.iter().all(|r| r["result"] == "ProcessingFailed"),
            "{results:?}"
        );
        assert_eq!(decoded(&results[0]), "no timestamp here");
        assert_eq!(results[1]["data"], "");
        assert_eq!(results[4]["data"], "/w==");
        let ids: Vec<_> = results
            .iter()
            .map(|r| r["recordId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn records_without_or_with_repeated_ids_cannot_be_answered() {
        assert_eq!(
            check_record_ids(&[json!({"recordId": "a"}), json!({"data": ""})]),
            Err(FirehoseError::NoRecordId { index: 1 })
        );
        assert_eq!(
            check_record_ids(&[json!({"recordId": "a"}), json!({"recordId": "a"})]),
            Err(FirehoseError::DuplicateRecordId {
                index: 1,
                record_id: "a".into()
            })
        );
        assert_eq!(
            take_records(&mut json!({"records": null})),
            Err(FirehoseError::NotAList("null"))
        );
    }
}
