//! Kafka tag handler: wiring only; the logic is in the library crate.

use kafka_tag_handler::config::Config;
use kafka_tag_handler::rules::Tagger;
use kafka_tag_handler::source::Payload;
use kafka_tag_handler::{function_handler, App};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_stream_kit::telemetry::init();
    let (app, producer) = setup(&Env::process()).map_err(|e| {
        // Logged as text, so the init error names the variable or the
        // rules file place in plain words.
        tracing::error!(error = %e, "cannot start");
        Error::from(e)
    })?;
    run(service_fn(|event: LambdaEvent<Payload>| {
        function_handler(event, &app, &producer)
    }))
    .await
}

fn setup(env: &Env<'_>) -> Result<(App, KafkaProducer), String> {
    let config = Config::from_env(env).map_err(|e| e.to_string())?;
    let tagger = Tagger::load(&config.rules).map_err(|e| e.to_string())?;
    let producer = KafkaProducer::new(KafkaConfig::from_env(env).map_err(|e| e.to_string())?);
    tracing::info!(
        response_topic = config.response_topic.as_deref(),
        error_topic = config.error_topic.as_deref(),
        on_error = %config.on_error,
        rules = ?config.rules,
        "configured"
    );
    Ok((App { config, tagger }, producer))
}
