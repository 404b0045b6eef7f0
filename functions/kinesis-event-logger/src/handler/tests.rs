//! Handler tests: every fixture in `events/` with the `kinesis-` prefix, the
//! documented outcomes of the bad ones, truncation and configuration.

use base64::Engine as _;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

use super::*;
use crate::config::{LOG_MAX_LINES_PER_AGGREGATE, LOG_MAX_LINES_PER_INVOCATION};
use crate::kpl::encode;
use lambda_stream_kit::config::{ConfigError, Env};
use lambda_stream_kit::telemetry::capture;

const SEQ: [&str; 4] = [
    "49590338271490256608559692538361571095921575989136588898",
    "49590338271490256608559692540925702759324208523137515618",
    "49590338271490256608559692541050236470893418048765935714",
    "49590338271490256608559692541174770182462627574394355810",
];
const SHARD: &str = "shardId-000000000006";
const JSON_DATA: &str =
    r#"{"orderId":"o-1001","amount":42.5,"items":[{"sku":"A-1","qty":2}],"paid":true}"#;
const BINARY_DATA: [u8; 14] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0xFF, 0xD8,
];
const EXPLICIT_HASH_KEY: &str = "170141183460469231731687303715884105728";

/// The user records inside `events/kinesis-kpl-aggregated.json`.
fn kpl_entries() -> Vec<encode::Entry<'static>> {
    vec![
        ("user-42", None, b"Hello from the KPL"),
        ("user-42", None, br#"{"event":"click","page":"/home"}"#),
        (
            "user-7",
            Some(EXPLICIT_HASH_KEY),
            b"\x00\x01\x02\xFF\xFEbinary",
        ),
    ]
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `event` as the runtime hands it to the handler: its text read into the
/// batch type.
fn batch_of(event: &Value) -> KinesisBatch {
    serde_json::from_str(&event.to_string()).unwrap_or_else(|e| panic!("{e}: {event}"))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Runs the handler on `event` and returns its answer and every log line.
async fn invoke(
    event: Value,
    config: &Config,
) -> (Result<KinesisEventResponse, FunctionError>, Vec<Value>) {
    let app = App {
        config: config.clone(),
    };
    let (result, logs) = capture(function_handler(
        &app,
        LambdaEvent::new(batch_of(&event), Context::default()),
    ))
    .await;
    (result, logs.lines())
}

/// Runs the handler and expects a successful answer.
async fn invoke_ok(event: Value) -> (Value, Vec<Value>) {
    let (result, lines) = invoke(event, &Config::default()).await;
    let response = result.unwrap_or_else(|e| panic!("handler failed: {e}"));
    (serde_json::to_value(response).unwrap(), lines)
}

/// The lines that describe record data (logged or raw).
fn record_lines(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| {
            matches!(
                l["message"].as_str(),
                Some("kinesis record" | "KPL aggregate is corrupt; logged raw")
            )
        })
        .collect()
}

fn lines_at<'a>(lines: &'a [Value], level: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["level"] == level).collect()
}

fn no_failures() -> Value {
    json!({"batchItemFailures": []})
}

fn failure(sequence_number: &str) -> Value {
    json!({"batchItemFailures": [{"itemIdentifier": sequence_number}]})
}

