//! Kinesis event logger: wiring only; the logic is in the library's `handler`.

use std::process::ExitCode;

use kinesis_event_logger::handler;
use lambda_runtime::{run, service_fn, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::runtime_api;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    lambda_stream_kit::telemetry::init();
    let env = Env::process();
    let config = match handler::Config::from_env(&env) {
        Ok(config) => config,
        Err(error) => return runtime_api::init_failed(&env, error.into()).await,
    };
    let config = &config;
    runtime_api::loop_ended(
        run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
            handler::function_handler(event, config)
        }))
        .await,
    )
}
