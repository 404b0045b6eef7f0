//! The producer behind the DynamoDB stream mapping as `template.yaml`
//! deploys it: the mapping's settings and the function's environment come
//! from the template, the mapping is emulated
//! (`test_support::stream_mapping`), and each test asserts
//! where every record ends up once the mapping has acted on the answers:
//! on the topic, on the dead-letter topic, or in the on-failure store with
//! the record itself. None may be committed without being one of those.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::{function_handler, App, StreamBatch};
use lambda_runtime::LambdaEvent;
use lambda_stream_kit::config::Env;
use serde_json::Value;
use test_support::free_port;
use test_support::stream_mapping::{
    run_shard, sequence_number, Invocation, OnFailure, StreamKind, StreamRecord, Template,
};

const MAPPING: &str = "DynamoStreamProducerTrigger";
const FUNCTION: &str = "DynamoStreamProducerFunction";

fn template() -> Template {
    Template::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")).unwrap()
}

/// The function's environment as the template sets it, with the broker and
/// topic names swapped for the test's own (each swap checks that the
/// template sets the variable at all).
fn deployed_config(broker: &str, topics: &[(&str, &str)]) -> Config {
    let mut env = template().function_environment(FUNCTION).unwrap();
    for (name, value) in topics {
        let slot = env
            .iter_mut()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("template.yaml does not set {name}"));
        slot.1 = (*value).to_owned();
    }
    // What the template leaves to deploy time: the brokers and their auth.
    env.retain(|(k, _)| !k.starts_with("KAFKA_") && k != "MSK_CLUSTER_ARN");
    env.push(("KAFKA_BOOTSTRAP_SERVERS".into(), broker.into()));
    env.push(("KAFKA_AUTH".into(), "none".into()));
    // Each invocation gets a 3 s deadline here; keep 1 s of it to answer.
    env.push(("DEADLINE_MARGIN_MS".into(), "1000".into()));
    Config::from_env(&Env::from_pairs(&env)).unwrap()
}

fn stream_records(event: &str, age: Duration) -> Vec<StreamRecord> {
    let event: Value = serde_json::from_str(event).unwrap();
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| StreamRecord {
            sequence_number: sequence_number(r).unwrap().to_owned(),
            age_at_start: age,
            json: r.clone(),
        })
        .collect()
}

async fn invoke(app: &App, event: Value) -> Invocation {
    let batch: StreamBatch = serde_json::from_value(event).unwrap();
    let context = common::context(Duration::from_secs(3));
    match function_handler(app, LambdaEvent::new(batch, context)).await {
        Ok(response) => Invocation::Answered(serde_json::to_value(response).unwrap()),
        Err(error) => Invocation::Failed(error.to_string()),
    }
}

