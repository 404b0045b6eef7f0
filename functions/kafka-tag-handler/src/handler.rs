//! Skeleton: answers every batch as fully handled.

use lambda_runtime::{Error, LambdaEvent};
use lambda_stream_kit::batch::KafkaEventResponse;

/// Handles one Kafka batch.
pub async fn function_handler(_event: LambdaEvent<serde_json::Value>) -> Result<KafkaEventResponse, Error> {
    Ok(KafkaEventResponse::default())
}
