//! A SCRAM/PLAIN password rotated under a running producer. rskafka keeps a
//! session's credentials for every reconnection, so the producer drops the
//! session when nothing got through and reads the password again for the
//! next one. tansu cannot authenticate users in memory mode, so a gate in
//! front of a private tansu plays a PLAIN listener whose password a test
//! changes (closing the open sessions, as a broker restart would); PLAIN
//! reads its credentials on the same path as SCRAM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_stream_kit::config::Secret;
use lambda_stream_kit::kafka::auth::UserPassword;
use lambda_stream_kit::kafka::{
    AuthMode, KafkaConfig, KafkaProducer, OutgoingRecord, PasswordReader,
};
use test_support::{OauthBearerGate, PrivateBroker};
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
#[ignore = "needs tansu: make test runs it"]
async fn a_rotated_password_is_read_again_and_publishing_goes_on() {
    let gate_port = test_support::free_port();
    let broker = PrivateBroker::start("127.0.0.1", gate_port).await;
    broker.create_topic("orders", 1).await;
    let gate = OauthBearerGate::start_plain(gate_port, broker.direct.clone(), "svc", "first").await;

    // The secret store: what Secrets Manager would hand out now.
    let current = Arc::new(Mutex::new("first".to_owned()));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader: PasswordReader = {
        let (current, reads) = (Arc::clone(&current), Arc::clone(&reads));
        Arc::new(move |_deadline| {
            reads.fetch_add(1, Ordering::SeqCst);
            let password = current.lock().unwrap().clone();
            Box::pin(async move {
                Ok(UserPassword {
                    username: "svc".into(),
                    password: Secret::new(password),
                })
            })
        })
    };
    let mut config = KafkaConfig::plaintext(vec![format!("127.0.0.1:{gate_port}")]);
    config.auth = AuthMode::Plain;
    let producer = KafkaProducer::new(config).with_password_reader(reader);
    let deadline = || Instant::now() + Duration::from_secs(3);

    let first = producer
        .produce("orders", vec![record(0)], deadline())
        .await;
    assert!(first[0].is_ok(), "{first:?}");

    // Rotation: the secret and the broker change together.
    *current.lock().unwrap() = "second".into();
    gate.rotate_password("second");

    // The old session reconnects with the old password and is refused.
    let during = producer
        .produce("orders", vec![record(1)], deadline())
        .await;
    assert!(during[0].is_err(), "the stale session cannot publish");
    // The retry connects afresh, with the password read again.
    let after = producer
        .produce("orders", vec![record(1)], deadline())
        .await;
    assert!(after[0].is_ok(), "{after:?}");

    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "read at start and after the failure"
    );
    let log = gate.log();
    // Each session opens a connection for metadata and one to the leader.
    let mut accepted = log.accepted_tokens.clone();
    accepted.dedup();
    assert_eq!(accepted, ["svc:first", "svc:second"]);
    assert!(
        log.refusals.iter().any(|r| r.contains("wrong password")),
        "{:?}",
        log.refusals
    );
    // The broker acknowledged both, one after the other on the partition.
    let offsets = (
        first[0].as_ref().unwrap().offset,
        after[0].as_ref().unwrap().offset,
    );
    assert_eq!(offsets, (0, 1));
    broker.stop().await;
}
