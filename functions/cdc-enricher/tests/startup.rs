//! A bad configuration stops the function at start-up with one log line and
//! an init error reported to the Runtime API, never Rust debug text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lambda_stream_kit::testing::start_expecting_failure;

#[tokio::test]
async fn an_invalid_timeout_names_the_variable() {
    start_expecting_failure(
        env!("CARGO_BIN_EXE_cdc-enricher"),
        &[
            ("ENRICH_IP", "192.0.2.1"),
            ("ENRICHER_TOKEN", "t"),
            ("ENRICH_IP_TIMEOUT_MS", "soon"),
        ],
    )
    .await
    .assert_reported("Config.Invalid", &["ENRICH_IP_TIMEOUT_MS"]);
}
