use lambda_runtime::Context;
use lambda_stream_kit::kafka::{KafkaConfig, OutgoingRecord};
use lambda_stream_kit::pipeline::{MemorySink, RecordHandler};
use lambda_stream_kit::telemetry::capture;
use serde_json::json;

use super::*;
use crate::bad_record::BadRecord;
use crate::config::OnError;
use crate::mapper::{tagged_record, Tagging};
use crate::rules::RulesSource;
use crate::source::SourceRecord;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn app(on_error: OnError) -> App {
    app_with(on_error, unreachable())
}

fn app_with<S>(on_error: OnError, sink: S) -> App<S> {
    App {
        config: Config {
            response_topic: Some("tagged-visits".into()),
            error_topic: (on_error == OnError::Dlq).then(|| "bad-visits".into()),
            on_error,
            rules: RulesSource::Embedded,
            partial_batch_responses: true,
        },
        tagger: Tagger::load(&RulesSource::Embedded).unwrap(),
        sink,
    }
}

/// The dead letter the batch path builds for `record`, set aside for `bad`.
fn dead_letter(record: &SourceRecord<'_>, bad: &BadRecord, sink: &impl Sink) -> OutgoingRecord {
    let app = app(OnError::Dlq);
    let mapper = Tagging {
        config: &app.config,
        tagger: &app.tagger,
        sink,
        tagged_at: "t",
    };
    mapper.dead_letter(record, &bad.clone().into())
}

/// A producer whose broker never answers: every produce fails by the deadline.
fn unreachable() -> KafkaProducer {
    KafkaProducer::new(KafkaConfig::plaintext(vec!["127.0.0.1:1".into()]))
}

/// A context whose deadline leaves about half a second for publishing.
fn short_context() -> Context {
    test_support::context_expiring_in(Duration::from_millis(1_500))
}

async fn invoke<S: Sink>(payload: Value, app: &App<S>) -> Result<Answer, FunctionError> {
    let payload = Payload::from_value(&payload);
    function_handler(app, LambdaEvent::new(payload, short_context())).await
}

/// The batch of a fixture, as the runtime would read it.
fn fixture_batch(name: &str) -> Batch {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    match serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap() {
        Payload::Batch(batch) => batch,
        other => panic!("{name} is not a batch: {other:?}"),
    }
}

async fn batch(payload: Value, app: &App) -> KafkaEventResponse {
    match invoke(payload, app).await.unwrap() {
        Answer::Batch(response) => response,
        other => panic!("expected a batch response, got {other:?}"),
    }
}

fn failures(response: &KafkaEventResponse) -> Vec<(String, i64)> {
    response
        .batch_item_failures
        .iter()
        .map(|f| {
            (
                f.item_identifier.partition.clone(),
                f.item_identifier.offset,
            )
        })
        .collect()
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(p, o)| ((*p).to_owned(), *o)).collect()
}

fn warnings(logs: &lambda_stream_kit::telemetry::CapturedLogs) -> Vec<(String, i64)> {
    logs.lines()
        .into_iter()
        .filter(|l| l["message"] == "record set aside")
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or_default().to_owned(),
                l["offset"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn held_back(logs: &lambda_stream_kit::telemetry::CapturedLogs) -> i64 {
    logs.lines()
        .into_iter()
        .find(|l| l["message"] == "batch done")
        .and_then(|l| l["held_back"].as_i64())
        .unwrap()
}

#[tokio::test]
async fn connector_calls_get_tagged_events_back_in_order_with_error_entries_for_bad_records() {
    let answer = invoke(fixture("kafka-connector.json"), &app(OnError::Log))
        .await
        .unwrap();
    let Answer::Connector(results) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0]["tags"],
        json!([
            "campaign:spring",
            "channel:email",
            "device:mobile",
            "medium:email",
            "section:blog",
            "source:newsletter"
        ])
    );
    assert_eq!(results[0]["visitor_id"], "v-1001");
    assert_eq!(
        results[1]["tags"],
        json!(["channel:search", "device:desktop", "section:product"])
    );
    assert_eq!(results[1]["cart_value"], 89.9);
    assert!(results[1]["tagged_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        results[2],
        json!({"error": {"kind": "not-a-page-visit", "message": "no url field (one of url, page_url, pageUrl)",
                         "index": 2, "topic": "page-visits", "partition": 1, "offset": 9001}})
    );
}

#[tokio::test]
async fn a_bad_connector_record_fails_the_whole_call_under_on_error_fail() {
    let err = invoke(fixture("kafka-connector.json"), &app(OnError::Fail))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("connector record 2 (page-visits-1 at offset 9001): not-a-page-visit"),
        "{err}"
    );
}

