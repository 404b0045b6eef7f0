//! Handler tests: fixtures from `events/`, every whole-call error, the
//! Function-URL gate, and a property test over random batches.

use super::*;
use std::path::{Path, PathBuf};

use lambda_runtime::Context;
use lambda_stream_kit::config::Env;
use lambda_stream_kit::telemetry::capture;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::auth::SecretReader;
use crate::ip::tests::ip_url;
use test_support::HttpStub;

const SAMPLE_IP: &str = "44.201.33.239";
const DEV_TOKEN: &str = "local-dev-token";
const NO_TOKEN_CHECK: (&str, &str) = ("ENRICHER_AUTH", "none");

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

pub(crate) fn fixture(relative: &str) -> Value {
    let path = repo_path(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub(crate) fn no_secrets() -> SecretReader {
    Box::new(|_, _| Box::pin(async { Err("no secret reads in this test".to_owned()) }))
}

fn enricher(pairs: &[(&str, &str)]) -> App {
    let config = Config::from_env(&Env::from_pairs(pairs)).unwrap();
    App::new(config, no_secrets()).unwrap()
}

/// The sample's IP fixed, no token check (`ENRICHER_AUTH=none`).
fn sample_enricher() -> App {
    enricher(&[("ENRICH_IP", SAMPLE_IP), NO_TOKEN_CHECK])
}

/// An event as the runtime hands it over: raw JSON.
pub(crate) fn event(payload: &Value) -> LambdaEvent<Box<RawValue>> {
    let raw = serde_json::value::to_raw_value(payload).unwrap();
    LambdaEvent::new(raw, Context::default())
}

async fn call(enricher: &App, payload: Value) -> Result<Value, CallError> {
    handle(enricher, event(&payload))
        .await
        .map(|response| serde_json::to_value(response).unwrap())
}

/// Status and parsed JSON body of a Function-URL answer.
fn http(answer: &Value) -> (i64, Value) {
    let body = answer["body"].as_str().unwrap();
    (
        answer["statusCode"].as_i64().unwrap(),
        serde_json::from_str(body).unwrap(),
    )
}

fn results(response: &Value) -> Vec<&str> {
    response["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect()
}

/// The Function-URL fixture: a request as Lambda delivers it.
pub(crate) fn function_url_request() -> Value {
    fixture("events/cdc-function-url.json")
}

// ---- the contract sample -------------------------------------------------

#[tokio::test]
async fn the_contract_sample_gives_exactly_the_reference_response() {
    let response = call(
        &sample_enricher(),
        fixture("events/cdc-doublecloud-sample.json"),
    )
    .await
    .unwrap();
    assert_eq!(
        response,
        fixture("events/cdc-doublecloud-sample.expected.json")
    );
}

#[tokio::test]
async fn the_response_matches_the_shared_contract_files_when_present() {
    let contracts = repo_path("../shared/contracts");
    if !contracts.is_dir() {
        eprintln!(
            "{} not found: compared with the events/ copies only",
            contracts.display()
        );
        return;
    }
    let request = fixture("../shared/contracts/doublecloud-sample.req.json");
    let expected = fixture("../shared/contracts/doublecloud-sample.resp.json");
    assert_eq!(
        request,
        fixture("events/cdc-doublecloud-sample.json"),
        "events/ copy drifted"
    );
    assert_eq!(
        expected,
        fixture("events/cdc-doublecloud-sample.expected.json"),
        "events/ copy drifted"
    );
    assert_eq!(call(&sample_enricher(), request).await.unwrap(), expected);
}

#[tokio::test]
async fn commit_time_survives_exactly_in_the_serialized_text() {
    // The file's text as the runtime reads it, never through a `Value`.
    let path = repo_path("events/cdc-doublecloud-sample.json");
    let bytes = std::fs::read(&path).unwrap();
    let payload: Box<RawValue> =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .unwrap();
    let response = handle(
        &sample_enricher(),
        LambdaEvent::new(payload, Context::default()),
    )
    .await
    .unwrap();
    let text = serde_json::to_string(&response).unwrap();
    assert!(
        text.contains(r#""commitTime":1722183591238000000"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_shape_is_told_by_the_members_present_even_null_and_the_last_of_repeated_ones() {
    let raw = |text: &str| {
        LambdaEvent::new(
            RawValue::from_string(text.into()).unwrap(),
            Context::default(),
        )
    };
    let err = handle(&sample_enricher(), raw(r#"{"Records":[],"Records":null}"#))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Batch(BatchError::NotAList("null"))),
        "{err}"
    );
    let answer = handle(
        &sample_enricher(),
        raw(r#"{"records":[],"invocationId":null}"#),
    )
    .await
    .unwrap();
    assert!(matches!(answer, Response::Firehose(_)), "{answer:?}");
}

#[tokio::test]
async fn the_empty_probe_is_answered_in_kind_without_needing_the_ip() {
    // The IP URL points nowhere: the probe must not try it.
    let enricher = enricher(&[("ENRICH_IP_URL", "http://127.0.0.1:9/ip"), NO_TOKEN_CHECK]);
    let response = call(&enricher, fixture("events/cdc-probe.json"))
        .await
        .unwrap();
    assert_eq!(response, json!({"Records": []}));
}

// ---- the Function URL ------------------------------------------------------

#[tokio::test]
async fn a_function_url_call_with_the_right_token_gets_http_200_and_the_reference_body() {
    let enricher = enricher(&[("ENRICH_IP", SAMPLE_IP), ("ENRICHER_TOKEN", DEV_TOKEN)]);
    let answer = call(&enricher, fixture("events/cdc-function-url.json"))
        .await
        .unwrap();
    assert_eq!(answer["headers"]["content-type"], "application/json");
    assert_eq!(answer["isBase64Encoded"], false);
    assert_eq!(
        http(&answer),
        (200, fixture("events/cdc-doublecloud-sample.expected.json"))
    );
}

#[tokio::test]
async fn a_plain_text_function_url_body_is_accepted_too() {
    let mut request = fixture("events/cdc-function-url.json");
    request["isBase64Encoded"] = json!(false);
    request["body"] = json!(fixture("events/cdc-doublecloud-sample.json").to_string());
    let answer = call(&sample_enricher(), request).await.unwrap();
    assert_eq!(
        http(&answer),
        (200, fixture("events/cdc-doublecloud-sample.expected.json"))
    );
}

#[tokio::test]
async fn the_probe_through_the_function_url_is_answered_in_kind() {
    let mut request = fixture("events/cdc-function-url.json");
    request["isBase64Encoded"] = json!(false);
    request["body"] = json!(r#"{"Records":[]}"#);
    let answer = call(&enricher(&[("ENRICHER_TOKEN", DEV_TOKEN)]), request)
        .await
        .unwrap();
    assert_eq!(http(&answer), (200, json!({"Records": []})));
}

#[tokio::test]
async fn wrong_or_missing_tokens_get_a_bare_401_and_are_logged_without_the_token() {
    let enricher = enricher(&[("ENRICH_IP", SAMPLE_IP), ("ENRICHER_TOKEN", DEV_TOKEN)]);
    for presented in [
        Some("Bearer guess-number-one"),
        Some("Basic guess-number-one"),
        None,
    ] {
        let mut request = fixture("events/cdc-function-url.json");
        match presented {
            Some(value) => request["headers"]["authorization"] = json!(value),
            None => {
                request["headers"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorization");
            }
        }
        let (answer, logs) = capture(call(&enricher, request)).await;
        let answer = answer.unwrap();
        assert_eq!(
            http(&answer),
            (401, json!({"error": "unauthorized"})),
            "{presented:?}"
        );
        assert_eq!(answer["headers"]["www-authenticate"], "Bearer");
        let line = logs
            .lines()
            .into_iter()
            .find(|l| l["message"] == "Function URL call refused")
            .unwrap_or_else(|| panic!("no refusal logged: {}", logs.text()));
        assert_eq!(line["source_ip"], "203.0.113.10");
        assert!(!logs.text().contains("guess-number-one"), "{}", logs.text());
        assert!(!logs.text().contains(DEV_TOKEN), "{}", logs.text());
    }
}

#[tokio::test]
async fn direct_invocations_are_not_checked_for_a_token() {
    let enricher = enricher(&[("ENRICH_IP", SAMPLE_IP), ("ENRICHER_TOKEN", DEV_TOKEN)]);
    let response = call(&enricher, fixture("events/cdc-doublecloud-sample.json"))
        .await
        .unwrap();
    assert_eq!(
        response,
        fixture("events/cdc-doublecloud-sample.expected.json")
    );
}

#[tokio::test]
async fn the_token_secret_is_read_lazily_once_and_a_failed_read_is_a_503() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reads);
    let reader: SecretReader = Box::new(move |arn, _| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            assert_eq!(arn, "arn:aws:secretsmanager:eu-central-1:1:secret:enricher");
            if n == 0 {
                Err("AccessDeniedException".to_owned())
            } else {
                Ok(lambda_stream_kit::config::Secret::new(DEV_TOKEN))
            }
        })
    });
    let env = Env::from_pairs(&[
        ("ENRICH_IP", SAMPLE_IP),
        (
            "ENRICHER_TOKEN_SECRET_ARN",
            "arn:aws:secretsmanager:eu-central-1:1:secret:enricher",
        ),
    ]);
    let enricher = App::new(Config::from_env(&env).unwrap(), reader).unwrap();

    call(&enricher, fixture("events/cdc-probe.json"))
        .await
        .unwrap();
    assert_eq!(
        reads.load(Ordering::SeqCst),
        0,
        "direct calls never read the secret"
    );

    let answer = call(&enricher, fixture("events/cdc-function-url.json"))
        .await
        .unwrap();
    assert_eq!(
        http(&answer),
        (503, json!({"error": "service unavailable"}))
    );
    for _ in 0..2 {
        let answer = call(&enricher, fixture("events/cdc-function-url.json"))
            .await
            .unwrap();
        assert_eq!(http(&answer).0, 200);
    }
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "one failed read, then one cached"
    );
}

// ---- whole-call errors ---------------------------------------------------

#[tokio::test]
async fn a_function_url_body_that_is_not_json_is_an_http_500_with_a_short_error() {
    let answer = call(
        &sample_enricher(),
        fixture("events/bad/cdc-invalid-json-body.json"),
    )
    .await
    .unwrap();
    let (status, body) = http(&answer);
    assert_eq!(status, 500);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("request body is not JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn a_function_url_body_that_is_not_base64_or_is_missing_is_an_http_500() {
    let mut request = fixture("events/cdc-function-url.json");
    request["body"] = json!("%%%");
    let answer = call(&sample_enricher(), request.clone()).await.unwrap();
    assert_eq!(http(&answer).0, 500);
    request.as_object_mut().unwrap().remove("body");
    let answer = call(&sample_enricher(), request).await.unwrap();
    assert_eq!(
        http(&answer),
        (500, json!({"error": "request body is empty"}))
    );
}

#[tokio::test]
async fn records_null_is_a_whole_call_error_directly_and_an_http_500_through_the_url() {
    let err = call(
        &sample_enricher(),
        fixture("events/bad/cdc-records-null.json"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CallError::Batch(BatchError::NotAList("null"))),
        "{err}"
    );

    let mut request = fixture("events/cdc-function-url.json");
    request["isBase64Encoded"] = json!(false);
    request["body"] = json!(r#"{"Records":null}"#);
    let answer = call(&sample_enricher(), request).await.unwrap();
    assert_eq!(
        http(&answer),
        (500, json!({"error": "Records is null, expected a list"}))
    );
}

#[tokio::test]
async fn the_lambda_entry_point_turns_whole_call_errors_into_lambda_errors() {
    let err = function_handler(
        &sample_enricher(),
        event(&fixture("events/bad/cdc-records-null.json")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "Records is null, expected a list");
}

#[tokio::test]
async fn events_of_no_known_shape_are_whole_call_errors() {
    for payload in [
        json!([1, 2]),
        json!({"records": []}),
        json!({"hello": "world"}),
        json!(null),
    ] {
        let err = call(&sample_enricher(), payload.clone()).await.unwrap_err();
        assert!(
            matches!(err, CallError::UnrecognisedEvent),
            "{payload}: {err}"
        );
    }
}

#[tokio::test]
async fn an_unavailable_ip_fails_the_whole_call_and_a_later_call_fetches_again() {
    let stub = HttpStub::start(vec![
        (200, "FILL_ME".into()),
        (200, " 44.201.33.239\n".into()),
    ])
    .await;
    let url = ip_url(&stub);
    let enricher = enricher(&[("ENRICH_IP_URL", url.as_str()), NO_TOKEN_CHECK]);

    let err = call(&enricher, fixture("events/cdc-doublecloud-sample.json"))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Ip(_)), "{err}");

    let response = call(&enricher, fixture("events/cdc-doublecloud-sample.json"))
        .await
        .unwrap();
    assert_eq!(
        response,
        fixture("events/cdc-doublecloud-sample.expected.json")
    );
    call(&enricher, fixture("events/cdc-doublecloud-sample.json"))
        .await
        .unwrap();
    assert_eq!(stub.requests().await.len(), 2, "fetched once it worked");
}

#[tokio::test]
async fn an_unavailable_ip_is_an_http_503_through_the_function_url() {
    let stub = HttpStub::start(vec![(429, String::new())]).await;
    let url = ip_url(&stub);
    let enricher = enricher(&[
        ("ENRICH_IP_URL", url.as_str()),
        ("ENRICHER_TOKEN", DEV_TOKEN),
    ]);
    let answer = call(&enricher, fixture("events/cdc-function-url.json"))
        .await
        .unwrap();
    assert_eq!(
        http(&answer),
        (503, json!({"error": "enrichment IP unavailable"}))
    );
}

#[tokio::test]
async fn a_silent_ip_service_times_out_and_fails_the_call() {
    let stub = HttpStub::silent().await;
    let url = ip_url(&stub);
    let enricher = enricher(&[
        ("ENRICH_IP_URL", url.as_str()),
        ("ENRICH_IP_TIMEOUT_MS", "150"),
        NO_TOKEN_CHECK,
    ]);
    let err = call(&enricher, fixture("events/cdc-doublecloud-sample.json"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Ip(IpError::Timeout { .. })),
        "{err}"
    );
}

// ---- per-record failures ---------------------------------------------------

/// Asserts that `result` answers `original` with its dead letter: `Ok`, the
/// dead-letter table, the original columns and the reason after them.
fn assert_dead_letter(result: &Value, original: &Value, reason: &str) {
    assert_eq!(result["result"], "Ok", "{result}");
    assert!(result.get("cdc_split").is_none());
    let item = &result["cdc"];
    let table = original["table"].as_str().unwrap();
    assert_eq!(item["table"], format!("{table}_ProcessingFailed"));
    let columns = |item: &Value, name: &str| item[name].as_array().unwrap().clone();
    let names = columns(item, "columnnames");
    let values = columns(item, "columnvalues");
    assert_eq!(
        names[..names.len() - 1],
        columns(original, "columnnames")[..]
    );
    assert_eq!(
        values[..values.len() - 1],
        columns(original, "columnvalues")[..]
    );
    assert_eq!(names.last().unwrap(), "__processing_error");
    assert!(
        values.last().unwrap().as_str().unwrap().contains(reason),
        "{item}"
    );
    for field in ["kind", "commitTime", "schema", "part", "id", "nextlsn"] {
        assert_eq!(item.get(field), original.get(field), "{field} kept");
    }
}

/// Runs a one-record bad fixture and checks it is kept in its dead-letter
/// table, with `reason` in the item and in the log; and that with
/// `ENRICHER_ON_FAILURE=processing-failed` it fails with the original `cdc`
/// sent back instead.
async fn assert_record_fails(path: &str, reason: &str) {
    let request = fixture(path);
    let (response, logs) = capture(call(&sample_enricher(), request.clone())).await;
    let response = response.unwrap();
    let result = &response["Records"][0];
    assert_eq!(response["Records"].as_array().unwrap().len(), 1);
    assert_eq!(result["eventID"], "5.0");
    assert_dead_letter(result, &request["Records"][0]["cdc"], reason);
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["message"] == "record failed")
        .unwrap_or_else(|| panic!("{path}: nothing logged"));
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["index"], 0, "{line}");
    assert!(
        line["reason"].as_str().unwrap().contains(reason),
        "{path}: {line}"
    );

    let failing = enricher(&[
        ("ENRICH_IP", SAMPLE_IP),
        NO_TOKEN_CHECK,
        ("ENRICHER_ON_FAILURE", "processing-failed"),
    ]);
    let response = call(&failing, request.clone()).await.unwrap();
    let result = &response["Records"][0];
    assert_eq!(result["result"], "ProcessingFailed", "{path}");
    assert_eq!(
        result["cdc"], request["Records"][0]["cdc"],
        "{path}: original cdc sent back"
    );
}

#[tokio::test]
async fn a_string_typed_value_that_is_not_base64_fails_its_record() {
    assert_record_fails("events/bad/cdc-bad-base64.json", "not valid base64").await;
}

#[tokio::test]
async fn a_data_parameter_that_is_not_json_fails_its_record() {
    assert_record_fails(
        "events/bad/cdc-bad-data-json.json",
        "data parameter is not a JSON object",
    )
    .await;
}

#[tokio::test]
async fn a_value_that_is_not_text_fails_its_record() {
    assert_record_fails(
        "events/bad/cdc-non-string-value.json",
        "value column holds a number",
    )
    .await;
}

#[tokio::test]
async fn bad_records_fail_alone_and_the_rest_are_enriched() {
    let request = fixture("events/cdc-bad-records.json");
    let response = call(&sample_enricher(), request.clone()).await.unwrap();
    assert_eq!(results(&response), ["Split", "Split", "Ok", "Ok"]);
    let ids: Vec<_> = response["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventID"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!("5.0"), json!("6.0"), json!("7.0"), json!("8.0")]
    );

    let expected_item =
        &fixture("events/cdc-doublecloud-sample.expected.json")["Records"][0]["cdc_split"][0];
    assert_eq!(&response["Records"][0]["cdc_split"][0], expected_item);
    // The base64 (`string`-typed) record holds two lines.
    let split = response["Records"][1]["cdc_split"].as_array().unwrap();
    assert_eq!(split.len(), 2);
    assert_eq!(&split[0], expected_item);
    assert_eq!(
        split[1]["columnvalues"],
        json!(["1722183592001", SAMPLE_IP,
        {"EMAIL": "Ona.Kub@example.org"}, "rand_id_31", "Ona_Kub@example.com"])
    );
    for (failed, reason) in [
        (2, "line 1: data parameter"),
        (3, "value column holds a number"),
    ] {
        assert_dead_letter(
            &response["Records"][failed],
            &request["Records"][failed]["cdc"],
            reason,
        );
    }
}

// ---- nothing of a bad value reaches the log or the answer ---------------------

const SECRET: &str = "hunter2-SECRET";

/// A message whose `data` parameter serde_json would quote in its error:
/// `invalid type: string "hunter2-SECRET", expected a JSON object`.
fn message_with_secret() -> String {
    format!("ts=1722183591238&data=\"{SECRET}\"")
}

/// The bad-data fixture with [`message_with_secret`] as its value.
fn batch_with_secret() -> Value {
    let mut request = fixture("events/bad/cdc-bad-data-json.json");
    let values = request["Records"][0]["cdc"]["columnvalues"]
        .as_array_mut()
        .unwrap();
    *values.last_mut().unwrap() = json!(message_with_secret());
    request
}

/// Asserts that no log line holds the secret and that the failure reason
/// gives the parser's position instead.
fn assert_logs_are_clean(logs: &lambda_stream_kit::telemetry::CapturedLogs) {
    assert!(!logs.text().contains(SECRET), "{}", logs.text());
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["message"] == "record failed")
        .unwrap_or_else(|| panic!("nothing logged: {}", logs.text()));
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .ends_with("data parameter is not a JSON object: unexpected JSON (data error at line 1, column 16)"),
        "{line}"
    );
}

