//! AWS plumbing: [`SecretsManager`], a Secrets Manager reader without the
//! SDK for functions that need nothing else from AWS (feature `aws`), and,
//! with the `aws-sdk` feature, one shared SDK configuration whose HTTPS
//! client uses the same rustls `ring` provider as the Kafka connection and
//! bounded Secrets Manager reads through the SDK.
//!
//! `sdk_config` (`aws-sdk`) runs the SDK's full default chain (environment, profile
//! files, web identity, SSO, ECS and EC2 metadata), which the Kafka
//! functions need for MSK IAM and `kafka:GetBootstrapBrokers`.
//!
//! [`SecretsManager`] makes one signed `GetSecretValue` call over the
//! shared [`HttpsClient`], with the credentials and region that Lambda puts
//! in the environment: the first place the SDK's default chain looks, and
//! in Lambda the place it finds them. Signing is the SDK's own SigV4 signer
//! (`aws-sigv4`). An SDK client is not used there on purpose: every SDK
//! client links the SDK's default HTTPS stack (hyper with HTTP/2, and
//! rustls on `aws-lc-rs`), whatever HTTP client it is then given, because
//! the default is chosen at run time. In the enricher, which only reads a
//! token, the SDK and that stack were half of the binary (9.3 MB before,
//! 4.7 MB after, arm64).
//!
//! Nothing here touches the network until a call is made, so building it at
//! start-up never slows a cold start.

use std::time::{Duration, SystemTime};

#[cfg(feature = "aws-sdk")]
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
#[cfg(feature = "aws-sdk")]
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;

use crate::config::{Env, Secret};
use crate::https::{read_body, HttpsClient};
use crate::tls::TlsError;

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
    /// The service answered with an error, or could not be reached.
    #[error("{operation} failed: {message}")]
    Service {
        /// What was being called.
        operation: &'static str,
        /// A description of the failure.
        message: String,
    },
    /// The secret exists but holds no string.
    #[error("secret has no SecretString")]
    EmptySecret,
    /// The environment lacks what a client needs (credentials, region), or
    /// has a value it cannot use.
    #[error("{0}")]
    Environment(String),
    /// The HTTPS client could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Loads the SDK configuration from the standard chain (environment first,
/// which is how Lambda provides credentials), with a `ring`-based HTTPS
/// client.
#[cfg(feature = "aws-sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-sdk")))]
pub async fn sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// An SDK configuration for a local endpoint (moto, in the broker-backed
/// tests): every service at `endpoint_url`, in `region`, with static
/// credentials. Deployed functions use [`sdk_config`].
#[cfg(feature = "aws-sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-sdk")))]
pub async fn local_sdk_config(endpoint_url: &str, region: &str) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let credentials = aws_credential_types::Credentials::new("local", "local", None, None, "local");
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .endpoint_url(endpoint_url)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .load()
        .await
}

const GET_SECRET_VALUE: &str = "secretsmanager:GetSecretValue";

/// Reads a Secrets Manager secret's string value through the SDK, giving up
/// at `deadline`.
#[cfg(feature = "aws-sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-sdk")))]
pub async fn secret_string(
    config: &SdkConfig,
    secret_id: &str,
    deadline: Instant,
) -> Result<Secret, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let call = client.get_secret_value().secret_id(secret_id).send();
    let output = tokio::time::timeout_at(deadline, call)
        .await
        .map_err(|_| AwsError::Timeout {
            operation: GET_SECRET_VALUE,
        })?
        .map_err(|e| AwsError::Service {
            operation: GET_SECRET_VALUE,
            message: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
    output
        .secret_string()
        .map(Secret::new)
        .ok_or(AwsError::EmptySecret)
}

/// Attempts per read: the SDK's standard retry count.
const ATTEMPTS: u32 = 3;

/// Pause before the second attempt; doubled before each later one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Largest answer read: a secret holds at most 64 KiB.
const MAX_ANSWER: usize = 256 * 1024;

/// Reads Secrets Manager secrets with the credentials and region of the
/// environment, as Lambda sets them:
///
/// | variable | meaning |
/// |---|---|
/// | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | credentials (required) |
/// | `AWS_SESSION_TOKEN` | their session token (Lambda always sets one) |
/// | `AWS_REGION`, else `AWS_DEFAULT_REGION` | region (required) |
/// | `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT` | `true` picks those endpoints |
/// | `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL` | another endpoint (local emulators) |
///
/// They are read the way the SDK's environment providers read them
/// (trimmed; blank is unset); profiles, SSO and instance metadata are not
/// looked at. A read is retried on a connection failure, a 5xx answer or
/// throttling, up to three attempts, all within the caller's deadline.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    credentials: Credentials,
    region: String,
    endpoint: http::Uri,
    http: HttpsClient,
}