fn kinesis_event(records: &[(&str, &[u8])]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(seq, data)| {
            json!({
                "eventID": format!("{SHARD}:{seq}"),
                "eventSource": "aws:kinesis",
                "kinesis": {
                    "partitionKey": "pk",
                    "sequenceNumber": seq,
                    "data": b64(data),
                    "approximateArrivalTimestamp": 1545084650.987
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

// ---- configuration ----

#[test]
fn config_defaults_to_8192_bytes() {
    let config = Config::from_env(&Env::from_pairs::<&str, &str>(&[])).unwrap();
    assert_eq!(config.log_data_max_bytes, 8192);
}

#[test]
fn config_reads_log_data_max_bytes_and_allows_zero() {
    let config = Config::from_env(&Env::from_pairs(&[("LOG_DATA_MAX_BYTES", " 100 ")])).unwrap();
    assert_eq!(config.log_data_max_bytes, 100);
    let config = Config::from_env(&Env::from_pairs(&[("LOG_DATA_MAX_BYTES", "0")])).unwrap();
    assert_eq!(config.log_data_max_bytes, 0);
}

#[test]
fn config_rejects_non_numbers_and_sizes_past_the_cloudwatch_limit_naming_the_variable() {
    for value in ["lots", "-1", "262145"] {
        let err = Config::from_env(&Env::from_pairs(&[("LOG_DATA_MAX_BYTES", value)])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    name: "LOG_DATA_MAX_BYTES",
                    ..
                }
            ),
            "{value}: {err}"
        );
        assert!(err.to_string().starts_with("LOG_DATA_MAX_BYTES="), "{err}");
    }
    assert!(Config::from_env(&Env::from_pairs(&[("LOG_DATA_MAX_BYTES", "262144")])).is_ok());
}

// ---- good fixtures ----

#[tokio::test]
async fn tutorial_record_is_logged_as_text_with_its_metadata() {
    let (response, lines) = invoke_ok(fixture("kinesis-tutorial.json")).await;
    assert_eq!(response, no_failures());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1, "{lines:#?}");
    let line = records[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["partition_key"], "1");
    assert_eq!(line["sequence_number"], SEQ[0]);
    assert_eq!(line["shard_id"], SHARD);
    assert_eq!(line["approximate_arrival_time"], "2018-12-17T22:10:50.987Z");
    assert_eq!(line["size_bytes"], 23);
    assert_eq!(line["encoding"], "text");
    assert_eq!(line["data"], "Hello, Lambda CLI World");
    for absent in [
        "truncated",
        "logged_bytes",
        "sub_sequence_number",
        "explicit_hash_key",
        "kpl_error",
    ] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }
}

#[tokio::test]
async fn json_record_data_is_nested_not_escaped() {
    let event = LambdaEvent::new(
        batch_of(&fixture("kinesis-json-record.json")),
        Context::default(),
    );
    let app = App {
        config: Config::default(),
    };
    let (result, logs) = capture(function_handler(&app, event)).await;
    assert_eq!(
        serde_json::to_value(result.unwrap()).unwrap(),
        no_failures()
    );
    let lines = logs.lines();
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["encoding"], "json");
    assert_eq!(
        records[0]["data"],
        serde_json::from_str::<Value>(JSON_DATA).unwrap()
    );
    assert_eq!(records[0]["size_bytes"], JSON_DATA.len());
    // Verbatim in the line, numbers and key order included.
    assert!(
        logs.text().contains(&format!("\"data\":{JSON_DATA}")),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn binary_record_is_logged_as_base64_with_an_encoding_field() {
    let (response, lines) = invoke_ok(fixture("kinesis-binary-record.json")).await;
    assert_eq!(response, no_failures());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["encoding"], "base64");
    assert_eq!(records[0]["data"], b64(&BINARY_DATA));
    assert_eq!(records[0]["size_bytes"], BINARY_DATA.len());
}

#[tokio::test]
async fn kpl_aggregate_gives_one_line_per_user_record() {
    let (response, lines) = invoke_ok(fixture("kinesis-kpl-aggregated.json")).await;
    assert_eq!(response, no_failures());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 3, "{lines:#?}");
    for (i, line) in records.iter().enumerate() {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["sequence_number"], SEQ[0]);
        assert_eq!(line["sub_sequence_number"], i);
        assert_eq!(line["shard_id"], SHARD);
        assert_eq!(line["approximate_arrival_time"], "2018-12-17T22:10:50.987Z");
        assert_eq!(line["size_bytes"], kpl_entries()[i].2.len());
    }
    assert_eq!(records[0]["partition_key"], "user-42");
    assert_eq!(records[0]["encoding"], "text");
    assert_eq!(records[0]["data"], "Hello from the KPL");
    assert_eq!(records[1]["partition_key"], "user-42");
    assert_eq!(records[1]["encoding"], "json");
    assert_eq!(
        records[1]["data"],
        json!({"event": "click", "page": "/home"})
    );
    assert_eq!(records[2]["partition_key"], "user-7");
    assert_eq!(records[2]["explicit_hash_key"], EXPLICIT_HASH_KEY);
    assert_eq!(records[2]["encoding"], "base64");
    assert_eq!(records[2]["data"], b64(b"\x00\x01\x02\xFF\xFEbinary"));
    assert!(records[0].get("explicit_hash_key").is_none());
}

