//! The same enrichment as an Amazon Data Firehose transformation.
//!
//! Each record's `data` is base64 of a message in the format of
//! [`crate::enrich`]. The answer per `recordId`:
//! * `Ok` with newline-delimited JSON, one enriched object per event, each
//!   line ending in `\n` so that records concatenated by the destination
//!   stay one object per line;
//! * `Dropped` when the data is empty or holds only blank lines;
//! * `ProcessingFailed` when the data is missing, not base64, not UTF-8, or
//!   has a bad line, or when the record does not parse (a repeated key); it carries the original bytes back (nothing when they
//!   could not be decoded: Firehose delivers its own copy of the original to
//!   the error output anyway).
//!
//! The answer is kept under Lambda's 6 MB response limit: a record whose
//! output does not fit is answered `ProcessingFailed` (see [`transform`]).
//!
//! A record without a `recordId` cannot be answered, and Firehose rejects a
//! response that misses one, so the whole call fails instead.
//!
//! The `records` list is kept as raw JSON per record, and each record is
//! read on its own with [`lenient::read`]: a typed [`Record`] (its
//! `recordId` and its raw `data`), or, when it does not parse (not an
//! object, or a repeated key), only its `recordId`.

use std::collections::HashMap;

use aws_lambda_events::firehose::{KinesisFirehoseResponse, KinesisFirehoseResponseRecord};
use base64::Engine as _;
use lambda_stream_kit::lenient::{self, Lenient};
use lambda_stream_kit::result::{firehose_record, Outcome, ResultKind};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::budget::{Budget, Framing, LAMBDA_RESPONSE_LIMIT};
use crate::doublecloud::base64_error;
use crate::enrich;
use crate::json;

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
    /// Even with every record answered `ProcessingFailed` without its data,
    /// the answer would pass Lambda's response limit.
    #[error(
        "the answer to these {records} records would exceed Lambda's {LAMBDA_RESPONSE_LIMIT}-byte \
         response limit: lower the delivery stream's processing buffer size"
    )]
    TooLarge {
        /// The records in the call.
        records: usize,
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

/// The records of a Firehose event, each read on its own.
pub fn take_records(event: &RawValue) -> Result<Vec<FirehoseRecord<'_>>, FirehoseError> {
    let records = json::list_member(event, "records").map_err(FirehoseError::NotAList)?;
    Ok(records
        .into_iter()
        .map(|record| lenient::read(record, "record"))
        .collect())
}

/// One Firehose record, typed: its `recordId` (when it is text), and its
/// `data` as raw text (`None` when absent or `null`).
#[derive(Debug, Deserialize)]
pub struct Record<'a> {
    #[serde(rename = "recordId", default, deserialize_with = "lenient::text")]
    record_id: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// A record's coordinates, read when it does not parse as a [`Record`]
/// (not an object, or a repeated key): its `recordId` alone.
#[derive(Debug, Default, Deserialize)]
pub struct Coordinates {
    #[serde(rename = "recordId", default, deserialize_with = "lenient::text")]
    record_id: Option<String>,
}

/// A Firehose record read leniently.
pub type FirehoseRecord<'a> = Lenient<Record<'a>, Coordinates>;

/// The record's `recordId`, when it is text.
fn record_id<'r>(record: &'r FirehoseRecord<'_>) -> Option<&'r str> {
    match record {
        Lenient::Parsed(record) => record.record_id.as_deref(),
        Lenient::Unparsed { coordinates, .. } => coordinates.record_id.as_deref(),
    }
}