impl SecretsManager {
    /// The reader for `env`. A missing or unusable value is an error naming
    /// it, never a panic. No I/O.
    pub fn from_env(env: &Env<'_>) -> Result<Self, AwsError> {
        let missing = |what: &str| {
            AwsError::Environment(format!(
                "{what} not set: Secrets Manager is read with the credentials and region \
                 of the environment, as Lambda sets them (profiles and instance metadata \
                 are not used)"
            ))
        };
        let (Some(access_key), Some(secret_key)) = (
            env.optional("AWS_ACCESS_KEY_ID"),
            env.optional("AWS_SECRET_ACCESS_KEY"),
        ) else {
            return Err(missing("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are"));
        };
        let region = env
            .optional("AWS_REGION")
            .or_else(|| env.optional("AWS_DEFAULT_REGION"))
            .ok_or_else(|| missing("AWS_REGION (or AWS_DEFAULT_REGION) is"))?;
        let flag = |name: &'static str| {
            env.flag_or(name, false)
                .map_err(|e| AwsError::Environment(e.to_string()))
        };
        let (fips, dual_stack) = (
            flag("AWS_USE_FIPS_ENDPOINT")?,
            flag("AWS_USE_DUALSTACK_ENDPOINT")?,
        );
        let (name, endpoint) = match env
            .optional("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .map(|url| ("AWS_ENDPOINT_URL_SECRETS_MANAGER", url))
            .or_else(|| {
                env.optional("AWS_ENDPOINT_URL")
                    .map(|url| ("AWS_ENDPOINT_URL", url))
            }) {
            Some((name, url)) => (name, url),
            None => ("AWS_REGION", endpoint(&region, fips, dual_stack)?),
        };
        let endpoint: http::Uri = endpoint
            .parse()
            .ok()
            .filter(|uri: &http::Uri| uri.host().is_some())
            .ok_or_else(|| AwsError::Environment(format!("{name}: {endpoint:?} is not a URL")))?;
        let credentials = Credentials::new(
            access_key,
            secret_key,
            env.optional("AWS_SESSION_TOKEN"),
            None,
            "Environment",
        );
        Ok(Self {
            credentials,
            region,
            endpoint,
            http: HttpsClient::new()?,
        })
    }

    /// The secret's string value, giving up at `deadline`.
    pub async fn secret_string(
        &self,
        secret_id: &str,
        deadline: Instant,
    ) -> Result<Secret, AwsError> {
        let timeout = || AwsError::Timeout {
            operation: GET_SECRET_VALUE,
        };
        let body = serde_json::to_vec(&serde_json::json!({ "SecretId": secret_id }))
            .map_err(|e| self.failed(e.to_string()))?;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let answer = loop {
            let outcome = tokio::time::timeout_at(deadline, self.call(Bytes::from(body.clone())))
                .await
                .map_err(|_| timeout())?;
            match outcome {
                Err(Failure::Transient(reason)) if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, %reason, "retrying secretsmanager:GetSecretValue");
                    if Instant::now() + backoff >= deadline {
                        return Err(timeout());
                    }
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(Failure::Transient(reason) | Failure::Final(reason)) => {
                    return Err(self.failed(reason))
                }
                Ok(answer) => break answer,
            }
        };
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "SecretString")]
            secret_string: Option<String>,
        }
        // The answer holds the secret: the parse error is described by its
        // position only, so no part of the secret can reach a log line.
        let answer: Answer = serde_json::from_slice(&answer).map_err(|e| {
            self.failed(format!(
                "the answer is not GetSecretValue's JSON: {}",
                crate::redact::json_error(&e)
            ))
        })?;
        answer
            .secret_string
            .map(Secret::new)
            .ok_or(AwsError::EmptySecret)
    }

    /// One signed `GetSecretValue` request; the body of a 200 answer.
    async fn call(&self, body: Bytes) -> Result<Bytes, Failure> {
        let mut request = Request::post(&self.endpoint)
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-target", "secretsmanager.GetSecretValue")
            .body(Full::new(body.clone()))
            .map_err(|e| Failure::Final(e.to_string()))?;
        self.sign(&mut request, &body)
            .map_err(|e| Failure::Final(format!("cannot sign the request: {e}")))?;
        let response = self.http.send(request).await.map_err(Failure::Transient)?;
        let status = response.status();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = read_body(response, MAX_ANSWER)
            .await
            .map_err(Failure::Transient)?;
        if status == StatusCode::OK {
            return Ok(text);
        }
        let (code, message) = service_error(error_type.as_deref(), &text);
        let reason = format!("HTTP {}: {code}: {message}", status.as_u16());
        let throttled = code.contains("Throttl") || status == StatusCode::TOO_MANY_REQUESTS;
        Err(match status.is_server_error() || throttled {
            true => Failure::Transient(reason),
            false => Failure::Final(reason),
        })
    }

    /// Adds the SigV4 headers (`authorization`, `x-amz-date` and, with a
    /// session token, `x-amz-security-token`).
    fn sign(
        &self,
        request: &mut Request<Full<Bytes>>,
        body: &[u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let identity = Identity::from(self.credentials.clone());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
            .collect::<Result<Vec<_>, http::header::ToStrError>>()?;
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    fn failed(&self, message: String) -> AwsError {
        AwsError::Service {
            operation: GET_SECRET_VALUE,
            message,
        }
    }
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt.
    Transient(String),
    /// Not.
    Final(String),
}

/// The error code and message of an `awsJson1_1` error answer: the code
/// from `x-amzn-errortype` or the body's `__type` (without its namespace),
/// the message from `message` or `Message`.
fn service_error(header: Option<&str>, body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize, Default)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = header
        .map(|h| h.split(':').next().unwrap_or(h).to_owned())
        .or(parsed
            .kind
            .map(|k| k.rsplit('#').next().unwrap_or(&k).to_owned()))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "UnknownError".to_owned());
    let message = parsed
        .message
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    (code, message)
}

