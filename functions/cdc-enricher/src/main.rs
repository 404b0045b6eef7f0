//! CDC enricher: wiring only; the logic is in the library's `handler`.

use std::process::ExitCode;

use cdc_enricher::auth::secrets_manager_reader;
use cdc_enricher::config::Config;
use cdc_enricher::handler::{function_handler, App};
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
    let enricher = match App::new(config, secrets_manager_reader(Env::process())) {
        Ok(enricher) => enricher,
        Err(error) => return runtime_api::init_failed(&env, error.into()).await,
    };
    let enricher = &enricher;
    runtime_api::loop_ended(
        run(service_fn(
            move |event: LambdaEvent<Box<serde_json::value::RawValue>>| async move {
                function_handler(enricher, event).await
            },
        ))
        .await,
    )
}
