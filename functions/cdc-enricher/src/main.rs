//! CDC enricher: wiring only; the logic is in the library's `handler`.

use cdc_enricher::auth::secrets_manager_reader;
use cdc_enricher::config::Config;
use cdc_enricher::handler::{function_handler, Enricher};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lambda_stream_kit::config::Env;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_stream_kit::telemetry::init();
    let config = Config::from_env(&Env::process())
        .map_err(|e| format!("cdc-enricher configuration: {e}"))?;
    let enricher = Enricher::new(config, secrets_manager_reader(Env::process()))
        .map_err(|e| format!("cdc-enricher TLS set-up: {e}"))?;
    let enricher = &enricher;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            function_handler(enricher, event).await
        },
    ))
    .await
}
