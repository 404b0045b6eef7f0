//! DynamoDB Streams to Kafka, with no record lost.
//!
//! Each invocation reads every stream record on its own
//! ([`ChangeRecord::read`]) and hands the batch to the shared pipeline
//! ([`lambda_stream_kit::pipeline`]) with the function's mapper
//! ([`Changes`]):
//! 1. a record whose `eventName` is not forwarded is skipped; one that can
//!    never be sent is poison (see [`crate::change`]);
//! 2. every other record is sent with one batched produce, bounded by the
//!    invocation deadline less a safety margin;
//! 3. poison records (and records over the size limit, or refused by the
//!    broker) go to `DEAD_LETTER_TOPIC` when one is set, with the reason in
//!    headers;
//! 4. the answer is the sequence number of the first record that was
//!    neither skipped, acknowledged nor dead-lettered. Lambda redelivers
//!    from there, so nothing is reported done before the broker
//!    acknowledged it.

use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::LambdaEvent;
use lambda_stream_kit::deadline::stop_by;
use lambda_stream_kit::kafka::KafkaProducer;
use lambda_stream_kit::pipeline::{answer, process_partial_response, Sink, Topics};
use lambda_stream_kit::runtime_api::FunctionError;
use lambda_stream_kit::telemetry::trace::traceparent;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::change::{ChangeRecord, Changes};
use crate::config::Config;

/// What every invocation needs, built once per execution environment.
#[derive(Debug)]
pub struct App<S = KafkaProducer> {
    /// The settings.
    pub config: Config,
    /// Where records go: the Kafka producer, or an in-memory sink in tests.
    pub sink: S,
}

impl App {
    /// The settings and a producer for them (no I/O).
    pub fn new(config: Config) -> Self {
        let sink = KafkaProducer::new(config.kafka.clone());
        Self { config, sink }
    }
}

/// The DynamoDB Streams event, with each record kept raw so that one
/// malformed record cannot fail the whole batch.
#[derive(Debug, Deserialize)]
pub struct StreamBatch {
    /// The records; absent only when the event is not a stream event.
    #[serde(rename = "Records", default)]
    pub records: Option<Vec<Box<RawValue>>>,
}