#[test]
fn kpl_fixture_is_exactly_what_the_encoder_produces() {
    let event = fixture("kinesis-kpl-aggregated.json");
    let expected = b64(&encode::aggregate(&kpl_entries()));
    assert_eq!(
        event["Records"][0]["kinesis"]["data"], expected,
        "regenerate events/kinesis-kpl-aggregated.json (and the batch's last record) with this data"
    );
    let batch = fixture("kinesis-batch.json");
    assert_eq!(batch["Records"][3]["kinesis"]["data"], expected);
}

#[tokio::test]
async fn multi_record_batch_logs_every_record_in_order() {
    let (response, lines) = invoke_ok(fixture("kinesis-batch.json")).await;
    assert_eq!(response, no_failures());
    let records = record_lines(&lines);
    let summary: Vec<(&str, Option<u64>, &str)> = records
        .iter()
        .map(|l| {
            (
                l["sequence_number"].as_str().unwrap(),
                l["sub_sequence_number"].as_u64(),
                l["encoding"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (SEQ[0], None, "text"),
            (SEQ[1], None, "json"),
            (SEQ[2], None, "base64"),
            (SEQ[3], Some(0), "text"),
            (SEQ[3], Some(1), "json"),
            (SEQ[3], Some(2), "base64"),
        ]
    );
    assert_eq!(
        records[1]["approximate_arrival_time"],
        "2018-12-17T22:10:51.012Z"
    );
    assert_eq!(
        records[2]["approximate_arrival_time"],
        "2018-12-17T22:10:51.500Z"
    );
}

#[tokio::test]
async fn any_batch_size_works() {
    let sequence_numbers: Vec<String> = (0..1000)
        .map(|i| format!("{}", 4_959_000_000u64 + i))
        .collect();
    let datas: Vec<String> = (0..1000).map(|i| format!("message {i}")).collect();
    let records: Vec<(&str, &[u8])> = sequence_numbers
        .iter()
        .zip(&datas)
        .map(|(s, d)| (s.as_str(), d.as_bytes()))
        .collect();
    let event = kinesis_event(&records);
    let batch = batch_of(&event);
    let outcome = log_batch(&batch, &Config::default()).unwrap();
    assert_eq!(
        outcome,
        BatchOutcome {
            records: 1000,
            lines: 1000,
            failed: 0,
            not_logged: 0,
            deferred: 0,
            first_failed: None,
            reported: 0
        }
    );
    let (response, lines) = invoke_ok(event).await;
    assert_eq!(response, no_failures());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1000);
    assert_eq!(records[999]["data"], "message 999");
}

// ---- truncation ----

async fn single_line(data: &[u8], max: usize) -> Value {
    let config = Config {
        log_data_max_bytes: max,
        ..Config::default()
    };
    let (result, lines) = invoke(kinesis_event(&[(SEQ[0], data)]), &config).await;
    assert!(result.is_ok());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1, "{lines:#?}");
    records[0].clone()
}

#[tokio::test]
async fn long_text_is_truncated_at_a_character_boundary_noting_the_original_size() {
    // "é" is two bytes, so a 5-byte cut falls inside the third one.
    let line = single_line("éééé".as_bytes(), 5).await;
    assert_eq!(line["data"], "éé");
    assert_eq!(line["encoding"], "text");
    assert_eq!(line["truncated"], true);
    assert_eq!(line["logged_bytes"], 4);
    assert_eq!(line["size_bytes"], 8);
}

#[tokio::test]
async fn data_of_exactly_the_limit_is_not_truncated() {
    let line = single_line(b"12345", 5).await;
    assert_eq!(line["data"], 12345);
    assert_eq!(line["encoding"], "json");
    assert!(line.get("truncated").is_none());
}

#[tokio::test]
async fn truncated_json_is_logged_as_text() {
    let line = single_line(JSON_DATA.as_bytes(), 10).await;
    assert_eq!(line["encoding"], "text");
    assert_eq!(line["data"], &JSON_DATA[..10]);
    assert_eq!(line["truncated"], true);
    assert_eq!(line["size_bytes"], JSON_DATA.len());
}

#[tokio::test]
async fn truncated_binary_is_the_base64_of_the_first_bytes() {
    let line = single_line(&BINARY_DATA, 4).await;
    assert_eq!(line["encoding"], "base64");
    assert_eq!(line["data"], b64(&BINARY_DATA[..4]));
    assert_eq!(line["logged_bytes"], 4);
    assert_eq!(line["size_bytes"], BINARY_DATA.len());
}

