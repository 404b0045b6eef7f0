//! MSK IAM through the producer. tansu 0.6 does not offer OAUTHBEARER in its
//! SASL handshake, so the wire exchange cannot run locally; the token itself,
//! its caching and refresh, and the SASL callback are tested in
//! `kafka::auth`. Here: a credential failure surfaces as a clear error
//! within the deadline.

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
use tokio::time::Instant;

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
    vec![OutgoingRecord {
        value: Some(b"v".to_vec()),
        ..Default::default()
    }]
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
        Err(ProduceError::Connect(message)) => {
            assert!(
                message.contains("no AWS credentials for MSK IAM"),
                "{message}"
            )
        }
        other => panic!("expected a connect error naming the credentials, got {other:?}"),
    }
}
