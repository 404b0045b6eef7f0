//! The producer on every listener of the broker of record (Apache Kafka,
//! started by `make test` with `scripts/broker.sh`): PLAINTEXT,
//! SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, SSL with a client
//! certificate, and SASL_SSL with OAUTHBEARER checked as MSK checks IAM
//! tokens. Credentials come from Secrets Manager secrets on moto, in the
//! shapes Lambda's own Kafka triggers use; what landed is read back by
//! kafka-python. Beside each mode, the ways it must fail: a wrong password,
//! an unknown CA, a hostname the certificate does not name, no client
//! certificate, a token signed with the wrong key.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use lambda_stream_kit::aws::local_sdk_config;
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::auth::IamTokenProvider;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer, OutgoingRecord, ProduceOutcome};
use lambda_stream_kit::telemetry::{capture, error_chain};
use test_support::{ListenerMode, Listeners, LogCursor};
use tokio::time::Instant;

const RECORDS: usize = 50;

fn records(mode: ListenerMode) -> Vec<OutgoingRecord> {
    (0..RECORDS)
        .map(|n| OutgoingRecord {
            key: Some(format!("k-{}", n % 7).into_bytes()),
            value: Some(format!("{}-{n}", mode.kafka_auth()).into_bytes()),
            ..Default::default()
        })
        .collect()
}

async fn topic(listeners: &Listeners, prefix: &str, partitions: i32) -> String {
    test_support::new_topic(&listeners.internal, prefix, partitions, &[]).await
}

/// A producer for `env`, with AWS calls going to moto and IAM tokens signed
/// with `iam_secret` (the broker's own secret key unless a test breaks it).
async fn producer(
    listeners: &Listeners,
    env: &[(String, String)],
    iam_secret: &str,
) -> KafkaProducer {
    let config = KafkaConfig::from_env(&Env::from_pairs(env)).unwrap();
    let sdk = local_sdk_config(&format!("http://{}", test_support::moto()), "us-east-1").await;
    let provider = IamTokenProvider::from_static_keys(
        &listeners.iam_credentials.region,
        &listeners.iam_credentials.access_key_id,
        iam_secret,
    );
    KafkaProducer::new(config)
        .with_sdk_config(sdk)
        .with_iam_provider(Arc::new(provider))
}

