use std::time::Duration;

use lambda_runtime::LambdaEvent;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer};
use lambda_stream_kit::pipeline::dead_letter::{LEFT_OUT_HEADER, ORIGINAL_BYTES_HEADER};
use lambda_stream_kit::runtime_api::FunctionError;
use lambda_stream_kit::telemetry::capture;

use super::*;
use crate::config::Config;
use crate::handler::{
    Answer, App, ERROR_KIND_HEADER, ERROR_MESSAGE_HEADER, SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER,
};
use crate::rules::{RulesSource, Tagger};
use crate::source::Payload;

const SECRET: &str = "hunter2-SECRET";

fn app(on_error: OnError) -> App {
    App {
        config: Config {
            response_topic: None,
            error_topic: (on_error == OnError::Dlq).then(|| "bad-visits".into()),
            on_error,
            rules: RulesSource::Embedded,
            partial_batch_responses: true,
        },
        tagger: Tagger::load(&RulesSource::Embedded).unwrap(),
        sink: unreachable(),
    }
}

/// [`plan`] with `app`'s settings, rules and producer.
fn plan_for(items: Vec<Value>, app: &App) -> Result<Plan, ConnectorError> {
    plan(items, &app.config, &app.tagger, "t", &app.sink)
}

/// A producer whose broker never answers: every produce fails by the deadline.
fn unreachable() -> KafkaProducer {
    KafkaProducer::new(KafkaConfig::plaintext(vec!["127.0.0.1:1".into()]))
}

fn fixture() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/kafka-connector.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Runs the whole handler on a connector array, with about half a second
/// left for publishing.
async fn invoke(items: Vec<Value>, app: &App) -> Result<Answer, FunctionError> {
    let context = test_support::context_expiring_in(Duration::from_millis(1_500));
    let payload = Payload::from_value(&Value::Array(items));
    crate::function_handler(app, LambdaEvent::new(payload, context)).await
}

fn bad_item(offset: i64, value: Value) -> Value {
    json!({"payload": {"timestamp": 1_722_183_591_400_i64, "topic": "page-visits",
                       "partition": 1, "offset": offset, "key": "v-9", "value": value}})
}

#[test]
fn in_dlq_mode_bad_items_get_dead_letters_with_the_mapping_headers() {
    let plan = plan_for(fixture(), &app(OnError::Dlq)).unwrap();
    assert_eq!(plan.entries.len(), 3);
    assert!(plan.entries[0]["tags"].is_array());
    assert!(plan.entries[1]["tags"].is_array());
    assert_eq!(plan.entries[2], Value::Null, "filled in once published");
    let [letter] = &plan.dead_letters[..] else {
        panic!("{:?}", plan.dead_letters)
    };
    assert_eq!(letter.index, 2);
    assert_eq!(letter.bad.kind, ErrorKind::NotAPageVisit);
    let record = &letter.record;
    assert_eq!(record.key, None);
    assert_eq!(
        record.value.as_deref(),
        Some(&br#"{"event":"heartbeat"}"#[..])
    );
    assert_eq!(
        record.timestamp.map(|t| t.timestamp_millis()),
        Some(1_722_183_591_400)
    );
    let header = |name: &str| String::from_utf8_lossy(&record.headers[name]).into_owned();
    assert_eq!(header(SOURCE_TOPIC_HEADER), "page-visits");
    assert_eq!(header(SOURCE_PARTITION_HEADER), "1");
    assert_eq!(header(SOURCE_OFFSET_HEADER), "9001");
    assert_eq!(header(ERROR_KIND_HEADER), "not-a-page-visit");
    assert_eq!(
        header(ERROR_MESSAGE_HEADER),
        "no url field (one of url, page_url, pageUrl)"
    );
}

#[test]
fn a_text_value_and_a_key_are_dead_lettered_as_they_came() {
    let items = vec![bad_item(7, json!("{oops"))];
    let plan = plan_for(items, &app(OnError::Dlq)).unwrap();
    let record = &plan.dead_letters[0].record;
    assert_eq!(record.key.as_deref(), Some(&b"v-9"[..]));
    assert_eq!(record.value.as_deref(), Some(&b"{oops"[..]));
    assert_eq!(record.headers[ERROR_KIND_HEADER], b"not-json");
}

#[test]
fn an_item_that_is_not_an_object_is_dead_lettered_without_coordinates() {
    let plan = plan_for(vec![json!(42)], &app(OnError::Dlq)).unwrap();
    let record = &plan.dead_letters[0].record;
    assert_eq!(record.value.as_deref(), Some(&b"42"[..]));
    assert_eq!(record.headers[ERROR_KIND_HEADER], b"malformed-record");
    assert!(!record.headers.contains_key(SOURCE_TOPIC_HEADER));
}

#[test]
fn the_dead_lettered_entry_says_where_the_record_went() {
    let position = Position::of(&bad_item(7, json!("{oops")));
    let bad = BadRecord::new(ErrorKind::NotJson, "invalid JSON");
    let delivery = Delivery {
        partition: 2,
        offset: 17,
    };
    assert_eq!(
        dead_lettered_entry(4, &position, &bad, "bad-visits", delivery),
        json!({"status": "dead-lettered", "kind": "not-json", "message": "invalid JSON", "index": 4,
               "source": {"topic": "page-visits", "partition": 1, "offset": 7},
               "dead_letter": {"topic": "bad-visits", "partition": 2, "offset": 17}})
    );
}

#[tokio::test]
async fn when_a_dead_letter_cannot_be_published_the_call_fails_naming_the_record() {
    let started = std::time::Instant::now();
    let (result, logs) = capture(invoke(fixture(), &app(OnError::Dlq))).await;
    let error = result.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.error_type(), "Record.DeadLetterFailed");
    assert!(
        error
            .message()
            .starts_with("connector record 2 (page-visits-1 at offset 9001): not-a-page-visit, and publishing its dead letter to bad-visits failed"),
        "{}",
        error.message()
    );
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["message"] == "dead-lettering a connector record failed; failing the call")
        .unwrap();
    assert_eq!(
        (line["topic"].as_str(), line["offset"].as_i64()),
        (Some("page-visits"), Some(9001))
    );
}

