//! A bad configuration stops the function at start-up with one log line and
//! an init error reported to the Runtime API, never Rust debug text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::start_expecting_failure;

const BIN: &str = env!("CARGO_BIN_EXE_cdc-enricher");

#[tokio::test]
async fn an_invalid_timeout_names_the_variable() {
    let env = [
        ("ENRICH_IP", "192.0.2.1"),
        ("ENRICHER_AUTH", "none"),
        ("ENRICH_IP_TIMEOUT_MS", "soon"),
    ];
    start_expecting_failure(BIN, &env)
        .await
        .assert_reported("Config.Invalid", &["ENRICH_IP_TIMEOUT_MS"]);
}

#[tokio::test]
async fn an_inline_token_is_refused_in_lambda_and_the_secret_variable_named() {
    let env = [("ENRICH_IP", "192.0.2.1"), ("ENRICHER_TOKEN", "t")];
    start_expecting_failure(BIN, &env).await.assert_reported(
        "Config.LocalOnly",
        &["ENRICHER_TOKEN", "ENRICHER_TOKEN_SECRET_ARN"],
    );
}

#[tokio::test]
async fn no_token_and_no_opt_out_refuses_to_start() {
    start_expecting_failure(BIN, &[("ENRICH_IP", "192.0.2.1")])
        .await
        .assert_reported("Config.Conflict", &["ENRICHER_AUTH=none"]);
}
