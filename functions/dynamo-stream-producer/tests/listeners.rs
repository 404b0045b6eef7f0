//! The producer function on every listener of the broker of record (Apache
//! Kafka, started by `make test`): PLAINTEXT, SCRAM-SHA-512, SCRAM-SHA-256
//! and PLAIN over TLS, client certificates, and MSK IAM. Credentials come
//! from Secrets Manager secrets on moto, in the shapes Lambda's own Kafka
//! triggers use; kafka-python reads back what landed.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{batch, expected_value, invoke};
use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::App;
use lambda_stream_kit::aws::local_sdk_config;
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::auth::IamTokenProvider;
use lambda_stream_kit::kafka::partitioner::partition_for_key;
use lambda_stream_kit::kafka::KafkaProducer;
use test_support::ListenerMode;

const PARTITIONS: i32 = 6;
const RECORDS: usize = 100;

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn every_listener_publishes_the_batch_and_kafka_python_reads_it_back() {
    let listeners = test_support::listeners();
    let moto = test_support::moto();
    for mode in ListenerMode::ALL {
        let topic = test_support::unique_topic(&format!("ddb-{}", mode.kafka_auth()));
        test_support::admin(
            &listeners.internal,
            &["create-topic", &topic, &PARTITIONS.to_string()],
        )
        .await
        .unwrap();
        let mut env = listeners.client_env(mode, "writer", &moto).await.unwrap();
        env.extend([
            ("TOPIC_NAME".to_owned(), topic.clone()),
            ("DEADLINE_MARGIN_MS".to_owned(), "1000".to_owned()),
        ]);
        let config = Config::from_env(&Env::from_pairs(&env)).unwrap();
        let iam = &listeners.iam_credentials;
        let sink = KafkaProducer::new(config.kafka.clone())
            .with_sdk_config(local_sdk_config(&format!("http://{moto}"), "us-east-1").await)
            .with_iam_provider(Arc::new(IamTokenProvider::from_static_keys(
                &iam.region,
                &iam.access_key_id,
                &iam.secret_access_key,
            )));
        let app = App { config, sink };

        let (event, _) = batch(0..RECORDS, RECORDS);
        assert_eq!(
            invoke(&app, &event, Duration::from_secs(30)).await,
            None,
            "{mode:?}: a record was reported"
        );

        let landed = test_support::read_back(&listeners.plaintext, &topic, PARTITIONS, RECORDS)
            .await
            .unwrap();
        let mut seen = [false; RECORDS];
        for (partition, record) in landed.records() {
            let key = String::from_utf8(record.key.clone().unwrap()).unwrap();
            let i: usize = key.trim_start_matches("order-").parse().unwrap();
            assert_eq!(
                partition,
                partition_for_key(key.as_bytes(), PARTITIONS as usize),
                "{mode:?}: {key} is not on Java's partition"
            );
            assert_eq!(record.value_text(), expected_value(i, RECORDS), "{mode:?}");
            assert!(!seen[i], "{mode:?}: {key} landed twice");
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s), "{mode:?}: a record is missing");
    }
}