/// A DoubleCloud answer without the input's own column values, which its
/// dead letter keeps (the engine writes them to the dead-letter table); the
/// reason column stays.
fn without_originals(mut response: Value) -> Value {
    for result in response["Records"].as_array_mut().unwrap() {
        if let Some(values) = result
            .pointer_mut("/cdc/columnvalues")
            .and_then(Value::as_array_mut)
        {
            let reason = values.pop();
            values.clear();
            values.extend(reason);
        }
    }
    response
}

#[tokio::test]
async fn a_bad_value_is_not_quoted_in_logs_or_answers_of_a_direct_call() {
    let request = batch_with_secret();
    let (response, logs) = capture(call(&sample_enricher(), request.clone())).await;
    let response = response.unwrap();
    assert_dead_letter(
        &response["Records"][0],
        &request["Records"][0]["cdc"],
        "data parameter is not a JSON object",
    );
    assert!(!without_originals(response).to_string().contains(SECRET));
    assert_logs_are_clean(&logs);
}

#[tokio::test]
async fn a_bad_value_is_not_quoted_in_logs_or_answers_of_a_function_url_call() {
    let enricher = enricher(&[("ENRICH_IP", SAMPLE_IP), ("ENRICHER_TOKEN", DEV_TOKEN)]);
    let mut request = fixture("events/cdc-function-url.json");
    request["isBase64Encoded"] = json!(false);
    request["body"] = json!(batch_with_secret().to_string());
    let (answer, logs) = capture(call(&enricher, request)).await;
    let (status, body) = http(&answer.unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["Records"][0]["result"], "Ok");
    assert!(!without_originals(body).to_string().contains(SECRET));
    assert_logs_are_clean(&logs);
}

