//! What the broker of record refuses, and what the producer makes of it:
//! a record over the topic's `max.message.bytes` (MESSAGE_TOO_LARGE), a
//! topic that does not exist, a principal the ACLs deny WRITE
//! (StandardAuthorizer), and a user throttled by a `producer_byte_rate`
//! quota, as MSK Express brokers throttle clients. Each time the records
//! the producer calls delivered are exactly those a consumer reads, and
//! every other record has an error: nothing acknowledged is missing,
//! nothing missing is acknowledged.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lambda_stream_kit::kafka::{
    AuthMode, KafkaConfig, KafkaProducer, OutgoingRecord, ProduceOutcome,
};
use lambda_stream_kit::telemetry::error_chain;
use test_support::Listeners;
use tokio::time::Instant;

fn record(n: usize, size: usize) -> OutgoingRecord {
    // Digits of a running counter: no codec shrinks it much.
    let mut value = format!("{n}:");
    let mut x: u64 = n as u64 + 1;
    while value.len() < size {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        value.push_str(&(x >> 40).to_string());
    }
    value.truncate(size);
    OutgoingRecord {
        value: Some(value.into_bytes()),
        ..Default::default()
    }
}

async fn topic(listeners: &Listeners, prefix: &str, configs: &[&str]) -> String {
    test_support::new_topic(&listeners.internal, prefix, 1, configs).await
}

fn scram_producer(listeners: &Listeners, user: &str) -> KafkaProducer {
    KafkaProducer::new(scram_config(listeners, user))
}

fn scram_config(listeners: &Listeners, user: &str) -> KafkaConfig {
    let mut config = KafkaConfig::plaintext(vec![listeners.scram.clone()]);
    config.auth = AuthMode::ScramSha512;
    config.tls = true;
    config.tls_ca_file = Some(listeners.ca_file.clone());
    config.credentials = Some(lambda_stream_kit::kafka::config::CredentialSource::Inline {
        username: user.to_owned(),
        password: lambda_stream_kit::config::Secret::new(listeners.password(user).to_owned()),
    });
    config
}

/// The values a consumer reads equal the values of the records delivered.
async fn delivered_is_what_landed(
    listeners: &Listeners,
    topic: &str,
    records: &[OutgoingRecord],
    outcomes: &[ProduceOutcome],
) {
    let mut delivered: Vec<String> = records
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| o.is_ok())
        .map(|(r, _)| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let mut landed = test_support::read_back(&listeners.plaintext, topic, 1, delivered.len())
        .await
        .unwrap()
        .values();
    delivered.sort();
    landed.sort();
    assert_eq!(landed, delivered);
}

/// Sends twelve records, one of them over the topic's `max.message.bytes`
/// (under the producer's own 1 MiB limit), twice through `config`, as a
/// mapping's retry would. The first attempt sends the partition's records
/// in one request, which the broker refuses as a whole: nothing is
/// acknowledged, and the partition's records go one per request from then
/// on. The retry names the record at fault and delivers the rest.
async fn refused_whole_then_the_record_alone(listeners: &Listeners, mut config: KafkaConfig) {
    const BIG: usize = 5;
    let topic = topic(listeners, "too-large", &["max.message.bytes=4096"]).await;
    // The topic's limit is on the batch as stored, so no codec.
    config.compression = lambda_stream_kit::kafka::Compression::None;
    let producer = KafkaProducer::new(config);
    let records: Vec<OutgoingRecord> = (0..12)
        .map(|n| record(n, if n == BIG { 8_000 } else { 300 }))
        .collect();
    let deadline = || Instant::now() + Duration::from_secs(20);
    let first = producer.produce(&topic, records.clone(), deadline()).await;
    assert!(
        first
            .iter()
            .all(|o| o.as_ref().is_err_and(|e| !e.is_permanent())),
        "{first:?}"
    );
    let retry = producer.produce(&topic, records.clone(), deadline()).await;
    for (n, outcome) in retry.iter().enumerate() {
        if n == BIG {
            let error = outcome.as_ref().unwrap_err();
            assert!(error.is_permanent(), "{error}");
            assert!(
                error_chain(error).contains("MessageTooLarge"),
                "{}",
                error_chain(error)
            );
        } else {
            assert!(outcome.is_ok(), "record {n}: {outcome:?}");
        }
    }
    delivered_is_what_landed(listeners, &topic, &records, &retry).await;
}

#[tokio::test]
#[ignore = "needs Apache Kafka: make test runs it"]
async fn a_record_over_the_topics_max_message_bytes_is_refused_alone_and_the_rest_land() {
    let listeners = test_support::listeners();
    let config = KafkaConfig::plaintext(vec![listeners.plaintext.clone()]);
    refused_whole_then_the_record_alone(&listeners, config).await;
}

/// Under SCRAM or PLAIN a batch with nothing delivered drops the session
/// (so a rotated password is read again); what the refusal taught, that the
/// partition's records go one per request, must outlive it, or a
/// one-partition topic would be refused whole on every retry.
#[tokio::test]
#[ignore = "needs Apache Kafka: make test runs it"]
async fn a_refusal_under_scram_is_split_on_the_retry_although_the_session_was_dropped() {
    let listeners = test_support::listeners();
    let config = scram_config(&listeners, "writer");
    refused_whole_then_the_record_alone(&listeners, config).await;
}