#[tokio::test]
async fn in_fail_mode_a_bad_item_fails_the_call_as_rejected() {
    let error = invoke(fixture(), &app(OnError::Fail)).await.unwrap_err();
    assert_eq!(error.error_type(), "Record.Rejected");
    assert!(
        error
            .message()
            .starts_with("connector record 2 (page-visits-1 at offset 9001): not-a-page-visit"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn in_log_mode_a_bad_item_is_logged_with_its_coordinates_and_answered_as_an_error() {
    let (answer, logs) = capture(invoke(fixture(), &app(OnError::Log))).await;
    let Answer::Connector(entries) = answer.unwrap() else {
        panic!("a connector answer expected")
    };
    assert_eq!(entries[2]["error"]["kind"], "not-a-page-visit");
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["message"] == "connector record cannot be tagged")
        .unwrap();
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["index"], 2);
    assert_eq!(line["topic"], "page-visits");
    assert_eq!(line["partition"], 1);
    assert_eq!(line["offset"], 9001);
    assert_eq!(line["kind"], "not-a-page-visit");
}

#[test]
fn a_huge_bad_value_makes_a_small_dead_letter_that_never_quotes_it() {
    // serde_json would quote the whole string in its message.
    let huge = format!("{SECRET}{}", "x".repeat(600 * 1024));
    for value in [
        json!(huge),
        json!(format!("{{\"url\": \"/\", \"pin\": {huge}}}")),
    ] {
        let items = vec![bad_item(7, value)];
        let plan = plan_for(items, &app(OnError::Dlq)).unwrap();
        let letter = &plan.dead_letters[0];
        assert!(letter.bad.message.len() <= crate::bad_record::MAX_MESSAGE_BYTES);
        let header_bytes: usize = letter
            .record
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        assert!(header_bytes < 1024, "{header_bytes}");
        for (name, header) in &letter.record.headers {
            assert!(!String::from_utf8_lossy(header).contains(SECRET), "{name}");
        }
        assert!(unreachable().fits(&letter.record));
    }
}

#[test]
fn a_bad_item_too_large_to_dead_letter_becomes_a_stub_that_fits() {
    let dlq = app(OnError::Dlq);
    let producer = &dlq.sink;
    let items = vec![bad_item(7, json!("y".repeat(1_500_000)))];
    let plan = plan_for(items, &dlq).unwrap();
    let record = &plan.dead_letters[0].record;
    assert!(producer.fits(record));
    assert_eq!(record.value, None);
    assert_eq!(record.key.as_deref(), Some(&b"v-9"[..]));
    assert_eq!(record.headers[SOURCE_OFFSET_HEADER], b"7");
    assert_eq!(record.headers[ERROR_KIND_HEADER], b"not-json");
    assert_eq!(record.headers[LEFT_OUT_HEADER], b"value");
    let original: usize = String::from_utf8_lossy(&record.headers[ORIGINAL_BYTES_HEADER])
        .parse()
        .unwrap();
    assert!(original > 1_500_000, "{original}");
}

#[tokio::test]
async fn the_metrics_count_a_connector_call_and_a_failed_one_hands_everything_back() {
    use lambda_stream_kit::telemetry::metrics::{self, names};
    let items = fixture();
    let n = items.len() as f64;
    let ((answer, _), counted) =
        metrics::collect(capture(invoke(items.clone(), &app(OnError::Log)))).await;
    assert!(answer.is_ok());
    assert_eq!(counted.total(names::RECORDS_RECEIVED), Some(n));
    assert_eq!(counted.total(names::RECORDS_SKIPPED), Some(1.0));
    assert_eq!(counted.total(names::RECORDS_PUBLISHED), Some(n - 1.0));
    assert_eq!(counted.total(names::RECORDS_REPORTED), Some(0.0));

    let ((answer, _), counted) =
        metrics::collect(capture(invoke(items, &app(OnError::Fail)))).await;
    assert!(answer.is_err());
    assert_eq!(counted.total(names::RECORDS_REPORTED), Some(n));
    assert_eq!(counted.total(names::RECORDS_FAILED), Some(1.0));
}
