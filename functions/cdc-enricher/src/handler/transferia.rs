//! The Transferia transfer engine's side of the call
//! (`test_support::transfer_engine`) run against the enricher through its
//! Function URL, so tests assert where each change item ends up, not only
//! what the JSON says. On top of the engine, the call plays Lambda's part:
//! an answer larger than Lambda's response limit never reaches the engine,
//! which sees an error status instead.

use super::*;

use lambda_stream_kit::config::Env;
use serde_json::{json, Value};
use test_support::transfer_engine::{self, CallAnswer, Transfer, RETRIES};

use crate::budget::LAMBDA_RESPONSE_LIMIT;

/// One call through the Function URL, as the engine makes it.
async fn call(enricher: &App, body: String) -> CallAnswer {
    let mut request = crate::handler::tests::function_url_request();
    request["isBase64Encoded"] = json!(false);
    request["body"] = json!(body);
    let answer = match handle(enricher, crate::handler::tests::event(&request)).await {
        Ok(Response::FunctionUrl(answer)) => answer,
        other => panic!("a Function-URL call must get an HTTP answer, got {other:?}"),
    };
    let size = serde_json::to_vec(&answer).map_or(usize::MAX, |bytes| bytes.len());
    if size > LAMBDA_RESPONSE_LIMIT {
        return CallAnswer {
            status: 502,
            body: format!("Lambda refused a {size}-byte response"),
        };
    }
    CallAnswer {
        status: u16::try_from(answer.status_code).unwrap_or(500),
        body: answer.body.unwrap_or_default(),
    }
}

async fn run(enricher: &App, records: &[Value]) -> Transfer {
    transfer_engine::run(records, |body| call(enricher, body)).await
}

async fn run_buffered(enricher: &App, records: &[Value], buffer_bytes: usize) -> Transfer {
    transfer_engine::run_buffered(records, buffer_bytes, |body| call(enricher, body)).await
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
