//! Kafka tag handler: wiring only; the logic is in the library crate.

use std::process::ExitCode;

use kafka_tag_handler::config::Config;
use kafka_tag_handler::rules::Tagger;
use kafka_tag_handler::{function_handler, App};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer};
use lambda_stream_kit::runtime_api::{self, FunctionError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    runtime_api::serve(setup, function_handler).await
}

/// The settings, the compiled tag rules and the producer (it connects on
/// first use).
fn setup(env: &Env<'_>) -> Result<App, FunctionError> {
    let config = Config::from_env(env)?;
    let tagger = Tagger::load(&config.rules)?;
    let sink = KafkaProducer::new(KafkaConfig::from_env(env)?);
    tracing::info!(
        response_topic = config.response_topic.as_deref(),
        error_topic = config.error_topic.as_deref(),
        on_error = %config.on_error,
        rules = %config.rules,
        "configured"
    );
    Ok(App {
        config,
        tagger,
        sink,
    })
}