#[tokio::test]
async fn every_unpublished_record_is_listed() {
    let response = batch(fixture("kafka-msk.json"), &app(OnError::Fail)).await;
    assert_eq!(
        failures(&response),
        pairs(&[
            ("page-visits-0", 15),
            ("page-visits-0", 16),
            ("page-visits-1", 7),
            ("page-visits-1", 8)
        ])
    );
}

#[tokio::test]
async fn on_error_log_skips_bad_records_with_a_log_line() {
    let (response, logs) =
        capture(batch(fixture("kafka-mixed-batch.json"), &app(OnError::Log))).await;
    assert_eq!(
        warnings(&logs),
        vec![
            ("not-json".into(), 21),
            ("not-a-page-visit".into(), 30),
            ("invalid-base64".into(), 51)
        ]
    );
    // The good records could not be published (no broker): each is
    // listed, never a skipped one.
    assert_eq!(
        failures(&response),
        pairs(&[
            ("page-visits-0", 20),
            ("page-visits-0", 22),
            ("page-visits-1", 31),
            ("page-visits-2", 50)
        ])
    );
}

#[tokio::test]
async fn on_error_fail_reports_the_bad_record_and_holds_back_the_rest_of_its_partition() {
    let (response, logs) = capture(batch(
        fixture("kafka-mixed-batch.json"),
        &app(OnError::Fail),
    ))
    .await;
    assert_eq!(
        failures(&response),
        pairs(&[
            ("page-visits-0", 20),
            ("page-visits-0", 21),
            ("page-visits-0", 22),
            ("page-visits-1", 30),
            ("page-visits-1", 31),
            ("page-visits-2", 50),
            ("page-visits-2", 51)
        ])
    );
    // Offset 22 (after the bad 21) and 31 (after the bad 30) were not sent,
    // and are listed so the mapping retries them after the bad record.
    assert_eq!(held_back(&logs), 2);
}

#[tokio::test]
async fn on_error_dlq_reports_dead_letters_that_could_not_be_published() {
    let response = batch(fixture("kafka-mixed-batch.json"), &app(OnError::Dlq)).await;
    assert_eq!(
        failures(&response),
        pairs(&[
            ("page-visits-0", 20),
            ("page-visits-0", 21),
            ("page-visits-0", 22),
            ("page-visits-1", 30),
            ("page-visits-1", 31),
            ("page-visits-2", 50),
            ("page-visits-2", 51)
        ])
    );
}

#[tokio::test]
async fn a_value_that_is_not_json_follows_on_error() {
    let (response, logs) = capture(batch(
        fixture("bad/kafka-not-json.json"),
        &app(OnError::Fail),
    ))
    .await;
    assert_eq!(failures(&response), pairs(&[("page-visits-3", 5)]));
    assert_eq!(warnings(&logs), vec![("not-json".into(), 5)]);
    let response = batch(fixture("bad/kafka-not-json.json"), &app(OnError::Log)).await;
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn a_value_that_is_not_utf8_is_not_json_and_follows_on_error() {
    let (response, logs) = capture(batch(
        fixture("bad/kafka-value-not-utf8.json"),
        &app(OnError::Fail),
    ))
    .await;
    assert_eq!(failures(&response), pairs(&[("page-visits-3", 5)]));
    assert_eq!(warnings(&logs), vec![("not-json".into(), 5)]);
}

#[tokio::test]
async fn json_that_is_not_a_page_visit_follows_on_error() {
    let (response, logs) = capture(batch(
        fixture("bad/kafka-not-a-page-visit.json"),
        &app(OnError::Fail),
    ))
    .await;
    assert_eq!(
        failures(&response),
        pairs(&[("page-visits-3", 6), ("page-visits-3", 7)])
    );
    assert_eq!(held_back(&logs), 1);
    let (response, logs) = capture(batch(
        fixture("bad/kafka-not-a-page-visit.json"),
        &app(OnError::Log),
    ))
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        warnings(&logs),
        vec![
            ("not-a-page-visit".into(), 6),
            ("not-a-page-visit".into(), 7)
        ]
    );
}

