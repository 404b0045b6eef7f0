//! Kinesis event logger: wiring only; the logic is in [`handler`].

mod handler;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_stream_kit::telemetry::init();
    run(service_fn(|event: LambdaEvent<serde_json::Value>| handler::function_handler(event))).await
}
