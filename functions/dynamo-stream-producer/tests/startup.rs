//! A bad configuration stops the function at start-up with one log line and
//! an init error reported to the Runtime API, never Rust debug text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::start_expecting_failure;

#[tokio::test]
async fn a_missing_broker_list_names_the_variable_and_its_alternative() {
    start_expecting_failure(env!("CARGO_BIN_EXE_dynamo-stream-producer"), &[])
        .await
        .assert_reported(
            "Config.Missing",
            &["KAFKA_BOOTSTRAP_SERVERS", "MSK_CLUSTER_ARN"],
        );
}