#[tokio::test]
async fn a_value_that_is_not_base64_follows_on_error() {
    let (response, logs) = capture(batch(
        fixture("bad/kafka-invalid-base64.json"),
        &app(OnError::Fail),
    ))
    .await;
    assert_eq!(failures(&response), pairs(&[("page-visits-3", 8)]));
    assert_eq!(warnings(&logs), vec![("invalid-base64".into(), 8)]);
}

#[tokio::test]
async fn an_event_of_the_wrong_shape_fails_the_whole_call() {
    let err = invoke(fixture("bad/kafka-wrong-shape.json"), &app(OnError::Fail))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`records` must be an object keyed by \"<topic>-<partition>\", not an array"),
        "{err}"
    );
    for payload in [json!({"Records": []}), json!("text"), json!(null)] {
        let err = invoke(payload, &app(OnError::Fail)).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not a Kafka event source mapping batch"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn an_empty_batch_succeeds_without_touching_the_broker() {
    let mut no_topic = app(OnError::Fail);
    no_topic.config.response_topic = None;
    let started = std::time::Instant::now();
    let response = batch(fixture("bad/kafka-empty-batch.json"), &no_topic).await;
    assert_eq!(
        serde_json::to_value(response).unwrap(),
        json!({"batchItemFailures": []})
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(300));
    let Answer::Connector(results) = invoke(json!([]), &no_topic).await.unwrap() else {
        panic!()
    };
    assert!(results.is_empty());
}

#[tokio::test]
async fn a_batch_without_a_response_topic_is_a_configuration_error() {
    let mut no_topic = app(OnError::Fail);
    no_topic.config.response_topic = None;
    let err = invoke(fixture("kafka-msk.json"), &no_topic)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("RESPONSE_TOPIC must be set"),
        "{err}"
    );
}

#[tokio::test]
async fn a_record_too_large_to_publish_is_a_bad_record() {
    let mut config = KafkaConfig::plaintext(vec!["127.0.0.1:1".into()]);
    config.max_message_bytes = 1024;
    let limited = app_with(OnError::Log, KafkaProducer::new(config));
    let big = json!({"url": "https://shop.example/", "padding": "x".repeat(1000)}).to_string();
    let event = json!({"eventSource": "aws:kafka", "records": {"t-0": [
        {"topic": "t", "partition": 0, "offset": 3, "value": base64_of(big.as_bytes())}
    ]}});
    let (answer, logs) = capture(invoke(event, &limited)).await;
    assert_eq!(
        answer.unwrap(),
        Answer::Batch(KafkaEventResponse::default())
    );
    assert_eq!(warnings(&logs), vec![("too-large".into(), 3)]);
}

const SECRET: &str = "hunter2-SECRET";

/// Values that serde_json's messages would quote: a JSON string where an
/// object belongs, and an object with the secret in a syntax error's way.
fn values_with_secret() -> [(String, &'static str, &'static str); 2] {
    [
        (
            format!("\"{SECRET}\""),
            "not-a-page-visit",
            "not a JSON object: unexpected JSON (data error at line 1, column 16)",
        ),
        (
            format!("{{\"url\": \"/\", \"pin\": {SECRET}}}"),
            "not-json",
            "invalid JSON (syntax error at line 1, column 21)",
        ),
    ]
}