#[tokio::test]
async fn a_function_url_body_that_is_not_json_is_described_by_position() {
    let mut request = fixture("events/cdc-function-url.json");
    request["isBase64Encoded"] = json!(false);
    request["body"] = json!(format!("{{\"Records\": [{SECRET}]}}"));
    let (answer, logs) = capture(call(&sample_enricher(), request)).await;
    assert_eq!(
        http(&answer.unwrap()),
        (
            500,
            json!({"error": "request body is not JSON: invalid JSON (syntax error at line 1, column 14)"})
        )
    );
    assert!(!logs.text().contains(SECRET), "{}", logs.text());
}

#[tokio::test]
async fn a_bad_value_is_not_quoted_in_logs_or_answers_of_a_firehose_call() {
    let data = base64::engine::general_purpose::STANDARD.encode(message_with_secret());
    let event = json!({"invocationId": "i", "deliveryStreamArn": "arn",
                       "records": [{"recordId": "r1", "data": data}]});
    let (response, logs) = capture(call(&sample_enricher(), event)).await;
    let response = response.unwrap();
    assert_eq!(response["records"][0]["result"], "ProcessingFailed");
    // The original goes back base64-encoded, as Firehose expects.
    assert_eq!(response["records"][0]["data"], json!(data));
    assert!(!response.to_string().contains(SECRET), "{response}");
    assert_logs_are_clean(&logs);
}

