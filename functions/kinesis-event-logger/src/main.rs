//! Kinesis event logger: wiring only; the logic is in the library's `handler`.

use std::process::ExitCode;

use kinesis_event_logger::config::Config;
use kinesis_event_logger::handler::{self, App};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::runtime_api::{self, FunctionError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    runtime_api::serve(setup, handler::function_handler).await
}

/// The settings; the logger needs no client.
fn setup(env: &Env<'_>) -> Result<App, FunctionError> {
    Ok(App {
        config: Config::from_env(env)?,
    })
}
