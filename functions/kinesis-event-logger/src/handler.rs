//! Skeleton: answers every batch as fully handled.

use aws_lambda_events::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent};

/// Handles one Kinesis batch.
pub async fn function_handler(_event: LambdaEvent<serde_json::Value>) -> Result<KinesisEventResponse, Error> {
    Ok(lambda_stream_kit::batch::kinesis_response(None))
}