#[tokio::test]
async fn a_zero_limit_logs_metadata_only() {
    let line = single_line(b"secret", 0).await;
    assert_eq!(line["data"], "");
    assert_eq!(line["truncated"], true);
    assert_eq!(line["logged_bytes"], 0);
    assert_eq!(line["size_bytes"], 6);
}

#[tokio::test]
async fn kpl_user_records_are_truncated_one_by_one() {
    let aggregate = encode::aggregate(&[("k", None, b"abcdefgh"), ("k", None, b"xy")]);
    let config = Config {
        log_data_max_bytes: 4,
        ..Config::default()
    };
    let (result, lines) = invoke(kinesis_event(&[(SEQ[0], &aggregate)]), &config).await;
    assert!(result.is_ok());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["data"], "abcd");
    assert_eq!(records[0]["truncated"], true);
    assert_eq!(records[1]["data"], "xy");
    assert!(records[1].get("truncated").is_none());
}

// ---- bad fixtures ----

#[tokio::test]
async fn invalid_base64_is_reported_as_the_batch_item_failure_and_the_rest_still_logged() {
    let (response, lines) = invoke_ok(fixture("bad/kinesis-invalid-base64.json")).await;
    assert_eq!(response, failure(SEQ[1]));
    let records = record_lines(&lines);
    let logged: Vec<&Value> = records.iter().map(|l| &l["data"]).collect();
    assert_eq!(logged, vec!["first", "third"]);
    let errors = lines_at(&lines, "ERROR");
    assert_eq!(errors.len(), 1, "{lines:#?}");
    assert_eq!(errors[0]["sequence_number"], SEQ[1]);
    assert_eq!(errors[0]["index"], 1);
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid base64"),
        "{}",
        errors[0]
    );
}

#[tokio::test]
async fn missing_fields_report_the_first_unparseable_record_using_the_event_id_when_needed() {
    let (response, lines) = invoke_ok(fixture("bad/kinesis-missing-fields.json")).await;
    // Record 1 lacks kinesis.sequenceNumber; its eventID still names it.
    assert_eq!(response, failure(SEQ[1]));
    let errors = lines_at(&lines, "ERROR");
    let reasons: Vec<&str> = errors
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "kinesis.sequenceNumber is missing or not a string",
            "kinesis.data is missing or not a string"
        ]
    );
    assert_eq!(errors[1]["sequence_number"], SEQ[2]);
    // Optional fields may be absent without failing the record.
    let records = record_lines(&lines);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["data"], "complete");
    let sparse = records[1];
    assert_eq!(sparse["data"], "only the essentials");
    assert_eq!(sparse["sequence_number"], SEQ[3]);
    for absent in ["partition_key", "approximate_arrival_time", "shard_id"] {
        assert!(sparse.get(absent).is_none(), "{absent} in {sparse}");
    }
}

#[tokio::test]
async fn a_record_without_any_sequence_number_fails_the_whole_batch() {
    let event = fixture("bad/kinesis-unidentifiable-record.json");
    let err = log_batch(&batch_of(&event), &Config::default()).unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::Unidentifiable {
                index: 0,
                reason: RecordError::MissingField("sequenceNumber")
            }
        ),
        "{err}"
    );
    let (result, lines) = invoke(event, &Config::default()).await;
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("no sequence number to report"),
        "{err}"
    );
    // The readable record is still logged before the batch is failed.
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["data"], "named");
    assert!(lines_at(&lines, "ERROR")
        .iter()
        .any(|l| l["message"] == "batch failed"));
}

#[tokio::test]
async fn a_later_record_without_a_sequence_number_is_covered_by_the_first_failure() {
    let mut event = kinesis_event(&[(SEQ[0], b"ok"), (SEQ[1], b"bad"), (SEQ[2], b"unnamed")]);
    event["Records"][1]["kinesis"]["data"] = json!("%%%");
    let unnamed = &mut event["Records"][2];
    unnamed.as_object_mut().unwrap().remove("eventID");
    unnamed["kinesis"]
        .as_object_mut()
        .unwrap()
        .remove("sequenceNumber");
    let (response, lines) = invoke_ok(event).await;
    assert_eq!(response, failure(SEQ[1]));
    assert_eq!(lines_at(&lines, "ERROR").len(), 2);
}