/// Secrets Manager's endpoint for `region`, as the SDK's endpoint rules
/// give it (the test compares the two for every partition).
fn endpoint(region: &str, fips: bool, dual_stack: bool) -> Result<String, AwsError> {
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(AwsError::Environment(format!(
            "AWS_REGION={region:?} is not a region name"
        )));
    }
    // (region prefix, DNS suffix, dual-stack suffix, FIPS dual-stack
    // suffix), from the SDK's endpoint rules: in `aws`, `aws-us-gov` and
    // (without FIPS) `aws-cn`, Secrets Manager's usual names are dual-stack
    // already. Anything not listed is the `aws` partition.
    const PARTITIONS: &[(&str, &str, &str, &str)] = &[
        (
            "cn-",
            "amazonaws.com.cn",
            "amazonaws.com.cn",
            "api.amazonwebservices.com.cn",
        ),
        ("us-gov-", "amazonaws.com", "amazonaws.com", "amazonaws.com"),
        (
            "us-isob-",
            "sc2s.sgov.gov",
            "api.aws.scloud",
            "api.aws.scloud",
        ),
        (
            "us-isof-",
            "csp.hci.ic.gov",
            "api.aws.hci.ic.gov",
            "api.aws.hci.ic.gov",
        ),
        ("us-iso-", "c2s.ic.gov", "api.aws.ic.gov", "api.aws.ic.gov"),
        (
            "eu-isoe-",
            "cloud.adc-e.uk",
            "api.cloud-aws.adc-e.uk",
            "api.cloud-aws.adc-e.uk",
        ),
        (
            "eusc-",
            "amazonaws.eu",
            "api.amazonwebservices.eu",
            "api.amazonwebservices.eu",
        ),
    ];
    let (plain, dual, fips_dual) = PARTITIONS
        .iter()
        .find(|(prefix, ..)| region.starts_with(prefix))
        .map_or(
            ("amazonaws.com", "amazonaws.com", "amazonaws.com"),
            |(_, p, d, f)| (*p, *d, *f),
        );
    let suffix = match (fips, dual_stack) {
        (_, false) => plain,
        (false, true) => dual,
        (true, true) => fips_dual,
    };
    let service = if fips {
        "secretsmanager-fips"
    } else {
        "secretsmanager"
    };
    Ok(format!("https://{service}.{region}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_support::{free_port, HttpStub};

    /// What Lambda sets.
    const LAMBDA: [(&str, &str); 4] = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_SESSION_TOKEN", "session-token"),
        ("AWS_REGION", "eu-west-1"),
    ];

    /// Lambda's variables, with `extra` added or replacing them.
    fn lambda_env(extra: &[(&str, &str)]) -> Env<'static> {
        let pairs: Vec<(&str, &str)> = extra
            .iter()
            .chain(
                LAMBDA
                    .iter()
                    .filter(|(k, _)| extra.iter().all(|(e, _)| e != k)),
            )
            .copied()
            .collect();
        Env::from_pairs(&pairs)
    }

    fn without(name: &str) -> Env<'static> {
        let pairs: Vec<_> = LAMBDA.iter().filter(|(k, _)| *k != name).copied().collect();
        Env::from_pairs(&pairs)
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn missing_credentials_or_region_are_errors_that_name_them() {
        let error = |env: Env<'static>| match SecretsManager::from_env(&env) {
            Err(AwsError::Environment(message)) => message,
            other => panic!("expected an environment error, got {other:?}"),
        };
        assert!(error(without("AWS_ACCESS_KEY_ID")).contains("AWS_ACCESS_KEY_ID"));
        assert!(error(without("AWS_SECRET_ACCESS_KEY")).contains("AWS_SECRET_ACCESS_KEY"));
        assert!(error(without("AWS_REGION")).contains("AWS_REGION"));
        // Blank counts as unset, as in the SDK's environment provider.
        assert!(error(lambda_env(&[("AWS_ACCESS_KEY_ID", " ")])).contains("AWS_ACCESS_KEY_ID"));
        assert!(error(lambda_env(&[("AWS_REGION", "EU WEST")])).contains("not a region name"));
        assert!(
            error(lambda_env(&[("AWS_ENDPOINT_URL", "not a url")])).contains("AWS_ENDPOINT_URL")
        );
        assert!(error(lambda_env(&[("AWS_USE_FIPS_ENDPOINT", "maybe")]))
            .contains("AWS_USE_FIPS_ENDPOINT"));
        // A session token is optional (long-term keys in local runs).
        assert!(SecretsManager::from_env(&without("AWS_SESSION_TOKEN")).is_ok());
    }

    #[test]
    fn the_region_and_endpoint_come_from_the_environment() {
        let reader =
            SecretsManager::from_env(&lambda_env(&[("AWS_DEFAULT_REGION", "us-east-2")])).unwrap();
        assert_eq!(reader.region, "eu-west-1");
        assert_eq!(
            reader.endpoint,
            "https://secretsmanager.eu-west-1.amazonaws.com/"
        );
        let env = Env::from_pairs(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
            ("AWS_DEFAULT_REGION", "cn-north-1"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
        ]);
        let reader = SecretsManager::from_env(&env).unwrap();
        assert_eq!(reader.region, "cn-north-1");
        assert_eq!(
            reader.endpoint,
            "https://secretsmanager-fips.cn-north-1.amazonaws.com.cn/"
        );
        let reader = SecretsManager::from_env(&lambda_env(&[
            ("AWS_ENDPOINT_URL", "http://localhost:4566"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://localhost:9000"),
        ]))
        .unwrap();
        assert_eq!(reader.endpoint, "http://localhost:9000/");
    }

    #[cfg(feature = "aws-sdk")]
    #[tokio::test]
    async fn endpoints_are_the_ones_the_sdk_resolves() {
        use aws_sdk_secretsmanager::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let regions = [
            "us-east-1",
            "eu-west-1",
            "ap-southeast-7",
            "mx-central-1",
            "il-central-1",
            "cn-north-1",
            "cn-northwest-1",
            "us-gov-west-1",
            "us-gov-east-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "us-isof-south-1",
            "eu-isoe-west-1",
            "eusc-de-east-1",
        ];
        let mut compared = 0;
        for region in regions {
            for (fips, dual_stack) in [(false, false), (true, false), (false, true), (true, true)] {
                let params = Params::builder()
                    .region(region)
                    .use_fips(fips)
                    .use_dual_stack(dual_stack)
                    .build()
                    .unwrap();
                // Combinations a partition does not offer are errors in
                // the SDK; there is nothing to compare with.
                let Ok(sdk) = DefaultResolver::new().resolve_endpoint(&params).await else {
                    continue;
                };
                assert_eq!(
                    endpoint(region, fips, dual_stack).unwrap(),
                    sdk.url(),
                    "{region} fips={fips} dual_stack={dual_stack}"
                );
                compared += 1;
            }
        }
        assert!(compared >= regions.len(), "only {compared} compared");
    }

    /// A Secrets Manager stand-in on 127.0.0.1: it answers the n-th request
    /// with `answers[n]` (status, body) and keeps each request it got.
    async fn fake_secrets_manager(answers: Vec<(u16, &'static str)>) -> HttpStub {
        HttpStub::start(
            answers
                .into_iter()
                .map(|(status, body)| (status, body.to_owned()))
                .collect(),
        )
        .await
    }

    #[tokio::test]
    async fn a_secret_is_read_with_a_request_signed_by_the_environment_credentials() {
        let stub = fake_secrets_manager(vec![(
            200,
            r#"{"ARN":"arn:aws:secretsmanager:eu-west-1:1:secret:t","Name":"t","SecretString":"tok","CreatedDate":1.523477145713E9}"#,
        )])
        .await;
        let url = stub.url();
        let reader =
            SecretsManager::from_env(&lambda_env(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", &url)]))
                .unwrap();
        let secret = reader
            .secret_string("arn:aws:secretsmanager:eu-west-1:1:secret:t", later())
            .await
            .unwrap();
        assert_eq!(secret.expose(), "tok");
        let [request] = stub.requests().await.try_into().unwrap();
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/")
        );
        assert_eq!(
            request.header("x-amz-target"),
            Some("secretsmanager.GetSecretValue"),
            "{request:?}"
        );
        assert_eq!(
            request.header("content-type"),
            Some("application/x-amz-json-1.1"),
            "{request:?}"
        );
        assert_eq!(
            request.header("x-amz-security-token"),
            Some("session-token"),
            "{request:?}"
        );
        assert!(request.header("x-amz-date").is_some(), "{request:?}");
        let authorization = request.header("authorization").unwrap_or_default();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && authorization.contains("/eu-west-1/secretsmanager/aws4_request")
                && authorization.contains("x-amz-target")
                && authorization.contains("Signature="),
            "{request:?}"
        );
        assert_eq!(
            request.body, br#"{"SecretId":"arn:aws:secretsmanager:eu-west-1:1:secret:t"}"#,
            "{request:?}"
        );
    }

    #[tokio::test]
    async fn service_errors_are_reported_and_only_transient_ones_retried() {
        let stub = fake_secrets_manager(vec![
            (503, r#"{"__type":"InternalServiceError","message":"try later"}"#),
            (400, r#"{"__type":"ThrottlingException","message":"slow down"}"#),
            (200, r#"{"Name":"t","SecretString":"tok"}"#),
            (400, r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"no such secret"}"#),
            (200, r#"{"Name":"t","SecretBinary":"AAEC"}"#),
        ])
        .await;
        let url = stub.url();
        let reader = SecretsManager::from_env(&lambda_env(&[("AWS_ENDPOINT_URL", &url)])).unwrap();
        assert_eq!(
            reader.secret_string("t", later()).await.unwrap().expose(),
            "tok"
        );
        let err = reader.secret_string("missing", later()).await.unwrap_err();
        assert!(
            matches!(err, AwsError::Service { .. })
                && err
                    .to_string()
                    .contains("HTTP 400: ResourceNotFoundException: no such secret"),
            "{err}"
        );
        let err = reader.secret_string("t", later()).await.unwrap_err();
        assert!(matches!(err, AwsError::EmptySecret), "{err}");
        assert_eq!(
            stub.requests().await.len(),
            5,
            "three attempts, then one each"
        );
    }

    #[tokio::test]
    async fn an_answer_of_the_wrong_shape_is_reported_without_quoting_it() {
        // serde_json would say: invalid type: integer `4815162342`,
        // expected a string: the secret itself.
        let stub =
            fake_secrets_manager(vec![(200, r#"{"Name":"t","SecretString":4815162342}"#)]).await;
        let url = stub.url();
        let reader = SecretsManager::from_env(&lambda_env(&[("AWS_ENDPOINT_URL", &url)])).unwrap();
        let err = reader.secret_string("t", later()).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("not GetSecretValue's JSON"), "{text}");
        assert!(text.contains("data error at line 1"), "{text}");
        assert!(!text.contains("4815162342"), "{text}");
    }

    #[tokio::test]
    async fn a_silent_endpoint_gives_up_at_the_deadline() {
        let silent = HttpStub::silent().await;
        let url = silent.url();
        let reader = SecretsManager::from_env(&lambda_env(&[("AWS_ENDPOINT_URL", &url)])).unwrap();
        let started = std::time::Instant::now();
        let err = reader
            .secret_string("t", Instant::now() + Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, AwsError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retried_then_reported() {
        let url = format!("http://127.0.0.1:{}", free_port());
        let reader = SecretsManager::from_env(&lambda_env(&[("AWS_ENDPOINT_URL", &url)])).unwrap();
        let err = reader.secret_string("t", later()).await.unwrap_err();
        assert!(matches!(err, AwsError::Service { .. }), "{err}");
    }
}
