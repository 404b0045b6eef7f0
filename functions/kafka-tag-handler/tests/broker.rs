//! End to end against the local broker: batches go in, tagged events come
//! out on the response topic and bad records on the error topic.

// The helpers below are test code too: a panic there is a failed assertion
// (clippy's allow-unwrap-in-tests only covers `#[test]` functions).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_tag_handler::config::{Config, OnError};
use kafka_tag_handler::handler::{
    ERROR_KIND_HEADER, ERROR_MESSAGE_HEADER, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
};
use kafka_tag_handler::rules::{RulesSource, Tagger};
use kafka_tag_handler::source::Payload;
use kafka_tag_handler::{function_handler, Answer, App};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::batch::KafkaEventResponse;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer};
use lambda_stream_kit::pipeline::dead_letter::{LEFT_OUT_HEADER, ORIGINAL_BYTES_HEADER};
use serde_json::Value;

const PARTITIONS: i32 = 3;

/// What landed on a topic, reduced to comparable parts.
#[derive(Debug)]
struct Landed {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: BTreeMap<String, Vec<u8>>,
}

impl Landed {
    fn header(&self, name: &str) -> String {
        String::from_utf8_lossy(
            self.headers
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
        .into_owned()
    }

    fn source_offset(&self) -> i64 {
        self.header(SOURCE_OFFSET_HEADER).parse().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(self.value.as_deref().unwrap()).unwrap()
    }
}

struct Setup {
    broker: String,
    app: App,
}

impl Setup {
    async fn new(on_error: OnError) -> Self {
        let broker = test_support::broker();
        let response = test_support::unique_topic("kafka-tag-response");
        let errors = test_support::unique_topic("kafka-tag-errors");
        test_support::create_topic(&broker, &response, PARTITIONS)
            .await
            .unwrap();
        test_support::create_topic(&broker, &errors, PARTITIONS)
            .await
            .unwrap();
        let app = App {
            config: Config {
                response_topic: Some(response),
                error_topic: Some(errors),
                on_error,
                rules: RulesSource::Embedded,
                partial_batch_responses: true,
            },
            tagger: Tagger::load(&RulesSource::Embedded).unwrap(),
            sink: KafkaProducer::new(KafkaConfig::plaintext(vec![broker.clone()])),
        };
        Self { broker, app }
    }

    async fn invoke(&self, fixture: &str) -> KafkaEventResponse {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(fixture);
        let payload: Payload = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let event = LambdaEvent::new(payload, Context::default());
        match function_handler(&self.app, event).await.unwrap() {
            Answer::Batch(response) => response,
            other => panic!("expected a batch response, got {other:?}"),
        }
    }

    async fn invoke_connector(&self, fixture: &str) -> Vec<Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(fixture);
        let payload: Payload = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let event = LambdaEvent::new(payload, Context::default());
        match function_handler(&self.app, event).await.unwrap() {
            Answer::Connector(entries) => entries,
            other => panic!("expected a connector answer, got {other:?}"),
        }
    }

    async fn read(&self, topic: &str, expected: usize) -> Vec<Landed> {
        let mut landed: Vec<Landed> = test_support::read_topic(
            &self.broker,
            topic,
            PARTITIONS,
            expected,
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|(partition, r)| Landed {
            partition,
            offset: r.offset,
            key: r.record.key,
            value: r.record.value,
            headers: r.record.headers,
        })
        .collect();
        landed.sort_by_key(|l| (l.header(SOURCE_PARTITION_HEADER), l.source_offset()));
        landed
    }

    fn response_topic(&self) -> &str {
        self.app.config.response_topic.as_deref().unwrap()
    }

