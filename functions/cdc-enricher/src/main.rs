//! CDC enricher: wiring only; the logic is in the library's `handler`.

use std::process::ExitCode;

use cdc_enricher::auth::secrets_manager_reader;
use cdc_enricher::config::Config;
use cdc_enricher::handler::{self, App};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::runtime_api::{self, FunctionError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    runtime_api::serve(setup, handler::function_handler).await
}

/// The settings, the IP source and the token check (whose Secrets Manager
/// client is built on first use).
fn setup(env: &Env<'_>) -> Result<App, FunctionError> {
    let config = Config::from_env(env)?;
    Ok(App::new(config, secrets_manager_reader(Env::process()))?)
}