/// Handles one DynamoDB Streams batch.
pub async fn function_handler<S: Sink>(
    app: &App<S>,
    event: LambdaEvent<StreamBatch>,
) -> Result<DynamoDbEventResponse, FunctionError> {
    let deadline = stop_by(&event.context, app.config.deadline_margin);
    let Some(records) = event.payload.records else {
        return Err(FunctionError::new(
            "Event.NotDynamoDbStream",
            "the event has no Records list: is this a DynamoDB Streams event?",
        ));
    };
    let changes: Vec<ChangeRecord<'_>> =
        records.iter().map(|raw| ChangeRecord::read(raw)).collect();
    let mapper = Changes {
        config: &app.config,
        sink: &app.sink,
    };
    let trace = event.context.xray_trace_id.as_deref().and_then(traceparent);
    let topics = Topics {
        publish: &app.config.topic,
        dead_letters: app.config.dead_letter_topic.as_deref(),
        traceparent: trace.as_deref(),
    };
    process_partial_response(
        &app.sink,
        &mapper,
        topics,
        std::slice::from_ref(&changes),
        deadline,
        &answer::DynamoDbStream,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::header;
    use crate::change::tests::record_with_secret;
    use lambda_runtime::Context;
    use lambda_stream_kit::config::Env;
    use lambda_stream_kit::pipeline::MemorySink;
    use std::time::Duration;
    use test_support::context_expiring_in;
    use tokio::time::Instant;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut all = vec![("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")];
        all.extend_from_slice(pairs);
        Config::from_env(&Env::from_pairs(&all)).unwrap()
    }

    fn fixture(name: &str) -> StreamBatch {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// An app whose producer has no broker to reach.
    fn unreachable(pairs: &[(&str, &str)]) -> App {
        App::new(config(pairs))
    }

    fn in_memory(pairs: &[(&str, &str)]) -> App<MemorySink> {
        App {
            config: config(pairs),
            sink: MemorySink::new(),
        }
    }

    fn reported(response: &DynamoDbEventResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_deref().unwrap_or(""))
            .collect()
    }

    #[tokio::test]
    async fn a_mixed_batch_is_published_in_order_and_answered_as_done() {
        let app = in_memory(&[("EVENT_NAMES", "INSERT,MODIFY,REMOVE")]);
        let response = function_handler(
            &app,
            LambdaEvent::new(fixture("dynamodb-mixed.json"), Context::default()),
        )
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty());
        let published = app.sink.records("test-topic");
        let names: Vec<&[u8]> = published
            .iter()
            .map(|r| r.headers[header::EVENT_NAME].as_slice())
            .collect();
        let expected: Vec<Vec<u8>> = fixture_names("dynamodb-mixed.json");
        assert_eq!(
            names,
            expected.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn published_records_and_dead_letters_carry_the_invocations_traceparent() {
        let app = in_memory(&[("DEAD_LETTER_TOPIC", "dead")]);
        let mut context = Context::default();
        context.xray_trace_id = Some(
            "Root=1-6745f2a0-0c1d2e3f4a5b6c7d8e9f0a1b;Parent=1a2b3c4d5e6f7a8b;Sampled=1".into(),
        );
        let mut batch = fixture("dynamodb-insert.json");
        if let Some(records) = batch.records.as_mut() {
            records.push(record_with_secret());
        }
        function_handler(&app, LambdaEvent::new(batch, context))
            .await
            .unwrap();
        let expected = b"00-6745f2a00c1d2e3f4a5b6c7d8e9f0a1b-1a2b3c4d5e6f7a8b-01";
        let published = app.sink.records("test-topic");
        let letters = app.sink.records("dead");
        assert!(!published.is_empty() && letters.len() == 1);
        for record in published.iter().chain(&letters) {
            assert_eq!(record.headers["traceparent"], expected);
        }
    }

    fn fixture_names(name: &str) -> Vec<Vec<u8>> {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["eventName"].as_str().unwrap().as_bytes().to_vec())
            .collect()
    }

    #[tokio::test]
    async fn poison_goes_to_the_dead_letter_topic_and_the_batch_succeeds() {
        let app = in_memory(&[("DEAD_LETTER_TOPIC", "dead")]);
        let batch = StreamBatch {
            records: Some(vec![record_with_secret()]),
        };
        let response = function_handler(&app, LambdaEvent::new(batch, Context::default()))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
        let letters = app.sink.records("dead");
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].headers[header::SEQUENCE_NUMBER], b"700");
    }

    #[tokio::test]
    async fn a_broker_outage_reports_the_first_record_sent() {
        let app = in_memory(&[("EVENT_NAMES", "INSERT,MODIFY,REMOVE")]);
        app.sink.fail_topic(
            "test-topic",
            lambda_stream_kit::kafka::ProduceError::Timeout { step: "produce" },
        );
        let batch = fixture("dynamodb-mixed.json");
        let first = batch.records.as_ref().unwrap()[0].get().to_owned();
        let response = function_handler(&app, LambdaEvent::new(batch, Context::default()))
            .await
            .unwrap();
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(
            reported(&response),
            [first["dynamodb"]["SequenceNumber"].as_str().unwrap()]
        );
        app.sink.recover();
        assert!(app.sink.records("test-topic").is_empty());
    }

    #[tokio::test]
    async fn a_dead_letter_topic_outage_reports_the_poison_record() {
        let app = in_memory(&[("DEAD_LETTER_TOPIC", "dead")]);
        app.sink.fail_topic(
            "dead",
            lambda_stream_kit::kafka::ProduceError::Timeout { step: "produce" },
        );
        let batch = StreamBatch {
            records: Some(vec![record_with_secret()]),
        };
        let response = function_handler(&app, LambdaEvent::new(batch, Context::default()))
            .await
            .unwrap();
        assert_eq!(reported(&response), ["700"]);
    }

    #[tokio::test]
    async fn a_bad_value_is_not_quoted_in_log_lines() {
        let batch = StreamBatch {
            records: Some(vec![record_with_secret()]),
        };
        let (result, logs) = lambda_stream_kit::telemetry::capture(function_handler(
            &unreachable(&[]),
            LambdaEvent::new(batch, Context::default()),
        ))
        .await;
        let reported: Vec<_> = result
            .unwrap()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(reported, vec![Some("700".to_owned())]);
        assert!(
            logs.text().contains("record does not parse"),
            "{}",
            logs.text()
        );
        assert!(!logs.text().contains("hunter2"), "{}", logs.text());
    }

    #[tokio::test]
    async fn with_the_broker_down_the_first_record_is_reported_within_the_deadline() {
        let app = unreachable(&[("DEADLINE_MARGIN_MS", "1000")]);
        let started = Instant::now();
        let response = function_handler(
            &app,
            LambdaEvent::new(
                fixture("dynamodb-mixed.json"),
                context_expiring_in(Duration::from_millis(3000)),
            ),
        )
        .await
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
        let reported: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(
            reported,
            vec![Some("4421584500000000017450439091".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_batch_with_nothing_to_forward_succeeds_without_a_broker() {
        let response = function_handler(
            &unreachable(&[]),
            LambdaEvent::new(fixture("dynamodb-modify.json"), Context::default()),
        )
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn an_event_without_records_is_a_clear_error() {
        let batch: StreamBatch = serde_json::from_str(r#"{"Items": []}"#).unwrap();
        let err = function_handler(
            &unreachable(&[]),
            LambdaEvent::new(batch, Context::default()),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no Records"), "{err}");
    }

    /// Every malformed input in `events/bad/` and what becomes of it when no
    /// dead-letter topic is set: a clear error, or the bad record reported
    /// (with its reason logged) so the mapping's retry limit and on-failure
    /// destination take over. Nothing panics and nothing is dropped.
    #[tokio::test]
    async fn every_bad_fixture_has_its_documented_outcome() {
        enum Expect {
            Unparseable,
            WholeBatchError(&'static str),
            Reported(&'static str, &'static str),
            Success,
        }
        use Expect::*;
        let cases = [
            ("dynamodb-invalid-json.json", Unparseable),
            (
                "dynamodb-wrong-shape.json",
                WholeBatchError("no SequenceNumber"),
            ),
            (
                "dynamodb-no-sequence-number.json",
                WholeBatchError("no SequenceNumber"),
            ),
            (
                "dynamodb-missing-image.json",
                Reported("5000000000000000000000000001", "no NewImage"),
            ),
            (
                "dynamodb-invalid-base64.json",
                Reported(
                    "5000000000000000000000000003",
                    "record does not parse: unexpected JSON (data error",
                ),
            ),
            (
                "dynamodb-bad-number.json",
                Reported(
                    "5000000000000000000000000004",
                    "attribute price has an N value that is not a number",
                ),
            ),
            (
                "dynamodb-deep-nesting.json",
                Reported("5000000000000000000000000005", "nested deeper"),
            ),
            (
                "dynamodb-oversized.json",
                Reported("5000000000000000000000000006", "over the"),
            ),
            (
                "dynamodb-unknown-event-name.json",
                Reported("5000000000000000000000000007", "unknown eventName"),
            ),
            (
                "dynamodb-repeated-key.json",
                Reported("5000000000000000000000000008", "record does not parse"),
            ),
            ("dynamodb-empty-batch.json", Success),
        ];
        let app = unreachable(&[("DEADLINE_MARGIN_MS", "0")]);
        for (file, expect) in cases {
            let path = format!("{}/../../events/bad/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let batch = match serde_json::from_str::<StreamBatch>(&text) {
                Ok(batch) => batch,
                Err(e) => {
                    assert!(matches!(expect, Unparseable), "{file} should parse: {e}");
                    continue;
                }
            };
            let (result, logs) = lambda_stream_kit::telemetry::capture(function_handler(
                &app,
                LambdaEvent::new(batch, context_expiring_in(Duration::from_millis(1500))),
            ))
            .await;
            match expect {
                Unparseable => panic!("{file} was expected not to parse"),
                WholeBatchError(text) => {
                    let err = result.expect_err(file).to_string();
                    assert!(err.contains(text), "{file}: {err}");
                }
                Reported(sequence_number, reason) => {
                    let response = result.unwrap();
                    let reported: Vec<_> = response
                        .batch_item_failures
                        .iter()
                        .map(|f| f.item_identifier.as_deref().unwrap_or(""))
                        .collect();
                    assert_eq!(reported, vec![sequence_number], "{file}");
                    let logged = logs.text();
                    assert!(
                        logged.contains(reason),
                        "{file}: the reason {reason:?} is not logged:\n{logged}"
                    );
                }
                Success => assert!(result.unwrap().batch_item_failures.is_empty(), "{file}"),
            }
        }
    }
}