    fn error_topic(&self) -> &str {
        self.app.config.error_topic.as_deref().unwrap()
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

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn tagged_events_land_on_the_response_topic_with_their_keys_and_headers() {
    let setup = Setup::new(OnError::Fail).await;
    let response = setup.invoke("kafka-msk.json").await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let landed = setup.read(setup.response_topic(), 4).await;
    assert_eq!(landed.len(), 4);
    let by_offset: Vec<(i64, Option<&[u8]>)> = landed
        .iter()
        .map(|l| (l.source_offset(), l.key.as_deref()))
        .collect();
    assert_eq!(
        by_offset,
        vec![
            (15, Some(&b"v-1001"[..])),
            (16, Some(&b"s-77"[..])),
            (7, Some(&b"v-1002"[..])),
            (8, None)
        ]
    );
    for l in &landed {
        assert_eq!(l.header(SOURCE_TOPIC_HEADER), "page-visits");
    }
    assert_eq!(landed[0].header(SOURCE_PARTITION_HEADER), "0");
    assert_eq!(landed[0].header("source-app"), "web");
    assert_eq!(landed[2].header("trace-id"), "4bf92f3577b34da6");

    let first = landed[0].json();
    assert_eq!(first["visitor_id"], "v-1001");
    assert_eq!(first["referrer"], "https://mail.google.com/");
    assert_eq!(
        first["tags"],
        serde_json::json!([
            "campaign:spring",
            "channel:email",
            "device:mobile",
            "medium:email",
            "section:blog",
            "source:newsletter"
        ])
    );
    assert!(first["tagged_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        landed[2].json()["tags"],
        serde_json::json!(["channel:paid", "device:tablet", "funnel:checkout"])
    );
    assert_eq!(
        landed[3].json()["tags"],
        serde_json::json!(["bot", "channel:social", "device:desktop", "page:home"])
    );
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn negative_header_bytes_arrive_as_the_original_bytes() {
    let setup = Setup::new(OnError::Fail).await;
    assert!(setup
        .invoke("kafka-negative-header.json")
        .await
        .batch_item_failures
        .is_empty());
    let landed = setup.read(setup.response_topic(), 1).await;
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].header("region"), "Zürich");
    assert_eq!(landed[0].headers["binary"], vec![255, 128, 0, 127]);
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn records_of_one_key_keep_their_order() {
    let setup = Setup::new(OnError::Fail).await;
    assert!(setup
        .invoke("kafka-self-managed.json")
        .await
        .batch_item_failures
        .is_empty());
    let landed = setup.read(setup.response_topic(), 2).await;
    assert_eq!(landed.len(), 2);
    assert_eq!(landed[0].partition, landed[1].partition);
    assert_eq!(
        (landed[0].source_offset(), landed[1].source_offset()),
        (100, 101)
    );
    assert!(landed[0].offset < landed[1].offset);
    assert_eq!(
        landed[0].json()["tags"],
        serde_json::json!([
            "channel:paid",
            "device:desktop",
            "medium:cpc",
            "search-term",
            "section:search"
        ])
    );
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn bad_records_land_on_the_error_topic_with_their_headers() {
    let setup = Setup::new(OnError::Dlq).await;
    let response = setup.invoke("kafka-mixed-batch.json").await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let tagged = setup.read(setup.response_topic(), 4).await;
    let offsets: Vec<i64> = tagged.iter().map(Landed::source_offset).collect();
    assert_eq!(offsets, vec![20, 22, 31, 50]);

    let dead = setup.read(setup.error_topic(), 3).await;
    let summary: Vec<(i64, String, String, Option<Vec<u8>>)> = dead
        .iter()
        .map(|d| {
            (
                d.source_offset(),
                d.header(SOURCE_PARTITION_HEADER),
                d.header(ERROR_KIND_HEADER),
                d.value.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                21,
                "0".into(),
                "not-json".into(),
                Some(b"this is not json".to_vec())
            ),
            (
                30,
                "1".into(),
                "not-a-page-visit".into(),
                Some(br#"{"event":"heartbeat","visitor_id":"v-1005"}"#.to_vec())
            ),
            (
                51,
                "2".into(),
                "invalid-base64".into(),
                Some(b"not*base64!".to_vec())
            ),
        ]
    );
    for d in &dead {
        assert_eq!(d.header(SOURCE_TOPIC_HEADER), "page-visits");
        assert!(!d.header(ERROR_MESSAGE_HEADER).is_empty());
    }
    assert_eq!(dead[1].key.as_deref(), Some(&b"v-1005"[..]));
    assert_eq!(
        dead[1].header(ERROR_MESSAGE_HEADER),
        "no url field (one of url, page_url, pageUrl)"
    );
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn on_error_fail_publishes_nothing_after_a_bad_record_of_a_partition() {
    let setup = Setup::new(OnError::Fail).await;
    let response = setup.invoke("kafka-mixed-batch.json").await;
    assert_eq!(
        failures(&response),
        // Every record not published: each bad one and the ones held back
        // behind it in its partition.
        vec![
            ("page-visits-0".to_owned(), 21),
            ("page-visits-0".to_owned(), 22),
            ("page-visits-1".to_owned(), 30),
            ("page-visits-1".to_owned(), 31),
            ("page-visits-2".to_owned(), 51)
        ]
    );
    let tagged = setup.read(setup.response_topic(), 2).await;
    let offsets: Vec<i64> = tagged.iter().map(Landed::source_offset).collect();
    assert_eq!(offsets, vec![20, 50]);
    assert!(setup.read(setup.error_topic(), 0).await.is_empty());
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_missing_response_topic_is_reported_as_failures_not_lost() {
    let mut setup = Setup::new(OnError::Fail).await;
    setup.app.config.response_topic = Some(test_support::unique_topic("kafka-tag-never-created"));
    let response = setup.invoke("kafka-msk.json").await;
    assert_eq!(
        failures(&response),
        vec![
            ("page-visits-0".to_owned(), 15),
            ("page-visits-0".to_owned(), 16),
            ("page-visits-1".to_owned(), 7),
            ("page-visits-1".to_owned(), 8)
        ]
    );
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_bad_connector_record_is_dead_lettered_and_its_entry_says_where() {
    let setup = Setup::new(OnError::Dlq).await;
    let entries = setup.invoke_connector("kafka-connector.json").await;
    assert_eq!(entries.len(), 3);
    assert!(entries[0]["tags"].is_array() && entries[1]["tags"].is_array());

    let dead = setup.read(setup.error_topic(), 1).await;
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(d.header(SOURCE_TOPIC_HEADER), "page-visits");
    assert_eq!(d.header(SOURCE_PARTITION_HEADER), "1");
    assert_eq!(d.source_offset(), 9001);
    assert_eq!(d.header(ERROR_KIND_HEADER), "not-a-page-visit");
    assert_eq!(
        d.header(ERROR_MESSAGE_HEADER),
        "no url field (one of url, page_url, pageUrl)"
    );
    assert_eq!(d.value.as_deref(), Some(&br#"{"event":"heartbeat"}"#[..]));
    assert_eq!(
        entries[2],
        serde_json::json!({
            "status": "dead-lettered",
            "kind": "not-a-page-visit",
            "message": "no url field (one of url, page_url, pageUrl)",
            "index": 2,
            "source": {"topic": "page-visits", "partition": 1, "offset": 9001},
            "dead_letter": {"topic": setup.error_topic(), "partition": d.partition, "offset": d.offset},
        })
    );
    // The connector publishes the answer itself: nothing else is written.
    assert!(setup.read(setup.response_topic(), 0).await.is_empty());
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_bad_record_too_large_to_dead_letter_lands_as_a_stub() {
    use base64::Engine;
    let setup = Setup::new(OnError::Dlq).await;
    let value = vec![b'{'; 1_500_000];
    let event = serde_json::json!({"eventSource": "aws:kafka", "records": {"page-visits-0": [
        {"topic": "page-visits", "partition": 0, "offset": 5, "key": "djE=",
         "value": base64::engine::general_purpose::STANDARD.encode(&value)}
    ]}});
    let payload: Payload = serde_json::from_value(event).unwrap();
    let answer = function_handler(&setup.app, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer, Answer::Batch(KafkaEventResponse::default()));

    let dead = setup.read(setup.error_topic(), 1).await;
    assert_eq!(dead.len(), 1);
    let stub = &dead[0];
    assert_eq!(stub.source_offset(), 5);
    assert_eq!(stub.header(SOURCE_TOPIC_HEADER), "page-visits");
    assert_eq!(stub.header(ERROR_KIND_HEADER), "not-json");
    assert_eq!(stub.key.as_deref(), Some(&b"v1"[..]));
    assert!(stub.value.as_ref().is_none_or(Vec::is_empty));
    assert_eq!(stub.header(LEFT_OUT_HEADER), "value");
    let original: usize = stub.header(ORIGINAL_BYTES_HEADER).parse().unwrap();
    assert!(original > 1_500_000, "{original}");
}