#[tokio::test]
async fn a_bad_value_is_not_quoted_in_log_lines() {
    for (value, kind, reason) in values_with_secret() {
        let event = json!({"eventSource": "aws:kafka", "records": {"t-0": [
            {"topic": "t", "partition": 0, "offset": 3, "value": base64_of(value.as_bytes())}
        ]}});
        let (answer, logs) = capture(invoke(event, &app(OnError::Log))).await;
        assert_eq!(
            answer.unwrap(),
            Answer::Batch(KafkaEventResponse::default())
        );
        assert_eq!(warnings(&logs), vec![(kind.into(), 3)]);
        assert!(!logs.text().contains(SECRET), "{}", logs.text());
        let line = logs
            .lines()
            .into_iter()
            .find(|l| l["message"] == "record set aside")
            .unwrap();
        assert_eq!(line["reason"], reason);
    }
}

#[test]
fn a_bad_value_is_not_quoted_in_dead_letter_headers() {
    for (value, kind, reason) in values_with_secret() {
        let event = json!({"eventSource": "aws:kafka", "records": {"t-0": [
            {"topic": "t", "partition": 0, "offset": 3, "value": base64_of(value.as_bytes())}
        ]}});
        let Payload::Batch(batch) = Payload::from_value(&event) else {
            panic!("not a batch")
        };
        let partitions = source::partitions(&batch).unwrap();
        let record = &partitions[0][0];
        let bad = tagged_record(record, &app(OnError::Dlq).tagger, "t").unwrap_err();
        let out = dead_letter(record, &bad, &unreachable());
        assert_eq!(out.headers[ERROR_KIND_HEADER], kind.as_bytes());
        assert_eq!(out.headers[ERROR_MESSAGE_HEADER], reason.as_bytes());
        for (name, header) in &out.headers {
            assert!(
                !String::from_utf8_lossy(header).contains(SECRET),
                "header {name}"
            );
        }
        // The dead letter's value is the record as it came, secret and all:
        // that is what a replay needs.
        assert_eq!(out.value.as_deref(), Some(value.as_bytes()));
    }
}

