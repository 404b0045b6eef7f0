//! A stand-in for the Transferia transfer engine's side of a
//! transformation call, so a test (or `mapping-runner transfer`) sees
//! where each change item ends up, not only what the function's JSON says.
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
//! * then, per result: `Ok` emits `cdc`, `Split` emits every `cdc_split`
//!   item, `Dropped` drops, and any other result is skipped without a trace.
//! * The engine's buffer cuts a stream of records into calls of at most a
//!   number of bytes ([`run_buffered`]).

use std::future::Future;

use serde_json::{json, Value};

/// The engine's retries after the first attempt.
pub const RETRIES: usize = 3;

/// The function's HTTP answer to one call, as the engine receives it.
#[derive(Debug, Clone)]
pub struct CallAnswer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// What the transfer did with the records.
#[derive(Debug, Default)]
pub struct Transfer {
    /// Emitted change items, in order.
    pub emitted: Vec<Value>,
    /// Results the engine skipped (neither Ok, Split nor Dropped): lost.
    pub skipped: Vec<String>,
    /// Records answered `Dropped`.
    pub dropped: usize,
    /// Calls made.
    pub attempts: usize,
    /// Why the transfer failed, after every retry.
    pub failed: Option<String>,
}

impl Transfer {
    /// The emitted items' tables, in order.
    pub fn tables(&self) -> Vec<&str> {
        self.emitted
            .iter()
            .map(|item| item["table"].as_str().unwrap_or_default())
            .collect()
    }
}

/// Sends `records` in one call through `call` (which gets the request
/// body), retried as the engine retries, and acts on the answer.
pub async fn run<F, Fut>(records: &[Value], mut call: F) -> Transfer
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = CallAnswer>,
{
    let mut transfer = Transfer::default();
    let body = json!({ "Records": records }).to_string();
    for _ in 0..=RETRIES {
        transfer.attempts += 1;
        match accept(&call(body.clone()).await, records.len()) {
            Ok(results) => {
                apply(&mut transfer, results);
                transfer.failed = None;
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
pub async fn run_buffered<F, Fut>(records: &[Value], buffer_bytes: usize, mut call: F) -> Transfer
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = CallAnswer>,
{
    let mut total = Transfer::default();
    let mut start = 0;
    while start < records.len() {
        let mut end = start + 1;
        let mut size = records[start].to_string().len();
        while end < records.len() && size + records[end].to_string().len() <= buffer_bytes {
            size += records[end].to_string().len();
            end += 1;
        }
        let one = run(&records[start..end], &mut call).await;
        total.attempts += one.attempts;
        total.emitted.extend(one.emitted);
        total.skipped.extend(one.skipped);
        total.dropped += one.dropped;
        if one.failed.is_some() {
            total.failed = one.failed;
            return total;
        }
        start = end;
    }
    total
}

/// The results of one attempt, or why the engine retries it.
fn accept(answer: &CallAnswer, sent: usize) -> Result<Vec<Value>, String> {
    if !(200..300).contains(&answer.status) {
        return Err(format!(
            "Bad status code: {}, error: {}",
            answer.status, answer.body
        ));
    }
    let parsed: Value =
        serde_json::from_str(&answer.body).map_err(|e| format!("failed to parse response: {e}"))?;
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
            "Ok" => match result.get("cdc").filter(|cdc| cdc.is_object()) {
                Some(item) => transfer.emitted.push(item.clone()),
                // The engine dereferences `cdc` and would crash; counted as
                // lost here.
                None => transfer.skipped.push("Ok without cdc".to_owned()),
            },
            "Split" => {
                let items = result["cdc_split"].as_array().cloned().unwrap_or_default();
                transfer.emitted.extend(items);
            }
            "Dropped" => transfer.dropped += 1,
            other => transfer.skipped.push(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Value) -> CallAnswer {
        CallAnswer {
            status,
            body: body.to_string(),
        }
    }

    #[tokio::test]
    async fn each_result_kind_goes_where_the_engine_sends_it() {
        let records = [json!({}), json!({}), json!({}), json!({})];
        let transfer = run(&records, |_| async {
            answer(
                200,
                json!({"Records": [
                    {"result": "Ok", "cdc": {"table": "a"}},
                    {"result": "Split", "cdc_split": [{"table": "b"}, {"table": "c"}]},
                    {"result": "Dropped"},
                    {"result": "ProcessingFailed"},
                ]}),
            )
        })
        .await;
        assert_eq!(transfer.tables(), ["a", "b", "c"]);
        assert_eq!(transfer.dropped, 1);
        assert_eq!(transfer.skipped, ["ProcessingFailed"]);
        assert_eq!(transfer.attempts, 1);
    }

    #[tokio::test]
    async fn a_short_answer_is_retried_then_fails_the_transfer() {
        let transfer = run(&[json!({}), json!({})], |_| async {
            answer(200, json!({"Records": [{"result": "Ok", "cdc": {}}]}))
        })
        .await;
        assert_eq!(transfer.attempts, 1 + RETRIES);
        assert!(transfer.emitted.is_empty());
        assert!(transfer
            .failed
            .is_some_and(|e| e.contains("2 requested but 1 received")));
    }
}
