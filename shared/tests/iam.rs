//! MSK IAM through the producer, on the wire. tansu 0.6 does not offer
//! OAUTHBEARER, so an [`OauthBearerGate`] in front of a private tansu does
//! what MSK does: it checks each token, refuses expired ones and closes a
//! connection when its token expires. Token lifetimes are cut to seconds.
//! The token's signature itself is checked in `kafka::auth`.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use lambda_stream_kit::kafka::auth::IamTokenProvider;
use lambda_stream_kit::kafka::{
    AuthMode, KafkaConfig, KafkaProducer, OutgoingRecord, ProduceError,
};
use lambda_stream_kit::telemetry::capture;
use test_support::{OauthBearerGate, PrivateBroker};
use tokio::time::Instant;

/// How long the gate lets a token live: MSK's 15 minutes, shortened.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Default)]
struct CountingCredentials {
    calls: Arc<AtomicUsize>,
    fail: bool,
}

impl ProvideCredentials for CountingCredentials {
    fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return ProvideFuture::ready(Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "no credentials in the environment",
                ),
            ));
        }
        ProvideFuture::ready(Ok(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )))
    }
}

fn iam_config(broker: &str) -> KafkaConfig {
    let mut config = KafkaConfig::plaintext(vec![broker.to_owned()]);
    config.auth = AuthMode::Iam;
    config.region = Some("us-east-1".into());
    config
}

fn one_record() -> Vec<OutgoingRecord> {
    records(0..1)
}

fn records(sequence: std::ops::Range<usize>) -> Vec<OutgoingRecord> {
    sequence
        .map(|n| OutgoingRecord {
            value: Some(n.to_string().into_bytes()),
            ..Default::default()
        })
        .collect()
}

struct GatedBroker {
    /// Held for its lifetime: tansu stops when it drops.
    _broker: PrivateBroker,
    gate: OauthBearerGate,
}

impl GatedBroker {
    async fn start(topic: &str) -> Self {
        let port = test_support::free_port();
        let broker = PrivateBroker::start("127.0.0.1", port).await;
        let gate = OauthBearerGate::start(port, broker.direct.clone(), TOKEN_LIFETIME).await;
        broker.create_topic(topic, 1).await;
        Self {
            _broker: broker,
            gate,
        }
    }

    fn producer(&self, provider: IamTokenProvider) -> KafkaProducer {
        KafkaProducer::new(iam_config(&format!("127.0.0.1:{}", self.gate.port)))
            .with_iam_provider(Arc::new(provider))
    }

    /// Waits until the gate has closed a session because its token expired.
    async fn until_a_session_expires(&self) {
        let give_up = Instant::now() + TOKEN_LIFETIME * 4;
        while self.gate.log().expired_sessions == 0 {
            assert!(Instant::now() < give_up, "no session expired");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn values(&self, topic: &str, expected: usize) -> Vec<String> {
        // The broker advertises the gate, so reading back authenticates too.
        let provider = IamTokenProvider::new(
            "us-east-1",
            SharedCredentialsProvider::new(CountingCredentials::default()),
        )
        .with_max_age(Duration::ZERO);
        let client =
            rskafka::client::ClientBuilder::new(vec![format!("127.0.0.1:{}", self.gate.port)])
                .sasl_config(Arc::new(provider).sasl_config())
                .build()
                .await
                .unwrap();
        test_support::read_partition_with(&client, topic, 0, expected, Duration::from_secs(10))
            .await
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.record.value.unwrap_or_default()).unwrap())
            .collect()
    }
}

fn assert_all_delivered(outcomes: &[Result<impl std::fmt::Debug, ProduceError>]) {
    for (index, outcome) in outcomes.iter().enumerate() {
        assert!(outcome.is_ok(), "record {index}: {outcome:?}");
    }
}

