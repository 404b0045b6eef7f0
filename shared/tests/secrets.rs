//! Secrets never reach the logs or `Debug` output: real-looking credentials
//! go through configuration, signing and failing connections while every log
//! line is captured, and none of them may show up.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::auth::IamTokenProvider;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer, OutgoingRecord};
use lambda_stream_kit::telemetry::capture;
use tokio::time::Instant;

const PASSWORD: &str = "pR0d-Scr4m-P4ssw0rd-9f8e7d6c5b4a";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY9";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr//////////wEaDOqXyZm9session7token";

fn record() -> Vec<OutgoingRecord> {
    vec![OutgoingRecord {
        value: Some(b"v".to_vec()),
        ..Default::default()
    }]
}

#[tokio::test]
async fn scram_passwords_stay_out_of_logs_and_debug_output() {
    let config = KafkaConfig::from_env(&Env::from_pairs(&[
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1"),
        ("KAFKA_AUTH", "scram-sha-512"),
        ("KAFKA_TLS", "false"),
        ("KAFKA_ALLOW_PLAINTEXT_SASL", "true"),
        ("KAFKA_USERNAME", "svc-producer"),
        ("KAFKA_PASSWORD", PASSWORD),
    ]))
    .unwrap();
    let producer = KafkaProducer::new(config);
    let (outcomes, logs) =
        capture(producer.produce("t", record(), Instant::now() + Duration::from_millis(800))).await;
    assert!(outcomes[0].is_err());
    let debug = format!("{producer:?} {:?}", outcomes[0]);
    assert!(
        debug.contains("svc-producer"),
        "the user name is fine to show: {debug}"
    );
    for text in [logs.text(), debug] {
        assert!(!text.contains(PASSWORD), "password leaked: {text}");
    }
}

#[tokio::test]
async fn iam_credentials_and_tokens_stay_out_of_logs_and_debug_output() {
    let credentials = Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        SECRET_KEY,
        Some(SESSION_TOKEN.to_owned()),
        None,
        "test",
    );
    let provider = Arc::new(IamTokenProvider::new(
        "eu-west-1",
        SharedCredentialsProvider::new(credentials),
    ));
    let mut config = KafkaConfig::plaintext(vec!["127.0.0.1:1".into()]);
    config.auth = lambda_stream_kit::kafka::AuthMode::Iam;
    config.region = Some("eu-west-1".into());
    let producer = KafkaProducer::new(config).with_iam_provider(Arc::clone(&provider));

    let (outcomes, logs) =
        capture(producer.produce("t", record(), Instant::now() + Duration::from_millis(800))).await;
    assert!(outcomes[0].is_err());
    let token = provider.token().await.unwrap();
    assert!(token.expose().len() > 100, "a token was signed");
    let text = format!(
        "{}\n{producer:?}\n{provider:?}\n{token:?}\n{:?}",
        logs.text(),
        outcomes[0]
    );
    for secret in [SECRET_KEY, SESSION_TOKEN, token.expose()] {
        assert!(!text.contains(secret), "secret leaked: {text}");
    }
}
