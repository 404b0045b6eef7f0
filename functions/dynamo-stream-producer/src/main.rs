//! DynamoDB stream producer: wiring only; the logic is in [`handler`].

use std::process::ExitCode;

use lambda_stream_kit::config::Env;
use lambda_stream_kit::runtime_api::{self, FunctionError};

use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::{self, App};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    runtime_api::serve(setup, handler::function_handler).await
}

/// The settings, and the producer built from them (it connects on first use).
fn setup(env: &Env<'_>) -> Result<App, FunctionError> {
    Ok(App::new(Config::from_env(env)?))
}