// ---- Firehose ----------------------------------------------------------------

fn firehose_data(record: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(record["data"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn firehose_records_are_answered_with_enriched_json_lines() {
    let request = fixture("events/cdc-firehose.json");
    let response = call(&sample_enricher(), request.clone()).await.unwrap();
    let records = response["records"].as_array().unwrap();
    let ids: Vec<_> = records.iter().map(|r| r["recordId"].clone()).collect();
    let input_ids: Vec<_> = request["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recordId"].clone())
        .collect();
    assert_eq!(ids, input_ids);
    let kinds: Vec<_> = records
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Ok", "Ok", "Dropped"]);

    let design_example = r#"{"appid":"rand_id_27212","data":{"EMAIL":"Laisha28@yahoo.com","MOBILE":"366-380-1466"},"identity":"Lucas_Dickinson@example.com","ip":"44.201.33.239","ts":"1722183591238"}"#;
    assert_eq!(firehose_data(&records[0]), format!("{design_example}\n"));
    let lines: Vec<Value> = firehose_data(&records[1])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["ts"], "1722183592001");
}

#[tokio::test]
async fn a_firehose_record_that_is_not_base64_fails_alone() {
    let response = call(
        &sample_enricher(),
        fixture("events/bad/cdc-firehose-bad-base64.json"),
    )
    .await
    .unwrap();
    let records = response["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (
            records[0]["recordId"].as_str(),
            records[0]["result"].as_str()
        ),
        (Some("bad-1"), Some("ProcessingFailed"))
    );
    assert_eq!(
        (
            records[1]["recordId"].as_str(),
            records[1]["result"].as_str()
        ),
        (Some("good-2"), Some("Ok"))
    );
}