#[tokio::test]
#[ignore = "needs Apache Kafka: make test runs it"]
async fn a_topic_that_does_not_exist_fails_every_record_within_the_deadline() {
    let listeners = test_support::listeners();
    let producer = KafkaProducer::new(KafkaConfig::plaintext(vec![listeners.plaintext.clone()]));
    let missing = test_support::unique_topic("no-such-topic");
    let outcomes = producer
        .produce(
            &missing,
            (0..3).map(|n| record(n, 50)).collect(),
            Instant::now() + Duration::from_secs(5),
        )
        .await;
    for outcome in &outcomes {
        let text = error_chain(outcome.as_ref().unwrap_err());
        assert!(
            text.contains(&missing) && text.contains("does not exist"),
            "{text}"
        );
    }
    // The broker did not create it (auto.create.topics.enable=false).
    let check = test_support::admin(&listeners.internal, &["create-topic", &missing, "1"])
        .await
        .unwrap();
    assert!(check.contains("created"), "{check}");
}

#[tokio::test]
#[ignore = "needs Apache Kafka: make test runs it"]
async fn a_principal_denied_write_is_told_so_and_nothing_is_acknowledged() {
    let listeners = test_support::listeners();
    // A topic of its own: an ACL makes the topic's ACLs non-empty, and then
    // no one without an ALLOW may use it. The principal may describe the
    // topic (as an IAM policy with kafka-cluster:DescribeTopic and no
    // WriteData allows) but not write to it.
    let topic = topic(&listeners, "acl-denied", &[]).await;
    for (verb, operation) in [("allow", "DESCRIBE"), ("deny", "WRITE")] {
        test_support::admin(
            &listeners.internal,
            &[verb, "User:denied", operation, &topic],
        )
        .await
        .unwrap();
    }
    let producer = scram_producer(&listeners, "denied");
    let records: Vec<OutgoingRecord> = (0..5).map(|n| record(n, 100)).collect();
    let outcomes = producer
        .produce(
            &topic,
            records.clone(),
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    for outcome in &outcomes {
        let error = outcome.as_ref().unwrap_err();
        let text = error_chain(error);
        assert!(text.contains("TopicAuthorizationFailed"), "{text}");
        // Not the records' fault: reported for the mapping to keep, never
        // dead-lettered as bad input.
        assert!(!error.is_permanent(), "{text}");
    }
    delivered_is_what_landed(&listeners, &topic, &records, &outcomes).await;
}

/// Without DESCRIBE the broker hides the topic: the producer cannot tell
/// that from a missing topic, and says both.
#[tokio::test]
#[ignore = "needs Apache Kafka: make test runs it"]
async fn a_topic_the_principal_may_not_describe_is_reported_as_missing_or_unauthorized() {
    let listeners = test_support::listeners();
    let topic = topic(&listeners, "acl-hidden", &[]).await;
    test_support::admin(
        &listeners.internal,
        &["deny", "User:denied", "WRITE", &topic],
    )
    .await
    .unwrap();
    let producer = scram_producer(&listeners, "denied");
    let outcomes = producer
        .produce(
            &topic,
            vec![record(0, 100)],
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    let text = error_chain(outcomes[0].as_ref().unwrap_err());
    assert!(text.contains("not allowed to describe"), "{text}");
    let landed = test_support::read_back(&listeners.plaintext, &topic, 1, 0)
        .await
        .unwrap();
    assert!(landed.values().is_empty());
}

#[tokio::test]
#[ignore = "needs Apache Kafka: make test runs it"]
async fn a_throttled_producer_delivers_what_its_deadline_allows_and_reports_the_rest() {
    let listeners = test_support::listeners();
    test_support::admin(
        &listeners.internal,
        &["quota", "throttled", "producer_byte_rate", "50000"],
    )
    .await
    .unwrap();
    let producer = scram_producer(&listeners, "throttled");
    let records: Vec<OutgoingRecord> = (0..400).map(|n| record(n, 1_000)).collect();

    // Enough time: throttled, but every record lands.
    let topic_a = topic(&listeners, "throttled-all", &[]).await;
    let outcomes = producer
        .produce(
            &topic_a,
            records.clone(),
            Instant::now() + Duration::from_secs(25),
        )
        .await;
    assert!(
        outcomes.iter().all(Result::is_ok),
        "{:?}",
        outcomes.iter().find(|o| o.is_err())
    );
    delivered_is_what_landed(&listeners, &topic_a, &records, &outcomes).await;

    // Too little time for the quota: what did not get through is reported,
    // and what was acknowledged is on the topic.
    let topic_b = topic(&listeners, "throttled-part", &[]).await;
    let many: Vec<OutgoingRecord> = (0..2_000).map(|n| record(n, 1_000)).collect();
    let outcomes = producer
        .produce(
            &topic_b,
            many.clone(),
            Instant::now() + Duration::from_secs(3),
        )
        .await;
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    assert!(failed > 0, "the quota did not hold the producer back");
    // A request cut at the deadline may still be written later (rskafka
    // finishes it on its connection): such a record is reported and comes
    // again on the retry, at least once. Every acknowledged one is there.
    let landed = test_support::read_back(&listeners.plaintext, &topic_b, 1, many.len() - failed)
        .await
        .unwrap()
        .values();
    for (record, outcome) in many.iter().zip(&outcomes) {
        if outcome.is_ok() {
            let value = String::from_utf8(record.value.clone().unwrap()).unwrap();
            assert!(
                landed.contains(&value),
                "acknowledged but missing: {value:.20}"
            );
        }
    }
}