#[tokio::test]
async fn an_sqs_event_is_rejected_as_a_whole() {
    let event = fixture("bad/kinesis-wrong-shape.json");
    let err = log_batch(&batch_of(&event), &Config::default()).unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::Unidentifiable {
                index: 0,
                reason: RecordError::MissingKinesis
            }
        ),
        "{err}"
    );
    let (result, lines) = invoke(event, &Config::default()).await;
    assert!(result.is_err());
    assert!(record_lines(&lines).is_empty());
    assert!(lines_at(&lines, "ERROR")[0]["reason"] == "record has no kinesis object");
}

#[tokio::test]
async fn an_event_without_records_is_rejected_as_a_whole() {
    let event = fixture("bad/kinesis-not-a-batch.json");
    assert!(matches!(
        log_batch(&batch_of(&event), &Config::default()),
        Err(BatchError::NotABatch)
    ));
    let (result, lines) = invoke(event, &Config::default()).await;
    assert!(result.unwrap_err().to_string().contains("no Records array"));
    assert_eq!(lines_at(&lines, "ERROR").len(), 1);
}

#[tokio::test]
async fn non_utf8_data_is_logged_as_base64_and_is_not_a_failure() {
    let event = fixture("bad/kinesis-non-utf8.json");
    let raw = event["Records"][0]["kinesis"]["data"].clone();
    let (response, lines) = invoke_ok(event).await;
    assert_eq!(response, no_failures());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["encoding"], "base64");
    assert_eq!(records[0]["data"], raw);
    assert_eq!(records[0]["size_bytes"], 9);
    assert!(lines_at(&lines, "ERROR").is_empty() && lines_at(&lines, "WARN").is_empty());
}

#[tokio::test]
async fn a_truncated_kpl_aggregate_is_logged_raw_with_a_warning_and_is_not_a_failure() {
    let event = fixture("bad/kinesis-truncated-kpl.json");
    let raw = event["Records"][0]["kinesis"]["data"].clone();
    let (response, lines) = invoke_ok(event).await;
    assert_eq!(response, no_failures());
    let records = record_lines(&lines);
    assert_eq!(records.len(), 1, "{lines:#?}");
    let line = records[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(
        line["kpl_error"],
        "MD5 trailer does not match the protobuf body"
    );
    assert_eq!(line["encoding"], "base64");
    assert_eq!(line["data"], raw);
    assert_eq!(line["partition_key"], "user-42");
    assert_eq!(line["sequence_number"], SEQ[0]);
    assert!(line.get("sub_sequence_number").is_none());
}

#[tokio::test]
async fn a_kpl_aggregate_with_a_bad_index_is_logged_raw_with_a_warning() {
    let mut message = Vec::new();
    encode::key(&mut message, 1, 0);
    encode::varint(&mut message, 5);
    encode::len_field(&mut message, 3, b"x");
    let mut body = Vec::new();
    encode::len_field(&mut body, 1, b"pk");
    encode::len_field(&mut body, 3, &message);
    let data = encode::wrap(&body);
    let (response, lines) = invoke_ok(kinesis_event(&[(SEQ[0], &data)])).await;
    assert_eq!(response, no_failures());
    let warnings = lines_at(&lines, "WARN");
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0]["kpl_error"],
        "user record 0 has partition key index 5, but the table has 1 entries"
    );
    assert_eq!(warnings[0]["data"], b64(&data));
}

#[tokio::test]
async fn an_empty_batch_succeeds_and_logs_no_record() {
    let (response, lines) = invoke_ok(fixture("bad/kinesis-empty-batch.json")).await;
    assert_eq!(response, no_failures());
    assert!(record_lines(&lines).is_empty());
    assert!(lines.iter().all(|l| l["level"] == "DEBUG"), "{lines:#?}");
}

// ---- pieces ----

#[test]
fn json_detection_accepts_any_json_value_and_nothing_else() {
    // Out-of-range numbers are still JSON by the grammar; they are kept verbatim.
    for json in [
        "{}",
        "[1, 2]",
        " {\"a\": null} ",
        "42",
        "-1.5e3",
        "\"quoted\"",
        "true",
        "null",
        "1e99999",
    ] {
        assert!(is_json(json), "{json}");
    }
    for text in [
        "",
        "Hello, Lambda CLI World",
        "{broken",
        "42 43",
        "nul",
        "[1,]",
        "01",
    ] {
        assert!(!is_json(text), "{text}");
    }
}