/// Checks that every record can be answered, before any work is done.
pub fn check_record_ids(records: &[FirehoseRecord<'_>]) -> Result<(), FirehoseError> {
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let id = record_id(record).ok_or(FirehoseError::NoRecordId { index })?;
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
///
/// The answer stays within `limit` bytes: each record's smallest answer
/// (`ProcessingFailed` without data) is set aside first, so a record that
/// comes late still gets one, and a record whose output does not fit what
/// is left is answered `ProcessingFailed` (with its original data when that
/// fits). Only when even the smallest answers cannot fit does the call fail.
pub fn transform(
    records: Vec<FirehoseRecord<'_>>,
    ip: &str,
    limit: usize,
) -> Result<KinesisFirehoseResponse, FirehoseError> {
    let total = records.len();
    let too_large = FirehoseError::TooLarge { records: total };
    let mut budget = Budget::new(limit, 0, Framing::Bare).ok_or(too_large.clone())?;
    let ids: Vec<String> = records
        .iter()
        .map(|record| record_id(record).unwrap_or_default().to_owned())
        .collect();
    let floors: Vec<usize> = ids
        .iter()
        .map(|id| budget.cost_of(&answer(id.clone(), ResultKind::ProcessingFailed)))
        .collect();
    let framing = budget.cost_of_text(r#"{"records":[]}"#) + total.saturating_sub(1);
    let reserved = floors
        .iter()
        .fold(framing, |sum, floor| sum.saturating_add(*floor));
    if !budget.try_spend(reserved) {
        return Err(too_large);
    }

    let mut response = KinesisFirehoseResponse::default();
    response.records = Vec::with_capacity(total);
    for (index, ((record, record_id), floor)) in
        records.into_iter().zip(ids).zip(floors).enumerate()
    {
        budget.refund(floor);
        let ok_overhead = budget.cost_of(&answer(record_id.clone(), ResultKind::Ok));
        // Base64 turns every 3 bytes into 4.
        let room = budget.remaining().saturating_sub(ok_overhead) / 4 * 3;
        let (outcome, original) = match &record {
            Lenient::Parsed(record) => transform_data(record.data, ip, room),
            Lenient::Unparsed { reason, .. } => (Outcome::failed(reason.as_str()), Vec::new()),
        };
        let (kind, data) = match outcome {
            Outcome::Ok(data) => (ResultKind::Ok, data),
            Outcome::Split(parts) => (ResultKind::Ok, parts.join(&b'\n')),
            Outcome::Dropped => (ResultKind::Dropped, Vec::new()),
            Outcome::ProcessingFailed { reason } => {
                tracing::warn!(index, record_id = %record_id, reason = %reason, "record failed");
                (ResultKind::ProcessingFailed, original)
            }
        };
        let mut result = answer(record_id, kind);
        let cost = budget
            .cost_of(&result)
            .saturating_add(base64_len(data.len()));
        if budget.try_spend(cost) {
            *result.data = data;
        } else {
            // Only a failure's original data can miss here (an output
            // bigger than `room` is already a failure): Firehose delivers
            // its own copy of the original to the error output anyway.
            tracing::warn!(
                index,
                record_id = ?result.record_id,
                "record failed: its original data does not fit in the answer and is not sent back"
            );
            result.result = Some(ResultKind::ProcessingFailed.as_str().to_owned());
            let cost = budget.cost_of(&result);
            if !budget.try_spend(cost) {
                // Unreachable while the floor was set aside; fail rather
                // than send an answer Lambda would refuse.
                return Err(too_large);
            }
        }
        response.records.push(result);
    }
    Ok(response)
}

/// One answer record of `kind`, with no data yet: what it costs before its
/// data is added.
fn answer(record_id: String, kind: ResultKind) -> KinesisFirehoseResponseRecord {
    let outcome = match kind {
        ResultKind::Ok | ResultKind::Split => Outcome::Ok(Vec::new()),
        ResultKind::Dropped => Outcome::Dropped,
        ResultKind::ProcessingFailed => Outcome::failed(""),
    };
    firehose_record(record_id, outcome, Vec::new(), HashMap::new())
}

/// The length of padded standard base64 for `bytes` bytes.
fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3).saturating_mul(4)
}

/// The outcome for one record's `data`, and the original bytes to send back
/// with a failure. An output longer than `room` bytes is a failure.
fn transform_data(data: Option<&RawValue>, ip: &str, room: usize) -> (Outcome<Vec<u8>>, Vec<u8>) {
    let Some(data) = data else {
        return (Outcome::failed("record has no data"), Vec::new());
    };
    let Some(encoded) = json::text(data) else {
        let reason = format!("data is {}, expected base64 text", json::kind(data));
        return (Outcome::failed(reason), Vec::new());
    };
    let bytes = match base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()) {
        Ok(bytes) => bytes,
        Err(e) => {
            return (
                Outcome::failed(format!("data is not valid base64: {}", base64_error(&e))),
                Vec::new(),
            )
        }
    };
    let outcome = match std::str::from_utf8(&bytes) {
        Err(_) => Outcome::failed("data is not UTF-8 text"),
        Ok(text) => ndjson(text, ip, room),
    };
    (outcome, bytes)
}

/// The enriched lines of `message`, one JSON object per line. Output is kept
/// only up to `room` bytes; past that the rest is still read, because a bad
/// line is reported as such rather than as too large.
fn ndjson(message: &str, ip: &str, room: usize) -> Outcome<Vec<u8>> {
    let mut out = Vec::new();
    let mut events = 0usize;
    let mut fits = true;
    for event in enrich::events(message) {
        let event = match event {
            Ok(event) => event,
            Err(e) => return Outcome::failed(e.to_string()),
        };
        events += 1;
        if !fits {
            continue;
        }
        if let Err(e) = serde_json::to_writer(&mut out, &event.as_json(ip)) {
            return Outcome::failed(format!("cannot serialize an enriched event: {e}"));
        }
        out.push(b'\n');
        if out.len() > room {
            fits = false;
            out = Vec::new();
        }
    }
    match (events, fits) {
        (0, _) => Outcome::Dropped,
        (_, true) => Outcome::Ok(out),
        (_, false) => Outcome::failed(format!(
            "the enriched events do not fit in Lambda's {LAMBDA_RESPONSE_LIMIT}-byte response \
             with the rest of the batch: lower the delivery stream's processing buffer size"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn raw(value: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn answer(records: Value) -> Vec<Value> {
        let event =
            raw(json!({"invocationId": "i", "deliveryStreamArn": "arn", "records": records}));
        let records = take_records(&event).unwrap();
        check_record_ids(&records).unwrap();
        serde_json::to_value(transform(records, "44.201.33.239", LAMBDA_RESPONSE_LIMIT).unwrap())
            .unwrap()["records"]
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
        let check = |records: Value| {
            check_record_ids(&take_records(&raw(json!({ "records": records }))).unwrap())
        };
        assert_eq!(
            check(json!([{"recordId": "a"}, {"data": ""}])),
            Err(FirehoseError::NoRecordId { index: 1 })
        );
        assert_eq!(
            check(json!([{"recordId": "a"}, 5])),
            Err(FirehoseError::NoRecordId { index: 1 })
        );
        assert_eq!(
            check(json!([{"recordId": "a"}, {"recordId": "a"}])),
            Err(FirehoseError::DuplicateRecordId {
                index: 1,
                record_id: "a".into()
            })
        );
        assert_eq!(
            take_records(&raw(json!({"records": null}))).err(),
            Some(FirehoseError::NotAList("null"))
        );
    }
}
