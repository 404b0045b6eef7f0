//! A bad configuration stops the function at start-up with one log line and
//! an init error reported to the Runtime API, never Rust debug text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::start_expecting_failure;

#[tokio::test]
async fn an_unknown_on_error_mode_names_the_variable() {
    start_expecting_failure(
        env!("CARGO_BIN_EXE_kafka-tag-handler"),
        &[("RESPONSE_TOPIC", "out"), ("ON_ERROR", "maybe")],
    )
    .await
    .assert_reported("Config.Invalid", &["ON_ERROR", "maybe"]);
}
