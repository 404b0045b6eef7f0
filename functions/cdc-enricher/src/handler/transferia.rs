//! An emulator of the Transferia transfer engine's side of the call, so
//! tests assert where each change item ends up, not only what the JSON says.
//!
//! It follows the engine's CDC-mode handling of a transformation's answer
//! (`pkg/functions/cloud_functions.go` in Transferia, read for this; no code
//! taken from it):
//! * the batch is POSTed as `{"Records":[…]}`; a non-2xx status, a body that
//!   does not parse, or a record count that differs from the request's fails
//!   the attempt, and the whole call is retried (`backoff.WithMaxRetries`
//!   with the transfer's `NumberOfRetries`, so 1 + N attempts; N has no
//!   default in that file, so [`RETRIES`] takes 3); when every attempt has
//!   failed, the transfer fails with the last error;
//! * then, per result: `Ok` emits `cdc` (the engine dereferences it, so an
//!   `Ok` without one would crash it), `Split` emits every `cdc_split` item,
//!   `Dropped` drops, and any other result is skipped without a trace.
//!
//! On top of the engine, it plays Lambda's part: an answer larger than
//! Lambda's response limit never reaches the engine, which sees an error
//! status instead.

use super::*;

use lambda_stream_kit::config::Env;
use serde_json::{json, Value};

use crate::budget::LAMBDA_RESPONSE_LIMIT;

/// The engine's retries after the first attempt.
const RETRIES: usize = 3;

/// What the transfer did with one batch.
#[derive(Debug, Default)]
struct Transfer {
    /// Emitted change items, in order.
    emitted: Vec<Value>,
    /// Results the engine skipped (neither Ok, Split nor Dropped): lost.
    skipped: Vec<String>,
    /// Records answered `Dropped`.
    dropped: usize,
    /// Calls made.
    attempts: usize,
    /// Why the transfer failed, after every retry.
    failed: Option<String>,
}

impl Transfer {
    /// The emitted items' tables, in order.
    fn tables(&self) -> Vec<&str> {
        self.emitted
            .iter()
            .map(|item| item["table"].as_str().unwrap_or_default())
            .collect()
    }
}

/// Sends `records` to the enricher as the engine would, through the
/// Function URL, and acts on the answer as the engine does.
async fn run(enricher: &App, records: &[Value]) -> Transfer {
    let mut transfer = Transfer::default();
    let body = json!({ "Records": records }).to_string();
    for _ in 0..=RETRIES {
        transfer.attempts += 1;
        let mut request = crate::handler::tests::function_url_request();
        request["isBase64Encoded"] = json!(false);
        request["body"] = json!(body);
        let answer = match handle(enricher, crate::handler::tests::event(&request)).await {
            Ok(Response::FunctionUrl(answer)) => answer,
            other => panic!("a Function-URL call must get an HTTP answer, got {other:?}"),
        };
        match accept(&answer, records.len()) {
            Ok(results) => {
                apply(&mut transfer, results);
                return transfer;
            }
            Err(error) => transfer.failed = Some(error),
        }
    }
    transfer
}

/// Sends a stream of `records` the way the engine's buffer cuts it: calls
/// of at most `buffer_bytes` of request (at least one record each), in
/// order, each retried on its own; the transfer stops at the first call
/// that fails every attempt.
async fn run_buffered(enricher: &App, records: &[Value], buffer_bytes: usize) -> Transfer {
    let mut total = Transfer::default();
    let mut start = 0;
    while start < records.len() {
        let mut end = start + 1;
        let mut size = records[start].to_string().len();
        while end < records.len() && size + records[end].to_string().len() <= buffer_bytes {
            size += records[end].to_string().len();
            end += 1;
        }
        let call = run(enricher, &records[start..end]).await;
        total.attempts += call.attempts;
        total.emitted.extend(call.emitted);
        total.skipped.extend(call.skipped);
        total.dropped += call.dropped;
        if call.failed.is_some() {
            total.failed = call.failed;
            return total;
        }
        start = end;
    }
    total
}

/// The results of one attempt, or why the engine retries it.
fn accept(answer: &LambdaFunctionUrlResponse, sent: usize) -> Result<Vec<Value>, String> {
    let size = serde_json::to_vec(answer).map_or(usize::MAX, |bytes| bytes.len());
    if size > LAMBDA_RESPONSE_LIMIT {
        return Err(format!("Lambda refused a {size}-byte response"));
    }
    let body = answer.body.as_deref().unwrap_or_default();
    if !(200..300).contains(&answer.status_code) {
        return Err(format!(
            "Bad status code: {}, error: {body}",
            answer.status_code
        ));
    }
    let parsed: Value =
        serde_json::from_str(body).map_err(|e| format!("failed to parse response: {e}"))?;
    let results = parsed["Records"].as_array().cloned().unwrap_or_default();
    if results.len() != sent {
        return Err(format!(
            "records count differ: {sent} requested but {} received",
            results.len()
        ));
    }
    Ok(results)
}

fn apply(transfer: &mut Transfer, results: Vec<Value>) {
    for result in results {
        match result["result"].as_str().unwrap_or_default() {
            "Ok" => {
                let item = result.get("cdc").filter(|cdc| cdc.is_object());
                transfer
                    .emitted
                    .push(item.cloned().expect("the engine crashes on Ok without cdc"));
            }
            "Split" => {
                let items = result["cdc_split"].as_array().cloned().unwrap_or_default();
                transfer.emitted.extend(items);
            }
            "Dropped" => transfer.dropped += 1,
            other => transfer.skipped.push(other.to_owned()),
        }
    }
}

