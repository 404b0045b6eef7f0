//! AWS SDK plumbing: one shared SDK configuration whose HTTPS client uses the
//! same rustls `ring` provider as the Kafka connection, and a bounded
//! Secrets Manager read.
//!
//! Nothing here touches the network until a call is made, so building it at
//! start-up never slows a cold start.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use tokio::time::Instant;

use crate::config::Secret;

/// A bounded AWS call that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// The call did not finish before the deadline.
    #[error("{operation} did not answer before the deadline")]
    Timeout {
        /// What was being called.
        operation: &'static str,
    },
    /// The service answered with an error.
    #[error("{operation} failed: {message}")]
    Service {
        /// What was being called.
        operation: &'static str,
        /// The SDK's description of the failure.
        message: String,
    },
    /// The secret exists but holds no string.
    #[error("secret has no SecretString")]
    EmptySecret,
}

/// Loads the SDK configuration from the standard chain (environment first,
/// which is how Lambda provides credentials), with a `ring`-based HTTPS
/// client.
pub async fn sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// Reads a Secrets Manager secret's string value, giving up at `deadline`.
pub async fn secret_string(
    config: &SdkConfig,
    secret_id: &str,
    deadline: Instant,
) -> Result<Secret, AwsError> {
    const OPERATION: &str = "secretsmanager:GetSecretValue";
    let client = aws_sdk_secretsmanager::Client::new(config);
    let call = client.get_secret_value().secret_id(secret_id).send();
    let output = tokio::time::timeout_at(deadline, call)
        .await
        .map_err(|_| AwsError::Timeout {
            operation: OPERATION,
        })?
        .map_err(|e| AwsError::Service {
            operation: OPERATION,
            message: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
    output
        .secret_string()
        .map(Secret::new)
        .ok_or(AwsError::EmptySecret)
}
