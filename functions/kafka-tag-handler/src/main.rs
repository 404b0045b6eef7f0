//! Kafka tag handler: wiring only; the logic is in the library crate.

use std::process::ExitCode;

use kafka_tag_handler::config::Config;
use kafka_tag_handler::rules::Tagger;
use kafka_tag_handler::source::Payload;
use kafka_tag_handler::{function_handler, App};
use lambda_runtime::{run, service_fn, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer};
use lambda_stream_kit::runtime_api::{self, FunctionError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    lambda_stream_kit::init();
    let env = Env::process();
    let app = match setup(&env) {
        Ok(app) => app,
        Err(error) => return runtime_api::init_failed(&env, error).await,
    };
    runtime_api::loop_ended(
        run(service_fn(|event: LambdaEvent<Payload>| {
            function_handler(&app, event)
        }))
        .await,
    )
}

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
