//! DynamoDB stream producer: wiring only; the logic is in [`handler`].
// The handler future nests the producer's per-partition futures deeply enough
// that computing its layout needs more than the default query depth.
#![recursion_limit = "256"]

use std::process::ExitCode;

use lambda_runtime::{run, service_fn, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::KafkaProducer;
use lambda_stream_kit::runtime_api;

use dynamo_stream_producer::handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    lambda_stream_kit::telemetry::init();
    lambda_stream_kit::kafka::tls::install_process_default();
    let env = Env::process();
    let config = match handler::Config::from_env(&env) {
        Ok(config) => config,
        Err(error) => return runtime_api::init_failed(&env, error.into()).await,
    };
    let producer = KafkaProducer::new(config.kafka.clone());
    runtime_api::loop_ended(
        run(service_fn(|event: LambdaEvent<handler::StreamBatch>| {
            handler::function_handler(&producer, &config, event)
        }))
        .await,
    )
}