#[tokio::test]
#[ignore = "needs tansu: make test runs it"]
async fn an_expiring_token_is_replaced_and_publishing_goes_on() {
    let credentials = CountingCredentials::default();
    let calls = Arc::clone(&credentials.calls);
    let rig = GatedBroker::start("iam-refresh").await;
    // Refresh well before the gate's expiry, as REFRESH_MARGIN does against
    // MSK's 15 minutes.
    let provider = IamTokenProvider::new("us-east-1", SharedCredentialsProvider::new(credentials))
        .with_max_age(Duration::from_secs(1));
    let producer = rig.producer(provider);

    let deadline = Instant::now() + Duration::from_secs(10);
    assert_all_delivered(
        &producer
            .produce("iam-refresh", records(0..50), deadline)
            .await,
    );
    rig.until_a_session_expires().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_all_delivered(
        &producer
            .produce("iam-refresh", records(50..100), deadline)
            .await,
    );

    let log = rig.gate.log();
    assert!(log.refusals.is_empty(), "{:?}", log.refusals);
    let distinct: std::collections::BTreeSet<_> = log.accepted_tokens.iter().collect();
    assert!(
        distinct.len() >= 2,
        "one token served both sessions: {log:?}"
    );
    assert!(calls.load(Ordering::SeqCst) >= 2);
    let expected: Vec<String> = (0..100).map(|n| n.to_string()).collect();
    assert_eq!(rig.values("iam-refresh", 100).await, expected);
}

/// The other side of the gate: a token kept past its lifetime is refused,
/// and the producer reports that within the deadline instead of hanging.
#[tokio::test]
#[ignore = "needs tansu: make test runs it"]
async fn an_expired_token_is_refused_and_reported_within_the_deadline() {
    let rig = GatedBroker::start("iam-stale").await;
    // The default refresh is minutes before a 15-minute expiry, so against
    // the shortened lifetime the cached token goes stale.
    let provider = IamTokenProvider::new(
        "us-east-1",
        SharedCredentialsProvider::new(CountingCredentials::default()),
    );
    let producer = rig.producer(provider);

    let deadline = Instant::now() + Duration::from_secs(10);
    assert_all_delivered(
        &producer
            .produce("iam-stale", records(0..10), deadline)
            .await,
    );
    rig.until_a_session_expires().await;
    let started = Instant::now();
    let (outcomes, logs) = capture(producer.produce(
        "iam-stale",
        records(10..20),
        started + Duration::from_secs(3),
    ))
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
    // The producer's own error is the deadline; the reason is in the log.
    assert!(
        logs.lines().iter().any(|line| line["level"] == "WARN"
            && line["e"]
                .as_str()
                .is_some_and(|e| e.contains("SaslAuthenticationFailed"))),
        "{}",
        logs.text()
    );
    let log = rig.gate.log();
    assert!(
        log.refusals.iter().any(|r| r.contains("expired")),
        "{:?}",
        log.refusals
    );
    assert_eq!(rig.values("iam-stale", 10).await.len(), 10);
}

#[tokio::test]
async fn a_failed_token_fetch_is_a_clear_error_within_the_deadline() {
    let credentials = CountingCredentials {
        fail: true,
        ..Default::default()
    };
    let provider = IamTokenProvider::new("us-east-1", SharedCredentialsProvider::new(credentials));
    // Nothing needs to listen: the token is signed before connecting.
    let producer =
        KafkaProducer::new(iam_config("127.0.0.1:1")).with_iam_provider(Arc::new(provider));
    let started = Instant::now();
    let outcomes = producer
        .produce("iam", one_record(), started + Duration::from_secs(2))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &outcomes[0] {
        Err(error @ ProduceError::Connect { .. }) => {
            // The cause is kept as the error's source, not flattened into it.
            assert!(!error.to_string().contains("no AWS credentials"), "{error}");
            let message = lambda_stream_kit::telemetry::error_chain(error);
            assert!(
                message.contains("no AWS credentials for MSK IAM"),
                "{message}"
            )
        }
        other => panic!("expected a connect error naming the credentials, got {other:?}"),
    }
}