#[tokio::test]
async fn a_bad_connector_value_is_not_quoted_in_the_answer_or_the_log() {
    let items = json!([{"payload": {"topic": "t", "partition": 0, "offset": 1,
                                    "value": format!("{{\"url\": \"/\", \"pin\": {SECRET}}}")}}]);
    let (answer, logs) = capture(invoke(items, &app(OnError::Log))).await;
    let Answer::Connector(results) = answer.unwrap() else {
        panic!("a connector answer expected")
    };
    assert_eq!(results[0]["error"]["kind"], "not-json");
    assert_eq!(
        results[0]["error"]["message"],
        "invalid JSON (syntax error at line 1, column 21)"
    );
    assert!(!logs.text().contains(SECRET), "{}", logs.text());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_local_runtimes_timeout_in_the_deadline_header_still_leaves_time_to_publish() {
    let mut local = Context::default();
    local.deadline = 600_000;
    let budget = stop_by(&local, PUBLISH_MARGIN) - Instant::now();
    assert!(budget > Duration::from_secs(20), "{budget:?}");
    let short = stop_by(&short_context(), PUBLISH_MARGIN) - Instant::now();
    assert!(short < Duration::from_secs(1), "{short:?}");
}

#[test]
fn tagged_records_keep_key_headers_and_timestamp_and_add_the_source_position() {
    let batch = fixture_batch("kafka-negative-header.json");
    let partitions = source::partitions(&batch).unwrap();
    let record = &partitions[0][0];
    let out = tagged_record(
        record,
        &app(OnError::Fail).tagger,
        "2024-07-28T16:19:51.238Z",
    )
    .unwrap();
    assert_eq!(out.key.as_deref(), Some(&b"v-2001"[..]));
    assert_eq!(out.headers["region"], "Zürich".as_bytes());
    assert_eq!(out.headers["binary"], vec![255, 128, 0, 127]);
    assert_eq!(out.headers[SOURCE_TOPIC_HEADER], b"page-visits");
    assert_eq!(out.headers[SOURCE_PARTITION_HEADER], b"2");
    assert_eq!(out.headers[SOURCE_OFFSET_HEADER], b"40");
    assert_eq!(
        out.timestamp.map(|t| t.timestamp_millis()),
        Some(1_722_183_591_278)
    );
    let value: Value = serde_json::from_slice(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(
        value["tags"],
        json!(["channel:direct", "device:desktop", "lang:de"])
    );
    assert_eq!(value["tagged_at"], "2024-07-28T16:19:51.238Z");
}

#[test]
fn dead_letters_carry_the_raw_record_and_error_headers() {
    let batch = fixture_batch("kafka-mixed-batch.json");
    let partitions = source::partitions(&batch).unwrap();
    let record = &partitions[2][1];
    let bad = tagged_record(record, &app(OnError::Dlq).tagger, "t").unwrap_err();
    let out = dead_letter(record, &bad, &unreachable());
    assert_eq!(out.key.as_deref(), Some(&b"v-1008"[..]));
    assert_eq!(out.value.as_deref(), Some(&b"not*base64!"[..]));
    assert_eq!(out.headers[ERROR_KIND_HEADER], b"invalid-base64");
    assert!(String::from_utf8_lossy(&out.headers[ERROR_MESSAGE_HEADER])
        .starts_with("the value is not base64"));
    assert_eq!(out.headers[SOURCE_OFFSET_HEADER], b"51");
}

#[test]
fn the_kafka_fixtures_match_the_aws_lambda_events_model() {
    use aws_lambda_events::event::kafka::KafkaEvent;
    for name in [
        "kafka-msk.json",
        "kafka-self-managed.json",
        "kafka-negative-header.json",
        "kafka-mixed-batch.json",
    ] {
        let value = fixture(name);
        // (No serialize round trip: the model writes millisecond timestamps
        // through a float and can come back a millisecond off.)
        let model: KafkaEvent = serde_json::from_value(value.clone()).unwrap();
        // Our lenient reading gives the same bytes as the typed model.
        let batch = fixture_batch(name);
        for records in source::partitions(&batch).unwrap() {
            for record in records {
                let typed = &model.records[&format!("{}-{}", record.topic, record.partition)]
                    .iter()
                    .find(|r| r.offset == record.offset)
                    .unwrap();
                let expected: Vec<(String, Vec<u8>)> = typed
                    .headers
                    .iter()
                    .flat_map(|h| {
                        h.iter()
                            .map(|(k, v)| (k.clone(), v.iter().map(|b| *b as u8).collect()))
                    })
                    .collect();
                assert_eq!(record.headers().unwrap(), expected, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn without_partial_batch_responses_an_unpublished_record_fails_the_invocation() {
    let mut app = app(OnError::Log);
    app.config.partial_batch_responses = false;
    let error = invoke(fixture("kafka-mixed-batch.json"), &app)
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "Kafka.Unpublished");
    assert!(
        error.message().contains("4 record(s)") && error.message().contains("page-visits-0@20"),
        "{error}"
    );
}

#[tokio::test]
async fn without_partial_batch_responses_a_bad_record_under_fail_fails_the_invocation() {
    let mut app = app(OnError::Fail);
    app.config.partial_batch_responses = false;
    let error = invoke(fixture("bad/kafka-not-json.json"), &app)
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "Kafka.Unpublished");
}

/// The dead letter the batch path builds for one record with `value`.
fn batch_dead_letter(value: &[u8], producer: &KafkaProducer) -> (BadRecord, OutgoingRecord) {
    let event = json!({"eventSource": "aws:kafka", "records": {"t-0": [
        {"topic": "t", "partition": 0, "offset": 3, "key": base64_of(b"v-1"),
         "value": base64_of(value)}
    ]}});
    let Payload::Batch(batch) = Payload::from_value(&event) else {
        panic!("not a batch")
    };
    let partitions = source::partitions(&batch).unwrap();
    let record = &partitions[0][0];
    let bad = tagged_record(record, &app(OnError::Dlq).tagger, "t").unwrap_err();
    let out = dead_letter(record, &bad, producer);
    (bad, out)
}

#[test]
fn a_600_kb_bad_value_makes_a_dead_letter_with_small_headers_that_never_quote_it() {
    let producer = unreachable();
    let huge = format!("{SECRET}{}", "x".repeat(600 * 1024));
    for value in [
        format!("\"{huge}\""),
        format!("{{\"url\": \"/\", \"pin\": \"{huge}}}"),
    ] {
        let (bad, out) = batch_dead_letter(value.as_bytes(), &producer);
        assert!(!bad.message.contains(SECRET));
        let header_bytes: usize = out.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(header_bytes < 1024, "{header_bytes}");
        for (name, header) in &out.headers {
            assert!(
                !String::from_utf8_lossy(header).contains(SECRET),
                "header {name}"
            );
        }
        // Small headers leave the record itself room to go as it came.
        assert!(producer.fits(&out));
        assert_eq!(out.value.as_deref(), Some(value.as_bytes()));
    }
}

#[test]
fn a_record_too_large_to_dead_letter_becomes_a_stub_that_fits() {
    use lambda_stream_kit::pipeline::dead_letter::{LEFT_OUT_HEADER, ORIGINAL_BYTES_HEADER};
    let producer = unreachable();
    let value = vec![b'{'; 1_500_000];
    let (_, out) = batch_dead_letter(&value, &producer);
    assert!(producer.fits(&out));
    assert_eq!(out.value, None);
    assert_eq!(out.key.as_deref(), Some(&b"v-1"[..]));
    assert_eq!(out.headers[SOURCE_TOPIC_HEADER], b"t");
    assert_eq!(out.headers[SOURCE_PARTITION_HEADER], b"0");
    assert_eq!(out.headers[SOURCE_OFFSET_HEADER], b"3");
    assert_eq!(out.headers[ERROR_KIND_HEADER], b"not-json");
    assert_eq!(out.headers[LEFT_OUT_HEADER], b"value");
    let original: usize = String::from_utf8_lossy(&out.headers[ORIGINAL_BYTES_HEADER])
        .parse()
        .unwrap();
    assert!(original > 1_500_000, "{original}");
}

#[tokio::test]
async fn under_dlq_a_record_too_large_to_dead_letter_is_sent_as_a_stub() {
    // Through the whole handler: the stub is what the producer is given,
    // so the record is reported (the broker is unreachable), not refused
    // as too large, which no retry could fix.
    let value = vec![b'{'; 1_500_000];
    let event = json!({"eventSource": "aws:kafka", "records": {"t-0": [
        {"topic": "t", "partition": 0, "offset": 3, "value": base64_of(&value)}
    ]}});
    let (response, logs) = capture(batch(event, &app(OnError::Dlq))).await;
    assert_eq!(failures(&response), pairs(&[("t-0", 3)]));
    assert!(!logs.text().contains("over the"), "{}", logs.text());
}

/// The batch against an in-memory sink: where every record of the mixed
/// fixture lands under each `ON_ERROR`, with no broker.
#[tokio::test]
async fn in_memory_every_record_lands_where_on_error_says() {
    let good = [20, 22, 31, 50];
    let bad = [21, 30, 51];
    let offsets = |records: Vec<OutgoingRecord>| -> Vec<i64> {
        let mut offsets: Vec<i64> = records
            .iter()
            .map(|r| {
                String::from_utf8_lossy(&r.headers[SOURCE_OFFSET_HEADER])
                    .parse()
                    .unwrap()
            })
            .collect();
        offsets.sort_unstable();
        offsets
    };

    let dlq = app_with(OnError::Dlq, MemorySink::new());
    let response = invoke(fixture("kafka-mixed-batch.json"), &dlq)
        .await
        .unwrap();
    assert_eq!(response, Answer::Batch(KafkaEventResponse::default()));
    assert_eq!(offsets(dlq.sink.records("tagged-visits")), good);
    assert_eq!(offsets(dlq.sink.records("bad-visits")), bad);

    let log = app_with(OnError::Log, MemorySink::new());
    let response = invoke(fixture("kafka-mixed-batch.json"), &log)
        .await
        .unwrap();
    assert_eq!(response, Answer::Batch(KafkaEventResponse::default()));
    assert_eq!(offsets(log.sink.records("tagged-visits")), good);

    let fail = app_with(OnError::Fail, MemorySink::new());
    let Answer::Batch(response) = invoke(fixture("kafka-mixed-batch.json"), &fail)
        .await
        .unwrap()
    else {
        panic!("a batch answer")
    };
    // Each bad record and what follows it in its partition come back.
    assert_eq!(
        failures(&response),
        pairs(&[
            ("page-visits-0", 21),
            ("page-visits-0", 22),
            ("page-visits-1", 30),
            ("page-visits-1", 31),
            ("page-visits-2", 51)
        ])
    );
    assert_eq!(offsets(fail.sink.records("tagged-visits")), [20, 50]);
}

#[tokio::test]
async fn in_memory_a_tagged_event_the_broker_refuses_is_dead_lettered_as_its_source_record() {
    let app = app_with(OnError::Dlq, MemorySink::new());
    // Every tagged event carries its tags; the broker refuses the mobile one.
    app.sink
        .refuse_values_containing("tagged-visits", b"device:mobile");
    let response = invoke(fixture("kafka-msk.json"), &app).await.unwrap();
    assert_eq!(response, Answer::Batch(KafkaEventResponse::default()));
    let letters = app.sink.records("bad-visits");
    assert!(!letters.is_empty(), "a mobile visit in the fixture");
    for letter in &letters {
        assert_eq!(letter.headers[ERROR_KIND_HEADER], b"rejected-by-broker");
        // The source record as it came, not the tagged event.
        let value = String::from_utf8_lossy(letter.value.as_deref().unwrap_or_default());
        assert!(!value.contains("device:mobile"), "{value}");
    }
}

#[tokio::test]
async fn in_memory_an_outage_of_the_response_topic_lists_every_record_and_publishes_none() {
    let app = app_with(OnError::Dlq, MemorySink::new());
    app.sink.fail_topic(
        "tagged-visits",
        lambda_stream_kit::kafka::ProduceError::Timeout { step: "produce" },
    );
    let Answer::Batch(response) = invoke(fixture("kafka-mixed-batch.json"), &app)
        .await
        .unwrap()
    else {
        panic!("a batch answer")
    };
    // The good records are listed; the bad ones are on the error topic.
    assert_eq!(
        failures(&response),
        pairs(&[
            ("page-visits-0", 20),
            ("page-visits-0", 22),
            ("page-visits-1", 31),
            ("page-visits-2", 50)
        ])
    );
    assert_eq!(app.sink.records("bad-visits").len(), 3);
}

#[tokio::test]
async fn a_source_traceparent_is_carried_and_records_without_one_get_the_invocations() {
    let upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut event = fixture("kafka-mixed-batch.json");
    event["records"]["page-visits-0"][0]["headers"] =
        json!([{ "traceparent": upstream.as_bytes() }]);
    let app = app_with(OnError::Dlq, MemorySink::new());
    let mut context = short_context();
    context.xray_trace_id =
        Some("Root=1-6745f2a0-0c1d2e3f4a5b6c7d8e9f0a1b;Parent=1a2b3c4d5e6f7a8b;Sampled=0".into());
    let ours = b"00-6745f2a00c1d2e3f4a5b6c7d8e9f0a1b-1a2b3c4d5e6f7a8b-00";
    function_handler(&app, LambdaEvent::new(Payload::from_value(&event), context))
        .await
        .unwrap();
    let trace_of = |topic: &str, offset: &[u8]| {
        app.sink
            .records(topic)
            .into_iter()
            .find(|r| r.headers.get(SOURCE_OFFSET_HEADER).map(Vec::as_slice) == Some(offset))
            .and_then(|r| r.headers.get("traceparent").cloned())
    };
    assert_eq!(
        trace_of("tagged-visits", b"20"),
        Some(upstream.as_bytes().to_vec())
    );
    assert_eq!(trace_of("tagged-visits", b"22"), Some(ours.to_vec()));
    // Offset 21 is not JSON: its dead letter carries the invocation's trace.
    assert_eq!(trace_of("bad-visits", b"21"), Some(ours.to_vec()));
}
