//! The tag handler on every listener of the broker of record (Apache Kafka,
//! started by `make test`): PLAINTEXT, SCRAM-SHA-512, SCRAM-SHA-256 and
//! PLAIN over TLS, client certificates, and MSK IAM. Credentials come from
//! Secrets Manager secrets on moto, in the shapes Lambda's own Kafka
//! triggers use; kafka-python reads back the tagged events.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use kafka_tag_handler::config::{Config, OnError};
use kafka_tag_handler::rules::{RulesSource, Tagger};
use kafka_tag_handler::source::Payload;
use kafka_tag_handler::{function_handler, Answer, App};
use lambda_runtime::LambdaEvent;
use lambda_stream_kit::aws::local_sdk_config;
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::auth::IamTokenProvider;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer};
use serde_json::Value;
use test_support::ListenerMode;

const PARTITIONS: i32 = 3;

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn every_listener_takes_the_tagged_events_and_kafka_python_reads_them_back() {
    let listeners = test_support::listeners();
    let moto = test_support::moto();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/kafka-msk.json");
    for mode in ListenerMode::ALL {
        let response = test_support::unique_topic(&format!("tagged-{}", mode.kafka_auth()));
        let errors = test_support::unique_topic(&format!("tag-errors-{}", mode.kafka_auth()));
        for topic in [&response, &errors] {
            test_support::admin(
                &listeners.internal,
                &["create-topic", topic, &PARTITIONS.to_string()],
            )
            .await
            .unwrap();
        }
        let env = listeners.client_env(mode, "writer", &moto).await.unwrap();
        let kafka = KafkaConfig::from_env(&Env::from_pairs(&env)).unwrap();
        let iam = &listeners.iam_credentials;
        let sink = KafkaProducer::new(kafka)
            .with_sdk_config(local_sdk_config(&format!("http://{moto}"), "us-east-1").await)
            .with_iam_provider(Arc::new(IamTokenProvider::from_static_keys(
                &iam.region,
                &iam.access_key_id,
                &iam.secret_access_key,
            )));
        let app = App {
            config: Config {
                response_topic: Some(response.clone()),
                error_topic: Some(errors.clone()),
                on_error: OnError::Fail,
                rules: RulesSource::Embedded,
                partial_batch_responses: true,
            },
            tagger: Tagger::load(&RulesSource::Embedded).unwrap(),
            sink,
        };

        let payload: Payload = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
        let event = LambdaEvent::new(
            payload,
            test_support::context_expiring_in(std::time::Duration::from_secs(30)),
        );
        match function_handler(&app, event).await.unwrap() {
            Answer::Batch(answer) => assert!(
                answer.batch_item_failures.is_empty(),
                "{mode:?}: {answer:?}"
            ),
            other => panic!("expected a batch response, got {other:?}"),
        }

        let landed = test_support::read_back(&listeners.plaintext, &response, PARTITIONS, 4)
            .await
            .unwrap();
        let mut visitors: Vec<(Option<String>, String)> = landed
            .records()
            .map(|(_, r)| {
                let event: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                assert!(
                    event["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{mode:?}: {event}"
                );
                (
                    r.key
                        .as_ref()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    event["url"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        visitors.sort();
        let keys: Vec<Option<&str>> = visitors.iter().map(|(k, _)| k.as_deref()).collect();
        assert_eq!(
            keys,
            vec![None, Some("s-77"), Some("v-1001"), Some("v-1002")],
            "{mode:?}: the tagged events"
        );
        let dead = test_support::read_back(&listeners.plaintext, &errors, PARTITIONS, 0)
            .await
            .unwrap();
        assert!(dead.values().is_empty(), "{mode:?}: {:?}", dead.values());
    }
}
