//! Kinesis event logger: wiring only; the logic is in the library's `handler`.

use std::process::ExitCode;

use kinesis_event_logger::config::Config;
use kinesis_event_logger::handler::{self, App, KinesisBatch};
use lambda_runtime::{run, service_fn, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::runtime_api;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    lambda_stream_kit::init();
    let env = Env::process();
    let config = match Config::from_env(&env) {
        Ok(config) => config,
        Err(error) => return runtime_api::init_failed(&env, error.into()).await,
    };
    let app = App { config };
    runtime_api::loop_ended(
        run(service_fn(|event: LambdaEvent<KinesisBatch>| {
            handler::function_handler(&app, event)
        }))
        .await,
    )
}
