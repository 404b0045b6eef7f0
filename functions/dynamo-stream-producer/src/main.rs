//! DynamoDB stream producer: wiring only; the logic is in [`handler`].

use std::process::ExitCode;

use lambda_runtime::{run, service_fn, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::runtime_api;

use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::{self, App, StreamBatch};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    lambda_stream_kit::init();
    let env = Env::process();
    let config = match Config::from_env(&env) {
        Ok(config) => config,
        Err(error) => return runtime_api::init_failed(&env, error.into()).await,
    };
    let app = App::new(config);
    runtime_api::loop_ended(
        run(service_fn(|event: LambdaEvent<StreamBatch>| {
            handler::function_handler(&app, event)
        }))
        .await,
    )
}
