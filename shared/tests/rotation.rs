//! A SCRAM password rotated under a running producer, on the broker of
//! record's SASL_SSL/SCRAM listener. The broker ends SCRAM sessions after
//! `connections.max.reauth.ms`; rskafka keeps a session's credentials for
//! every reconnection, so after the rotation its reconnect is refused, the
//! producer drops the session because nothing got through, and the next
//! attempt reads the password again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_stream_kit::config::Secret;
use lambda_stream_kit::kafka::auth::UserPassword;
use lambda_stream_kit::kafka::{
    AuthMode, KafkaConfig, KafkaProducer, OutgoingRecord, PasswordReader,
};
use lambda_stream_kit::telemetry::capture;
use tokio::time::Instant;

fn record(n: usize) -> OutgoingRecord {
    OutgoingRecord {
        key: Some(format!("k-{n}").into_bytes()),
        value: Some(format!("v-{n}").into_bytes()),
        headers: Default::default(),
        timestamp: None,
    }
}

#[tokio::test]
#[ignore = "needs Apache Kafka: make test runs it"]
async fn a_rotated_password_is_read_again_and_publishing_goes_on() {
    let listeners = test_support::listeners();
    let user = test_support::unique_topic("rotating").replace('-', "_");
    let admin = |password: &'static str| {
        let (internal, user) = (listeners.internal.clone(), user.clone());
        async move {
            test_support::admin(&internal, &["scram", &user, "SCRAM-SHA-512", password])
                .await
                .unwrap();
        }
    };
    admin("first-password").await;
    let topic = test_support::unique_topic("rotation");
    test_support::admin(&listeners.internal, &["create-topic", &topic, "1"])
        .await
        .unwrap();

    // The secret store: what Secrets Manager would hand out now.
    let current = Arc::new(Mutex::new("first-password".to_owned()));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader: PasswordReader = {
        let (current, reads, user) = (Arc::clone(&current), Arc::clone(&reads), user.clone());
        Arc::new(move |_deadline| {
            reads.fetch_add(1, Ordering::SeqCst);
            let password = current.lock().unwrap().clone();
            let user = user.clone();
            Box::pin(async move {
                Ok(UserPassword {
                    username: user,
                    password: Secret::new(password),
                })
            })
        })
    };
    let mut config = KafkaConfig::plaintext(vec![listeners.scram.clone()]);
    config.auth = AuthMode::ScramSha512;
    config.tls = true;
    config.tls_ca_file = Some(listeners.ca_file.clone());
    let producer = KafkaProducer::new(config).with_password_reader(reader);
    let deadline = || Instant::now() + Duration::from_secs(3);

    let first = producer.produce(&topic, vec![record(0)], deadline()).await;
    assert!(first[0].is_ok(), "{first:?}");

    // Rotation: the secret and the broker change together; the open
    // session lives on until the broker ends it.
    *current.lock().unwrap() = "second-password".into();
    admin("second-password").await;
    tokio::time::sleep(Duration::from_millis(listeners.scram_reauth_ms + 1_000)).await;

    // The old session reconnects with the old password and is refused.
    let (during, logs) = capture(producer.produce(&topic, vec![record(1)], deadline())).await;
    assert!(during[0].is_err(), "the stale session cannot publish");
    assert!(
        logs.text().contains("SaslAuthenticationFailed"),
        "refused for its password: {}",
        logs.text()
    );
    // The retry connects afresh, with the password read again.
    let after = producer
        .produce(
            &topic,
            vec![record(1)],
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    assert!(after[0].is_ok(), "{after:?}");
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "read at start and after the failure"
    );
    // The broker acknowledged both, one after the other on the partition,
    // and a consumer reads exactly those.
    let offsets = (
        first[0].as_ref().unwrap().offset,
        after[0].as_ref().unwrap().offset,
    );
    assert_eq!(offsets, (0, 1));
    let landed = test_support::read_back(&listeners.plaintext, &topic, 1, 2)
        .await
        .unwrap();
    assert_eq!(landed.values(), ["v-0", "v-1"]);
}