fn enricher(pairs: &[(&str, &str)]) -> App {
    let mut all = vec![("ENRICH_IP", "44.201.33.239"), ("ENRICHER_AUTH", "none")];
    all.extend_from_slice(pairs);
    let config = Config::from_env(&Env::from_pairs(&all)).unwrap();
    App::new(config, crate::handler::tests::no_secrets()).unwrap()
}

/// Two good records (three lines) and two that cannot be transformed.
fn mixed_records() -> Vec<Value> {
    let batch = crate::handler::tests::fixture("events/cdc-bad-records.json");
    batch["Records"].as_array().unwrap().clone()
}

#[tokio::test]
async fn by_default_every_item_reaches_a_table_and_the_bad_ones_their_dead_letter_table() {
    let transfer = run(&enricher(&[]), &mixed_records()).await;
    assert_eq!(transfer.attempts, 1);
    assert!(transfer.failed.is_none() && transfer.skipped.is_empty());
    assert_eq!(
        transfer.tables(),
        [
            "source-topic",
            "source-topic",
            "source-topic",
            "source-topic_ProcessingFailed",
            "source-topic_ProcessingFailed"
        ]
    );
    let offsets: Vec<_> = transfer.emitted[3..]
        .iter()
        .map(|item| item["columnvalues"][2].clone())
        .collect();
    assert_eq!(offsets, [json!(7), json!(8)], "the bad records, by offset");
    for item in &transfer.emitted[3..] {
        assert_eq!(item["columnnames"][7], "__processing_error");
    }
}

#[tokio::test]
async fn processing_failed_loses_the_bad_items_in_transferia() {
    // Documents why it is not the default: the engine skips what it does
    // not know, and the transfer carries on without those two items.
    let transfer = run(
        &enricher(&[("ENRICHER_ON_FAILURE", "processing-failed")]),
        &mixed_records(),
    )
    .await;
    assert!(transfer.failed.is_none());
    assert_eq!(transfer.tables(), ["source-topic"; 3]);
    assert_eq!(transfer.skipped, ["ProcessingFailed"; 2], "two items lost");
}

#[tokio::test]
async fn fail_call_makes_the_engine_retry_and_stop_the_transfer() {
    let transfer = run(
        &enricher(&[("ENRICHER_ON_FAILURE", "fail-call")]),
        &mixed_records(),
    )
    .await;
    assert_eq!(transfer.attempts, 1 + RETRIES);
    assert!(transfer.emitted.is_empty());
    let error = transfer.failed.unwrap();
    assert!(
        error.starts_with("Bad status code: 500")
            && error.contains("record 2 cannot be transformed"),
        "{error}"
    );
}

#[tokio::test]
async fn an_oversized_answer_fails_every_attempt_with_the_operator_message_and_emits_nothing() {
    let mut records = mixed_records();
    // About 150 KB of the shortest valid lines: some 10 MB of change items.
    let lines = "ts=1\n".repeat(30_000);
    records[1]["cdc"]["columnvalues"][6] = json!(lines);
    records[1]["cdc"]["table_schema"][6]["type"] = json!("utf8");
    let transfer = run(&enricher(&[]), &records).await;
    assert_eq!(transfer.attempts, 1 + RETRIES);
    assert!(transfer.emitted.is_empty(), "nothing emitted half-way");
    let error = transfer.failed.unwrap();
    assert!(error.starts_with("Bad status code: 500"), "{error}");
    assert!(
        error.contains("Lambda's 6291456-byte response limit: 1 of 4 records fit")
            && error.contains("Lower the transfer's buffer size"),
        "{error}"
    );
}

#[tokio::test]
async fn lowering_the_buffer_size_as_the_error_says_lets_the_same_records_through() {
    let mut records = mixed_records();
    // Two records of about 4 MB of change items each: one call with both is
    // over the response limit, one call each is not.
    let lines = "ts=1\n".repeat(12_000);
    for i in [0, 1] {
        records[i]["cdc"]["columnvalues"][6] = json!(lines);
        records[i]["cdc"]["table_schema"][6]["type"] = json!("utf8");
    }
    let enricher = enricher(&[]);
    let together = run_buffered(&enricher, &records, 1 << 20).await;
    let error = together.failed.expect("over the limit in one call");
    assert!(
        error.contains("Lower the transfer's buffer size"),
        "{error}"
    );
    assert!(together.emitted.is_empty());

    let one_each = run_buffered(&enricher, &records, 1_000).await;
    assert!(one_each.failed.is_none(), "{:?}", one_each.failed);
    assert!(one_each.skipped.is_empty(), "nothing lost");
    let tables = one_each.tables();
    let count = |table: &str| tables.iter().filter(|t| **t == table).count();
    assert_eq!(
        count("source-topic"),
        2 * 12_000,
        "every line of both records"
    );
    assert_eq!(
        count("source-topic_ProcessingFailed"),
        2,
        "and both bad records"
    );
    assert_eq!(tables.len(), 2 * 12_000 + 2);
}