#[test]
fn arrival_times_render_as_rfc3339_in_utc() {
    let render = |s: f64| Rfc3339Millis::from_epoch_seconds(s).map(|t| t.to_string());
    assert_eq!(render(0.0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
    assert_eq!(
        render(1428537600.0).as_deref(),
        Some("2015-04-09T00:00:00.000Z")
    );
    assert_eq!(
        render(951782400.5).as_deref(),
        Some("2000-02-29T00:00:00.500Z")
    );
    assert_eq!(
        render(1709251199.999).as_deref(),
        Some("2024-02-29T23:59:59.999Z")
    );
    assert_eq!(
        render(4102444800.0).as_deref(),
        Some("2100-01-01T00:00:00.000Z")
    );
    assert_eq!(
        render(253402300799.999).as_deref(),
        Some("9999-12-31T23:59:59.999Z")
    );
    for implausible in [-1.0, f64::NAN, f64::INFINITY, 253402300800.0] {
        assert_eq!(render(implausible), None, "{implausible}");
    }
}

#[tokio::test]
async fn a_failed_record_answers_with_the_documented_response_json() {
    let mut event = kinesis_event(&[(SEQ[0], b"ok"), (SEQ[1], b"ok")]);
    event["Records"][1]["kinesis"]["data"] = json!(17);
    let (response, _) = invoke_ok(event).await;
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": SEQ[1]}]})
    );
}

// ---- bounds: line caps and the deadline ----

/// An aggregate of `n` tiny user records.
fn flood_aggregate(n: usize) -> Vec<u8> {
    let entries: Vec<encode::Entry<'_>> = (0..n).map(|_| ("k", None, &b"x"[..])).collect();
    encode::aggregate(&entries)
}

#[tokio::test]
async fn a_flood_aggregate_logs_up_to_its_cap_and_one_summary_line() {
    let aggregate = flood_aggregate(5_000);
    let config = Config {
        max_lines_per_aggregate: 100,
        ..Config::default()
    };
    let (result, lines) = invoke(kinesis_event(&[(SEQ[0], &aggregate)]), &config).await;
    let response = serde_json::to_value(result.unwrap()).unwrap();
    assert_eq!(response, no_failures());
    assert_eq!(record_lines(&lines).len(), 100);
    let summary: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "KPL aggregate partly logged")
        .collect();
    assert_eq!(summary.len(), 1, "{lines:#?}");
    assert_eq!(summary[0]["user_records"], 5_000);
    assert_eq!(summary[0]["logged"], 100);
    assert_eq!(summary[0]["not_logged"], 4_900);
    assert_eq!(summary[0]["sequence_number"], SEQ[0]);
}

#[tokio::test]
async fn the_invocation_cap_holds_back_the_rest_with_a_warning_naming_them() {
    let aggregate = flood_aggregate(50);
    let event = kinesis_event(&[
        (SEQ[0], &aggregate),
        (SEQ[1], &aggregate),
        (SEQ[2], &aggregate),
        (SEQ[3], b"plain"),
    ]);
    let config = Config {
        max_lines_per_invocation: 120,
        ..Config::default()
    };
    let (result, lines) = invoke(event, &config).await;
    assert_eq!(
        serde_json::to_value(result.unwrap()).unwrap(),
        no_failures()
    );
    assert_eq!(record_lines(&lines).len(), 120);
    let warning: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("log line cap reached")
        })
        .collect();
    assert_eq!(warning.len(), 1, "{lines:#?}");
    assert_eq!(warning[0]["level"], "WARN");
    // 30 user records of the third aggregate and the plain record.
    assert_eq!(warning[0]["not_logged"], 31);
    assert_eq!(warning[0]["first_sequence_number"], SEQ[2]);
    assert_eq!(warning[0]["last_sequence_number"], SEQ[3]);
}

#[test]
fn records_over_the_cap_are_still_parsed_so_a_bad_one_is_reported() {
    let mut event = kinesis_event(&[(SEQ[0], b"a"), (SEQ[1], b"b")]);
    event["Records"][1]["kinesis"]["data"] = json!("not*base64");
    let config = Config {
        max_lines_per_invocation: 1,
        ..Config::default()
    };
    let batch = batch_of(&event);
    let outcome = log_batch(&batch, &config).unwrap();
    assert_eq!(outcome.lines, 1);
    assert_eq!(outcome.first_failed.as_deref(), Some(SEQ[1]));
}

