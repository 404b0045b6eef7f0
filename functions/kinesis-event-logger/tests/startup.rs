//! A bad configuration stops the function at start-up with one log line and
//! an init error reported to the Runtime API, never Rust debug text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::start_expecting_failure;

#[tokio::test]
async fn an_invalid_data_limit_names_the_variable() {
    start_expecting_failure(
        env!("CARGO_BIN_EXE_kinesis-event-logger"),
        &[("LOG_DATA_MAX_BYTES", "lots")],
    )
    .await
    .assert_reported("Config.Invalid", &["LOG_DATA_MAX_BYTES", "lots"]);
}