#[tokio::test]
async fn a_firehose_record_without_a_record_id_fails_the_whole_call() {
    let mut request = fixture("events/cdc-firehose.json");
    request["records"][1]
        .as_object_mut()
        .unwrap()
        .remove("recordId");
    let err = call(&sample_enricher(), request).await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Firehose(FirehoseError::NoRecordId { index: 1 })
        ),
        "{err}"
    );
}

// ---- the answer's size ----------------------------------------------------------

/// A DoubleCloud batch of one record whose message is `lines` copies of the
/// shortest valid line, `ts=1`.
fn short_lines_batch(lines: usize) -> Value {
    let mut batch = fixture("events/cdc-doublecloud-sample.json");
    let cdc = &mut batch["Records"][0]["cdc"];
    cdc["columnvalues"][6] = json!("ts=1\n".repeat(lines));
    cdc["table_schema"][6]["type"] = json!("utf8");
    batch
}

fn url_request(batch: &Value) -> Value {
    let mut request = function_url_request();
    request["isBase64Encoded"] = json!(false);
    request["body"] = json!(batch.to_string());
    request
}

#[tokio::test]
async fn a_function_url_answer_is_priced_to_the_byte_with_its_envelope_and_escapes() {
    let batch = short_lines_batch(40);
    let answer = call(&sample_enricher(), url_request(&batch)).await.unwrap();
    assert_eq!(http(&answer).0, 200);
    let exact = serde_json::to_vec(&answer).unwrap().len();

    let fits = sample_enricher().with_response_limit(exact);
    let answer = call(&fits, url_request(&batch)).await.unwrap();
    assert_eq!(
        http(&answer).0,
        200,
        "an answer of exactly the limit is sent"
    );

    let one_short = sample_enricher().with_response_limit(exact - 1);
    let answer = call(&one_short, url_request(&batch)).await.unwrap();
    let (status, body) = http(&answer);
    assert_eq!(status, 500);
    assert!(
        body["error"].as_str().unwrap().contains("response limit"),
        "{body}"
    );
}

