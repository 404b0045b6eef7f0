//! The whole DynamoDB stream record path of `dynamo-stream-producer`:
//! the batch parse, each record's `EventRecord` parse, the image choice,
//! unmarshalling, key extraction, dead letters, and the answer.
//!
//! The handler runs for real with a producer whose deadline has already
//! passed (the context's deadline is an hour ago), so every produce call fails
//! at once as a retryable timeout and no record is ever acknowledged. That
//! pins down the answer without a broker: the batch item failure must be
//! the sequence number of the first record that is not skipped, the whole
//! batch must fail when that record has no sequence number, and the answer
//! must be empty only when every record is skipped. A record is skipped
//! when it parses as an `EventRecord` and its known `eventName` is not one
//! the configuration forwards.
//!
//! Two configurations run on every input: forwarding INSERT and MODIFY
//! with a dead-letter topic (poison records go to the dead-letter path),
//! and forwarding REMOVE without one (poison records are reported).
//!
//! A panic anywhere in the path (ours or `aws_lambda_events`') is a crash:
//! in Lambda it would fail the whole batch instead of one record.

#![no_main]

use std::sync::OnceLock;

use aws_lambda_events::dynamodb::EventRecord;
use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::{function_handler, App, StreamBatch};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::config::Env;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

struct Setup {
    app: App,
}

fn setups() -> &'static [Setup; 2] {
    static SETUPS: OnceLock<[Setup; 2]> = OnceLock::new();
    SETUPS.get_or_init(|| {
        let setup = |pairs: &[(&str, &str)]| {
            // Port 1 on loopback: nothing listens there, and with the
            // deadline already passed no connection is waited for anyway.
            let mut all = vec![("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")];
            all.extend_from_slice(pairs);
            let config = Config::from_env(&Env::from_pairs(&all)).expect("a valid configuration");
            Setup {
                app: App::new(config),
            }
        };
        [
            setup(&[
                ("EVENT_NAMES", "INSERT,MODIFY"),
                ("DEAD_LETTER_TOPIC", "dlq"),
            ]),
            setup(&[("EVENT_NAMES", "REMOVE"), ("KEY_ATTRIBUTE", "pk")]),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = serde_json::from_slice::<StreamBatch>(data) else {
        // The runtime answers an event that does not deserialize itself.
        return;
    };
    for setup in setups() {
        check(&batch, setup);
    }
});

fn check(batch: &StreamBatch, setup: &Setup) {
    let expected = batch.records.as_ref().map(|records| {
        records.iter().find_map(|raw| {
            let (skipped, sequence_number) = judge(raw.get(), &setup.app.config);
            (!skipped).then_some(sequence_number)
        })
    });

    let payload = StreamBatch {
        records: batch.records.clone(),
    };
    // A real epoch deadline in the past: `stop_by` then leaves no time at
    // all. (Small values are read as an emulator's timeout, not a time.)
    let mut context = Context::default();
    context.deadline = epoch_ms().saturating_sub(3_600_000);
    let answer = stream_fuzz::block_on(function_handler(
        &setup.app,
        LambdaEvent::new(payload, context),
    ));

    let reported: Option<Vec<Option<String>>> = answer.as_ref().ok().map(|response| {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    });
    match expected {
        // No Records list: the whole invocation fails.
        None => assert!(answer.is_err(), "an event without Records was answered"),
        // Every record skipped: nothing to report.
        Some(None) => assert_eq!(reported, Some(vec![]), "all records were skipped"),
        // The first record not skipped has a sequence number: it is reported.
        Some(Some(Some(sequence_number))) => assert_eq!(
            reported,
            Some(vec![Some(sequence_number)]),
            "the first unacknowledged record must be reported"
        ),
        // It has none: the whole batch fails.
        Some(Some(None)) => assert!(
            answer.is_err(),
            "a failed record without a sequence number must fail the batch, got {reported:?}"
        ),
    }
}

/// Whether the handler should skip the record, and its sequence number.
fn judge(raw: &str, config: &Config) -> (bool, Option<String>) {
    match serde_json::from_str::<EventRecord>(raw) {
        Ok(record) => {
            let name = record.event_name.as_str();
            let known = matches!(name, "INSERT" | "MODIFY" | "REMOVE");
            let forwarded = config.event_names.iter().any(|n| n == name);
            (known && !forwarded, record.change.sequence_number)
        }
        Err(_) => {
            let value: Value = serde_json::from_str(raw).unwrap_or_default();
            let sequence_number = value
                .pointer("/dynamodb/SequenceNumber")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (false, sequence_number)
        }
    }
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
