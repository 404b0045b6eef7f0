//! DynamoDB stream producer: wiring only; the logic is in [`handler`].
// The handler future nests the producer's per-partition futures deeply enough
// that computing its layout needs more than the default query depth.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::KafkaProducer;

use dynamo_stream_producer::handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_stream_kit::telemetry::init();
    lambda_stream_kit::kafka::tls::install_process_default();
    let config = handler::Config::from_env(&Env::process())?;
    let producer = KafkaProducer::new(config.kafka.clone());
    run(service_fn(|event: LambdaEvent<handler::StreamBatch>| {
        handler::function_handler(&producer, &config, event)
    }))
    .await
}