#[tokio::test]
async fn an_oversized_direct_answer_fails_the_call_with_advice_and_stays_unsent() {
    // About 150 KB of input, some 10 MB of change items.
    let err = function_handler(&sample_enricher(), event(&short_lines_batch(30_000)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("split such Kafka messages upstream"),
        "{err}"
    );
    let err = call(&sample_enricher(), short_lines_batch(30_000))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Response.TooLarge");
    assert_eq!(err.status(), 500);

    // Just under the limit is still answered, and the answer is under it.
    let response = call(&sample_enricher(), short_lines_batch(15_000))
        .await
        .unwrap();
    let size = serde_json::to_vec(&response).unwrap().len();
    assert!(size <= crate::budget::LAMBDA_RESPONSE_LIMIT, "{size}");
    assert_eq!(
        response["Records"][0]["cdc_split"]
            .as_array()
            .unwrap()
            .len(),
        15_000
    );
}

#[tokio::test]
async fn firehose_records_that_do_not_fit_fail_alone_and_the_answer_stays_under_the_limit() {
    // Each record's enriched lines come to about 3.8 MB of base64: only the
    // first fits.
    let data = base64::engine::general_purpose::STANDARD.encode("ts=1\n".repeat(40_000));
    let records: Vec<Value> = (0..3)
        .map(|i| json!({"recordId": format!("r{i}"), "data": data}))
        .chain([json!({"recordId": "small", "data": base64::engine::general_purpose::STANDARD.encode("ts=2")})])
        .collect();
    let event = json!({"invocationId": "i", "deliveryStreamArn": "arn", "records": records});
    let (response, logs) =
        capture(async { handle(&sample_enricher(), super::tests::event(&event)).await }).await;
    let response = response.unwrap();
    let size = serde_json::to_vec(&response).unwrap().len();
    assert!(size <= crate::budget::LAMBDA_RESPONSE_LIMIT, "{size}");
    let response = serde_json::to_value(response).unwrap();
    let answered: Vec<(&str, &str)> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recordId"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answered,
        [
            ("r0", "Ok"),
            ("r1", "ProcessingFailed"),
            ("r2", "ProcessingFailed"),
            ("small", "Ok")
        ]
    );
    assert_eq!(
        response["records"][1]["data"],
        json!(data),
        "original sent back"
    );
    let warned = logs
        .lines()
        .into_iter()
        .filter(|l| l["message"] == "record failed" && l["level"] == "WARN")
        .count();
    assert_eq!(warned, 2, "{}", logs.text());

    // A limit that cannot hold even one bare failure per record fails the call.
    let tiny = sample_enricher().with_response_limit(100);
    let event = json!({"invocationId": "i", "records": [{"recordId": "a", "data": ""}, {"recordId": "b", "data": ""}]});
    let err = call(&tiny, event).await.unwrap_err();
    assert_eq!(err.error_type(), "Response.TooLarge");
}