fn errors(outcomes: &[ProduceOutcome]) -> String {
    outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .map(|e| error_chain(e))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn env_for(listeners: &Listeners, mode: ListenerMode, user: &str) -> Vec<(String, String)> {
    listeners
        .client_env(mode, user, &test_support::moto())
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn every_listener_takes_the_batch_and_kafka_python_reads_it_back() {
    let listeners = test_support::listeners();
    for mode in ListenerMode::ALL {
        let topic = topic(&listeners, &format!("listener-{}", mode.kafka_auth()), 3).await;
        let env = env_for(&listeners, mode, "writer").await;
        let producer = producer(
            &listeners,
            &env,
            &listeners.iam_credentials.secret_access_key,
        )
        .await;
        let outcomes = producer
            .produce(
                &topic,
                records(mode),
                Instant::now() + Duration::from_secs(20),
            )
            .await;
        assert!(
            outcomes.iter().all(Result::is_ok),
            "{mode:?}: {}",
            errors(&outcomes)
        );
        let landed = test_support::read_back(&listeners.plaintext, &topic, 3, RECORDS)
            .await
            .unwrap();
        let mut values = landed.values();
        values.sort();
        let mut expected: Vec<String> = (0..RECORDS)
            .map(|n| format!("{}-{n}", mode.kafka_auth()))
            .collect();
        expected.sort();
        assert_eq!(values, expected, "{mode:?}: what landed");
        // Each delivery names the partition and offset the consumer saw.
        for outcome in &outcomes {
            let delivery = outcome.as_ref().unwrap();
            assert!(
                landed.consumed[&delivery.partition]
                    .iter()
                    .any(|r| r.offset == delivery.offset),
                "{mode:?}: {delivery:?} not read back"
            );
        }
    }
}

/// Writes nothing and fails within the deadline. rskafka retries a failed
/// handshake until then, so the producer's error is the deadline and the
/// broker's or the TLS stack's reason is in the log: `expected` must be in
/// one of them.
async fn refused(
    listeners: &Listeners,
    env: Vec<(String, String)>,
    iam_secret: &str,
    expected: &str,
) {
    let topic = topic(listeners, "listener-refused", 1).await;
    let producer = producer(listeners, &env, iam_secret).await;
    let (outcomes, logs) = capture(producer.produce(
        &topic,
        records(ListenerMode::Plaintext),
        Instant::now() + Duration::from_secs(4),
    ))
    .await;
    assert!(outcomes.iter().all(Result::is_err), "{env:?} was accepted");
    let reasons = format!("{}\n{}", errors(&outcomes), logs.text());
    assert!(
        reasons.contains(expected),
        "{env:?}: expected {expected:?} in:\n{reasons}"
    );
    let landed = test_support::read_back(&listeners.plaintext, &topic, 1, 0)
        .await
        .unwrap();
    assert_eq!(landed.values().len(), 0, "a refused producer wrote records");
}

fn with(mut env: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != name);
    env.push((name.to_owned(), value.to_owned()));
    env
}

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn a_wrong_password_is_refused_by_scram_and_plain() {
    let listeners = test_support::listeners();
    for mode in [
        ListenerMode::ScramSha512,
        ListenerMode::ScramSha256,
        ListenerMode::Plain,
    ] {
        let env = env_for(&listeners, mode, "writer").await;
        let env: Vec<_> = env
            .into_iter()
            .filter(|(k, _)| k != "KAFKA_SECRET_ARN")
            .collect();
        let env = with(env, "KAFKA_USERNAME", "writer");
        let env = with(env, "KAFKA_PASSWORD", "not-the-password");
        refused(&listeners, env, "", "SaslAuthenticationFailed").await;
    }
}

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn tls_refuses_an_unknown_ca_and_a_hostname_the_certificate_does_not_name() {
    let listeners = test_support::listeners();
    let env = env_for(&listeners, ListenerMode::ScramSha512, "writer").await;
    let no_ca: Vec<_> = env
        .iter()
        .filter(|(k, _)| k != "KAFKA_TLS_CA_FILE")
        .cloned()
        .collect();
    refused(&listeners, no_ca, "", "UnknownIssuer").await;
    // The broker's certificate names localhost only.
    let by_ip = listeners.scram.replace("localhost", "127.0.0.1");
    refused(
        &listeners,
        with(env, "KAFKA_BOOTSTRAP_SERVERS", &by_ip),
        "",
        "certificate not valid for name",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn the_client_certificate_listener_refuses_a_client_without_one() {
    let listeners = test_support::listeners();
    let env = vec![
        ("KAFKA_BOOTSTRAP_SERVERS".to_owned(), listeners.mtls.clone()),
        ("KAFKA_AUTH".to_owned(), "none".to_owned()),
        ("KAFKA_TLS".to_owned(), "true".to_owned()),
        (
            "KAFKA_TLS_CA_FILE".to_owned(),
            listeners.ca_file.display().to_string(),
        ),
    ];
    // The broker ends the handshake for want of a client certificate.
    refused(&listeners, env, "", "received fatal alert: BadCertificate").await;
}

/// The broker names the client by its certificate's CN (`writer`): ACLs
/// written for that principal apply to it.
#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn the_client_certificate_is_the_principal_the_acls_name() {
    let listeners = test_support::listeners();
    let topic = topic(&listeners, "listener-mtls-acl", 1).await;
    let principal = format!("User:{}", listeners.mtls_principal);
    for (verb, operation) in [("allow", "DESCRIBE"), ("deny", "WRITE")] {
        test_support::admin(&listeners.internal, &[verb, &principal, operation, &topic])
            .await
            .unwrap();
    }
    let env = env_for(&listeners, ListenerMode::ClientCertificate, "writer").await;
    let producer = producer(&listeners, &env, "").await;
    let outcomes = producer
        .produce(
            &topic,
            records(ListenerMode::ClientCertificate),
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    let reasons = errors(&outcomes);
    assert!(
        outcomes.iter().all(Result::is_err),
        "written despite the ACL"
    );
    assert!(reasons.contains("TopicAuthorizationFailed"), "{reasons}");
}

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn the_client_certificate_may_come_from_local_files() {
    let listeners = test_support::listeners();
    let topic = topic(&listeners, "listener-mtls-files", 1).await;
    let env = vec![
        ("KAFKA_BOOTSTRAP_SERVERS".to_owned(), listeners.mtls.clone()),
        ("KAFKA_AUTH".to_owned(), "mtls".to_owned()),
        (
            "KAFKA_TLS_CA_FILE".to_owned(),
            listeners.ca_file.display().to_string(),
        ),
        (
            "KAFKA_CLIENT_CERTIFICATE_FILE".to_owned(),
            listeners.client_certificate_chain.display().to_string(),
        ),
        (
            "KAFKA_CLIENT_KEY_FILE".to_owned(),
            listeners.client_key.display().to_string(),
        ),
    ];
    let producer = producer(&listeners, &env, "").await;
    let outcomes = producer
        .produce(
            &topic,
            records(ListenerMode::ClientCertificate),
            Instant::now() + Duration::from_secs(20),
        )
        .await;
    assert!(outcomes.iter().all(Result::is_ok), "{}", errors(&outcomes));
    let landed = test_support::read_back(&listeners.plaintext, &topic, 1, RECORDS)
        .await
        .unwrap();
    assert_eq!(landed.values().len(), RECORDS);
}

#[tokio::test]
#[ignore = "needs Apache Kafka and moto: make test runs it"]
async fn an_iam_token_signed_with_the_wrong_key_is_refused() {
    let listeners = test_support::listeners();
    let env = env_for(&listeners, ListenerMode::Iam, "writer").await;
    let log = LogCursor::at_end(&listeners.iam_log);
    refused(
        &listeners,
        env,
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEYWRONG",
        // Kafka answers a refused token with an error challenge, which
        // rskafka's SASL session reports as a failed handshake.
        "Sasl handshake failed",
    )
    .await;
    let log = log.lines();
    assert!(
        log.iter()
            .any(|l| l.starts_with("refused") && l.contains("signature")),
        "{log:?}"
    );
}
