//! Kinesis event logger: wiring only; the logic is in the library's `handler`.

use kinesis_event_logger::handler;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lambda_stream_kit::config::Env;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_stream_kit::telemetry::init();
    let config = handler::Config::from_env(&Env::process()).inspect_err(|error| {
        tracing::error!(%error, "invalid configuration");
    })?;
    let config = &config;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        handler::function_handler(event, config)
    }))
    .await
}