// ---- properties ----------------------------------------------------------------

fn arbitrary_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        // Lines that look like the real format, with and without good data.
        (
            "[0-9]{0,14}",
            "[a-z]{0,6}",
            prop_oneof![Just("{}"), Just("{\"payload\":1}"), Just("{bad"), Just("")]
        )
            .prop_map(|(ts, app, data)| Value::from(format!(
                "ts={ts}&app={app}&data={data}\n\nts={ts}"
            ))),
        // base64-looking text, valid or not.
        "[A-Za-z0-9+/=]{0,24}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::from),
    ]
}

fn arbitrary_record() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("value"), Just("data"), Just("key")],
        prop_oneof![Just("utf8"), Just("string"), Just("any"), Just("uint32")],
        arbitrary_value(),
        prop_oneof![any::<u64>().prop_map(Value::from), any::<i64>().prop_map(Value::from), Just(Value::Null), Just(json!("x"))],
        0u8..10,
    )
        .prop_map(|(column, kind, value, commit_time, shape)| {
            let cdc = json!({"commitTime": commit_time, "kind": "insert", "table": "t",
                             "columnnames": ["topic", column], "columnvalues": ["t", value],
                             "table_schema": [{"name": "topic", "type": "utf8"}, {"name": column, "type": kind}]});
            match shape {
                0 => json!(null),
                1 => json!({"eventID": "x"}),
                2 => json!({"eventID": "x", "cdc": [cdc]}),
                _ => json!({"eventID": "x", "cdc": cdc}),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_batch_gets_one_result_per_record_in_order(records in prop::collection::vec(arbitrary_record(), 0..12)) {
        // Mark each record with its position, where it has a place for it.
        let records: Vec<Value> = records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                if let Some(fields) = r.as_object_mut() {
                    fields.insert("eventID".into(), json!(i.to_string()));
                }
                r
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let response = runtime
            .block_on(call(&sample_enricher(), json!({"Records": records.clone()})))
            .unwrap();
        let answered = response["Records"].as_array().unwrap();
        prop_assert_eq!(answered.len(), records.len());
        for (i, (result, record)) in answered.iter().zip(&records).enumerate() {
            let expected_id = if record.is_object() { i.to_string() } else { String::new() };
            prop_assert_eq!(result["eventID"].as_str(), Some(expected_id.as_str()));
            let kind = result["result"].as_str().unwrap();
            prop_assert!(["Split", "Dropped", "Ok", "ProcessingFailed"].contains(&kind), "{}", kind);
            // As the function read it: from the event's text (serde_json's
            // float parsing does not round-trip every f64 exactly).
            let original: Value = serde_json::from_str(&record.get("cdc").unwrap_or(&Value::Null).to_string()).unwrap();
            let original = &original;
            match kind {
                // Only what has no change item to keep is answered failed.
                "ProcessingFailed" => {
                    prop_assert!(!original.is_object());
                    prop_assert_eq!(result.get("cdc").unwrap_or(&Value::Null), original);
                }
                "Ok" => prop_assert_eq!(
                    &result["cdc"],
                    &crate::doublecloud::dead_letter(original.clone(), result["cdc"]["columnvalues"][2].as_str().unwrap())
                ),
                _ => {}
            }
        }
    }

    #[test]
    fn every_firehose_record_is_answered_once_in_order(datas in prop::collection::vec(arbitrary_value(), 0..12)) {
        let records: Vec<Value> = datas
            .into_iter()
            .enumerate()
            .map(|(i, data)| json!({"recordId": format!("r{i}"), "data": data}))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let response = runtime
            .block_on(call(&sample_enricher(), json!({"invocationId": "i", "records": records})))
            .unwrap();
        let ids: Vec<&str> = response["records"].as_array().unwrap().iter().map(|r| r["recordId"].as_str().unwrap()).collect();
        let expected: Vec<String> = (0..records.len()).map(|i| format!("r{i}")).collect();
        prop_assert_eq!(ids, expected);
    }
}

#[tokio::test]
async fn the_metrics_count_results_by_kind_and_the_dead_letters() {
    use lambda_stream_kit::telemetry::metrics::{self, names};
    let (response, counted) = metrics::collect(call(
        &sample_enricher(),
        fixture("events/cdc-bad-records.json"),
    ))
    .await;
    assert_eq!(results(&response.unwrap()), ["Split", "Split", "Ok", "Ok"]);
    for (name, n) in [
        (names::RECORDS_RECEIVED, 4.0),
        (names::RESULTS_SPLIT, 2.0),
        (names::RESULTS_OK, 2.0),
        (names::RESULTS_DROPPED, 0.0),
        (names::RESULTS_PROCESSING_FAILED, 0.0),
        // The two bad records answer Ok with a dead-letter item.
        (names::RECORDS_DEAD_LETTERED, 2.0),
    ] {
        assert_eq!(counted.total(name), Some(n), "{name}");
    }

    let (_, counted) = metrics::collect(call(
        &sample_enricher(),
        fixture("events/cdc-firehose.json"),
    ))
    .await;
    assert_eq!(counted.total(names::RESULTS_OK), Some(2.0));
    assert_eq!(counted.total(names::RESULTS_DROPPED), Some(1.0));
}