fn keys(record_keys: impl IntoIterator<Item = Option<Vec<u8>>>) -> BTreeSet<String> {
    record_keys
        .into_iter()
        .map(|key| String::from_utf8(key.unwrap()).unwrap())
        .collect()
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn a_broker_outage_past_the_age_limit_keeps_the_batch_in_s3_and_the_replay_publishes_it() {
    let settings = template().stream_mapping(MAPPING).unwrap();
    assert_eq!(
        settings.on_failure,
        OnFailure::S3,
        "only an S3 destination keeps the records themselves"
    );
    let age_limit = settings
        .maximum_record_age
        .expect("template.yaml sets a record age limit");
    let (event, _) = common::batch(0..5, 5);
    // The broker has been down for nearly the whole window already.
    let records = stream_records(&event, age_limit - settings.function_timeout * 3);

    let broker = test_support::broker();
    let topic = test_support::unique_topic("ddb-outage");
    let dlq = test_support::unique_topic("ddb-outage-dlq");
    test_support::create_topic(&broker, &topic, 6)
        .await
        .unwrap();
    test_support::create_topic(&broker, &dlq, 1).await.unwrap();
    let names = [
        ("TOPIC_NAME", topic.as_str()),
        ("DEAD_LETTER_TOPIC", dlq.as_str()),
    ];

    // The outage: nothing listens where the brokers should be.
    let down = deployed_config(&format!("127.0.0.1:{}", free_port()), &names);
    let app = App::new(down.clone());
    let run = run_shard(&settings, StreamKind::DynamoDb, &records, |event| {
        invoke(&app, event)
    })
    .await;
    assert!(
        run.committed.is_empty(),
        "nothing committed: {:?}",
        run.committed
    );
    let all: Vec<String> = records.iter().map(|r| r.sequence_number.clone()).collect();
    assert_eq!(
        run.stored_with_records(),
        all,
        "the whole batch, records included"
    );
    assert_eq!(
        run.on_failure[0]["requestContext"]["condition"],
        "RecordAgeExceeded"
    );
    assert!(
        run.invocations >= 3,
        "retried while the records were young enough"
    );

    // The broker is back: the replay sends the stored event as it was.
    let up = deployed_config(&broker, &names);
    let app = App::new(up.clone());
    let payload: Value =
        serde_json::from_str(run.on_failure[0]["payload"].as_str().unwrap()).unwrap();
    match invoke(&app, payload).await {
        Invocation::Answered(answer) => {
            assert_eq!(answer, serde_json::json!({"batchItemFailures": []}))
        }
        Invocation::Failed(error) => panic!("replay failed: {error}"),
    }
    let landed = test_support::read_topic(&broker, &topic, 6, 5, Duration::from_secs(20))
        .await
        .unwrap();
    let expected: BTreeSet<String> = (0..5).map(|k| format!("order-{k}")).collect();
    assert_eq!(
        keys(landed.into_iter().map(|(_, r)| r.record.key)),
        expected,
        "nothing lost"
    );
}

#[tokio::test]
#[ignore = "needs a broker: make test runs it"]
async fn poison_records_among_good_ones_go_to_the_dead_letter_topic_and_never_block_the_shard() {
    let settings = template().stream_mapping(MAPPING).unwrap();
    let broker = test_support::broker();
    let topic = test_support::unique_topic("ddb-poison");
    let dlq = test_support::unique_topic("ddb-poison-dlq");
    test_support::create_topic(&broker, &topic, 6)
        .await
        .unwrap();
    test_support::create_topic(&broker, &dlq, 1).await.unwrap();
    let config = deployed_config(
        &broker,
        &[
            ("TOPIC_NAME", topic.as_str()),
            ("DEAD_LETTER_TOPIC", dlq.as_str()),
        ],
    );
    let app = App::new(config.clone());

    // Good records with the poison fixtures between them.
    let (good, _) = common::batch(0..4, 4);
    let mut records = stream_records(&good, Duration::ZERO);
    for (i, file) in ["dynamodb-bad-number.json", "dynamodb-missing-image.json"]
        .iter()
        .enumerate()
    {
        let path = format!("{}/../../events/bad/{file}", env!("CARGO_MANIFEST_DIR"));
        let poison = stream_records(&std::fs::read_to_string(path).unwrap(), Duration::ZERO);
        records.insert(1 + 2 * i, poison[0].clone());
    }
    let run = run_shard(&settings, StreamKind::DynamoDb, &records, |event| {
        invoke(&app, event)
    })
    .await;

    assert_eq!(
        run.invocations, 1,
        "no retry: the poison did not hold the shard"
    );
    assert!(run.on_failure.is_empty());
    assert_eq!(run.committed.len(), records.len());
    let landed = test_support::read_topic(&broker, &topic, 6, 4, Duration::from_secs(20))
        .await
        .unwrap();
    let expected: BTreeSet<String> = (0..4).map(|k| format!("order-{k}")).collect();
    assert_eq!(
        keys(landed.into_iter().map(|(_, r)| r.record.key)),
        expected
    );
    let letters = test_support::read_topic(&broker, &dlq, 1, 2, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(letters.len(), 2, "both poison records dead-lettered");
}