#[test]
fn a_passed_deadline_reports_the_first_unlogged_record_for_redelivery() {
    let event = kinesis_event(&[(SEQ[0], b"a"), (SEQ[1], b"b"), (SEQ[2], b"c")]);
    let passed = std::time::Instant::now();
    let batch = batch_of(&event);
    let outcome = log_batch_until(&batch, &Config::default(), Some(passed)).unwrap();
    assert_eq!(outcome.lines, 0);
    assert_eq!(outcome.deferred, 3);
    assert_eq!(outcome.first_failed.as_deref(), Some(SEQ[0]));
}

/// Emulates the stream mapping for one shard: invoke, and on a partial
/// batch response redeliver from the reported record, as Lambda does.
/// Every record must be logged in the end, the deferred ones on the retry.
#[tokio::test]
async fn deferred_records_are_logged_when_the_mapping_redelivers_them() {
    let records = [(SEQ[0], &b"a"[..]), (SEQ[1], b"b"), (SEQ[2], b"c")];
    // First invocation: the deadline has passed before the first record.
    let batch = batch_of(&kinesis_event(&records));
    let first =
        log_batch_until(&batch, &Config::default(), Some(std::time::Instant::now())).unwrap();
    let resume = first.first_failed.unwrap();
    let from = records.iter().position(|(seq, _)| *seq == resume).unwrap();
    // The redelivery, with time to spare, through the handler itself.
    let (result, lines) = invoke(kinesis_event(&records[from..]), &Config::default()).await;
    assert_eq!(
        serde_json::to_value(result.unwrap()).unwrap(),
        no_failures()
    );
    let logged: Vec<_> = record_lines(&lines)
        .iter()
        .map(|l| l["sequence_number"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, [SEQ[0], SEQ[1], SEQ[2]]);
}

#[test]
fn line_caps_come_from_the_environment_and_zero_is_refused() {
    let env = lambda_stream_kit::config::Env::from_pairs(&[
        (LOG_MAX_LINES_PER_AGGREGATE, "10"),
        (LOG_MAX_LINES_PER_INVOCATION, "20"),
    ]);
    let config = Config::from_env(&env).unwrap();
    assert_eq!(config.max_lines_per_aggregate, 10);
    assert_eq!(config.max_lines_per_invocation, 20);
    let zero = lambda_stream_kit::config::Env::from_pairs(&[(LOG_MAX_LINES_PER_AGGREGATE, "0")]);
    let err = Config::from_env(&zero).unwrap_err().to_string();
    assert!(err.contains(LOG_MAX_LINES_PER_AGGREGATE), "{err}");
}

// ---- the Kinesis mapping as template.yaml deploys it ----
//
// The mapping's settings come from the template and the mapping is
// emulated (`test_support::stream_mapping`): a flood
// aggregate is logged within its cap and every record is committed; a batch
// that meets the deadline is redelivered, not lost.

use test_support::stream_mapping::{run_shard, Invocation, StreamKind, StreamRecord, Template};

fn mapped_record(seq: usize, data: &[u8]) -> StreamRecord {
    let sequence_number = format!("4959033827149025660855969253{seq:028}");
    StreamRecord {
        sequence_number: sequence_number.clone(),
        age_at_start: std::time::Duration::ZERO,
        json: json!({
            "eventID": format!("shardId-000000000000:{sequence_number}"),
            "eventSource": "aws:kinesis",
            "kinesis": {
                "partitionKey": "pk",
                "sequenceNumber": sequence_number,
                "data": b64(data),
                "approximateArrivalTimestamp": 1763900000.5,
            }
        }),
    }
}

fn context_with(budget: std::time::Duration) -> Context {
    test_support::context_expiring_in(budget)
}

#[tokio::test]
async fn a_flood_aggregate_is_logged_within_its_cap_and_every_record_is_committed() {
    let template = Template::read(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"),
    )
    .unwrap();
    let settings = template
        .stream_mapping("KinesisEventLoggerTrigger")
        .unwrap();
    let tiny: Vec<encode::Entry<'_>> = (0..100_000).map(|_| ("k", None, &b"x"[..])).collect();
    let flood = encode::aggregate(&tiny);
    let records = vec![
        mapped_record(1, b"before"),
        mapped_record(2, &flood),
        mapped_record(3, b"after"),
    ];
    let config = Config::default();

    let (run, logs) = capture(run_shard(
        &settings,
        StreamKind::Kinesis,
        &records,
        |event: Value| {
            let config = config.clone();
            async move {
                let event = LambdaEvent::new(
                    batch_of(&event),
                    context_with(std::time::Duration::from_secs(15)),
                );
                match function_handler(&App { config }, event).await {
                    Ok(answer) => Invocation::Answered(serde_json::to_value(answer).unwrap()),
                    Err(error) => Invocation::Failed(error.to_string()),
                }
            }
        },
    ))
    .await;
    assert_eq!(run.committed.len(), 3, "every record committed");
    assert!(run.on_failure.is_empty());
    let lines = logs.lines();
    let record_lines = lines
        .iter()
        .filter(|l| l["message"] == "kinesis record")
        .count();
    assert_eq!(record_lines, 2 + config.max_lines_per_aggregate);
    let summary = lines
        .iter()
        .find(|l| l["message"] == "KPL aggregate partly logged")
        .expect("a summary line for the flood");
    assert_eq!(
        summary["not_logged"],
        100_000 - config.max_lines_per_aggregate
    );
}

#[tokio::test]
async fn a_batch_that_meets_the_deadline_is_redelivered_and_logged_in_the_end() {
    let template = Template::read(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"),
    )
    .unwrap();
    let settings = template
        .stream_mapping("KinesisEventLoggerTrigger")
        .unwrap();
    let records: Vec<StreamRecord> = (0..5).map(|i| mapped_record(i, b"data")).collect();
    let config = Config::default();
    let mut calls = 0;
    let (run, logs) = capture(run_shard(
        &settings,
        StreamKind::Kinesis,
        &records,
        |event: Value| {
            calls += 1;
            // The first invocation starts with less time than the margin.
            let budget = if calls == 1 {
                std::time::Duration::ZERO
            } else {
                std::time::Duration::from_secs(15)
            };
            let config = config.clone();
            async move {
                let event = LambdaEvent::new(batch_of(&event), context_with(budget));
                match function_handler(&App { config }, event).await {
                    Ok(answer) => Invocation::Answered(serde_json::to_value(answer).unwrap()),
                    Err(error) => Invocation::Failed(error.to_string()),
                }
            }
        },
    ))
    .await;
    assert_eq!(run.invocations, 2);
    assert_eq!(run.committed.len(), 5);
    let logged = logs
        .lines()
        .iter()
        .filter(|l| l["message"] == "kinesis record")
        .count();
    assert_eq!(logged, 5, "each record logged once, on the redelivery");
}

#[tokio::test]
async fn the_metrics_count_what_was_logged_and_what_comes_again() {
    use lambda_stream_kit::telemetry::metrics::{self, names};
    let mut event = kinesis_event(&[
        (SEQ[0], &b"first"[..]),
        (SEQ[1], &b"second"[..]),
        (SEQ[2], &b"third"[..]),
        (SEQ[3], &b"fourth"[..]),
    ]);
    // The second record's data is not base64: it and the two after it come again.
    event["Records"][1]["kinesis"]["data"] = json!("%%% not base64");
    let app = App {
        config: Config::default(),
    };
    let ((answer, _), metrics) = metrics::collect(capture(function_handler(
        &app,
        LambdaEvent::new(batch_of(&event), Context::default()),
    )))
    .await;
    let answer = serde_json::to_value(answer.unwrap()).unwrap();
    assert_eq!(answer["batchItemFailures"][0]["itemIdentifier"], SEQ[1]);
    let total = |name| metrics.total(name);
    assert_eq!(total(names::RECORDS_RECEIVED), Some(4.0));
    assert_eq!(total(names::RECORDS_LOGGED), Some(3.0));
    assert_eq!(total(names::RECORDS_FAILED), Some(1.0));
    assert_eq!(total(names::RECORDS_REPORTED), Some(3.0));

    let (failed, metrics) = metrics::collect(capture(function_handler(
        &app,
        LambdaEvent::new(
            batch_of(&fixture("bad/kinesis-unidentifiable-record.json")),
            Context::default(),
        ),
    )))
    .await;
    assert!(failed.0.is_err());
    assert_eq!(
        metrics.total(names::RECORDS_REPORTED),
        metrics.total(names::RECORDS_RECEIVED)
    );
}
