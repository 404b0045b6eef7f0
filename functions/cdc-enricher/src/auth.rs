//! Who may call through the Function URL.
//!
//! A DoubleCloud transfer sends a configurable `Authorization` header with
//! every call. When a token is configured, a Function-URL request must carry
//! `Authorization: Bearer <token>` (the scheme is case-insensitive, as in
//! RFC 9110; the token must match exactly). The comparison is constant-time
//! (`subtle`), so response timing does not reveal how much of a guess was
//! right; only the length can be learnt. The token from Secrets Manager is
//! read on the first Function-URL call, trimmed, and cached for the life of
//! the execution environment; a failed read is retried on the next call.
//!
//! Direct invocations are authorised by IAM before they reach the function,
//! so they are never checked here.
//!
//! There is no token only when the configuration says so
//! (`ENRICHER_AUTH=none`, [`TokenSource::None`]): without a token and
//! without that opt-out the function refuses to start rather than let every
//! Function-URL caller in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lambda_stream_kit::aws::SecretsManager;
use lambda_stream_kit::config::{Env, Secret};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::TokenSource;

/// Reads a secret by ARN, giving up at the deadline. Boxed so that tests
/// can count or fail reads without AWS.
pub type SecretReader = Box<
    dyn Fn(String, Instant) -> Pin<Box<dyn Future<Output = Result<Secret, String>> + Send>>
        + Send
        + Sync,
>;

/// The production reader: Secrets Manager with the credentials and region
/// that Lambda puts in `env` ([`lambda_stream_kit::aws::SecretsManager`]:
/// one signed call over the shared HTTPS client, no AWS SDK; profiles and
/// instance metadata are not consulted). The reader is made on the first
/// read, so a function without a secret never pays for it, and kept; a
/// missing variable is an error for that call and is looked for again on
/// the next. Each read gives up at the invocation deadline.
pub fn secrets_manager_reader(env: Env<'static>) -> SecretReader {
    let env = Arc::new(env);
    let client: Arc<OnceCell<SecretsManager>> = Arc::new(OnceCell::new());
    Box::new(move |arn, deadline| {
        let (env, client) = (Arc::clone(&env), Arc::clone(&client));
        Box::pin(async move {
            let client = client
                .get_or_try_init(|| async { SecretsManager::from_env(&env) })
                .await
                .map_err(|e| e.to_string())?;
            client
                .secret_string(&arn, deadline)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

/// Why a request was refused. Only ever logged: the caller gets a bare 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// A header whose scheme is not `Bearer`.
    NotBearer,
    /// A bearer token that does not match.
    WrongToken,
}

impl Refusal {
    /// A short description for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "no Authorization header",
            Self::NotBearer => "Authorization is not a Bearer token",
            Self::WrongToken => "wrong bearer token",
        }
    }
}

/// The configured token could not be loaded: the call fails (HTTP 503) so
/// the engine retries, rather than letting anyone in or refusing everyone.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the caller token from {arn}: {reason}")]
pub struct TokenUnavailable {
    arn: String,
    reason: String,
}

/// Checks Function-URL callers against the configured token.
pub struct TokenGuard {
    source: TokenSource,
    loaded: OnceCell<Secret>,
    read: SecretReader,
}

impl std::fmt::Debug for TokenGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGuard")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TokenGuard {
    /// A guard for `source`; `read` is only used for [`TokenSource::SecretArn`].
    pub fn new(source: TokenSource, read: SecretReader) -> Self {
        Self {
            source,
            loaded: OnceCell::new(),
            read,
        }
    }

    /// `Ok(None)` when the request may proceed, `Ok(Some(refusal))` when it
    /// must get a 401.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<Refusal>, TokenUnavailable> {
        let expected = match &self.source {
            TokenSource::None => return Ok(None),
            TokenSource::Inline(token) => token,
            TokenSource::SecretArn(arn) => self
                .loaded
                .get_or_try_init(|| async {
                    let secret = (self.read)(arn.clone(), deadline).await;
                    match secret.map(|s| s.expose().trim().to_owned()) {
                        Ok(token) if !token.is_empty() => Ok(Secret::new(token)),
                        Ok(_) => Err("the secret is empty".to_owned()),
                        Err(reason) => Err(reason),
                    }
                })
                .await
                .map_err(|reason| TokenUnavailable {
                    arn: arn.clone(),
                    reason,
                })?,
        };
        Ok(refusal(authorization, expected))
    }
}

fn refusal(authorization: Option<&str>, expected: &Secret) -> Option<Refusal> {
    let Some(header) = authorization else {
        return Some(Refusal::Missing);
    };
    let Some((scheme, token)) = header.trim().split_once(' ') else {
        return Some(Refusal::NotBearer);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Some(Refusal::NotBearer);
    }
    let matches: bool = token
        .trim_start_matches(' ')
        .as_bytes()
        .ct_eq(expected.expose().as_bytes())
        .into();
    (!matches).then_some(Refusal::WrongToken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    fn no_reader() -> SecretReader {
        Box::new(|_, _| Box::pin(async { Err("no reads expected".to_owned()) }))
    }

    /// A reader answering from `answers` in turn, counting calls.
    pub(crate) fn scripted_reader(
        answers: Vec<Result<&'static str, &'static str>>,
    ) -> (SecretReader, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        let reader: SecretReader = Box::new(move |_, _| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let answer = answers[n.min(answers.len() - 1)];
            Box::pin(async move { answer.map(Secret::new).map_err(str::to_owned) })
        });
        (reader, count)
    }

    #[tokio::test]
    async fn without_a_token_everyone_passes() {
        let guard = TokenGuard::new(TokenSource::None, no_reader());
        assert_eq!(guard.check(None, later()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn only_the_exact_bearer_token_passes() {
        let guard = TokenGuard::new(TokenSource::Inline(Secret::new("s3cret")), no_reader());
        let cases = [
            (Some("Bearer s3cret"), None),
            (Some("bearer s3cret"), None),
            (None, Some(Refusal::Missing)),
            (Some("s3cret"), Some(Refusal::NotBearer)),
            (Some("Basic s3cret"), Some(Refusal::NotBearer)),
            (Some("Bearer s3cre"), Some(Refusal::WrongToken)),
            (Some("Bearer s3cret2"), Some(Refusal::WrongToken)),
            (Some("Bearer S3CRET"), Some(Refusal::WrongToken)),
            (Some("Bearer s3cret, Bearer x"), Some(Refusal::WrongToken)),
        ];
        for (header, expected) in cases {
            assert_eq!(
                guard.check(header, later()).await.unwrap(),
                expected,
                "{header:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_secret_is_read_once_trimmed_and_cached() {
        let (reader, count) = scripted_reader(vec![Ok("tok\n")]);
        let guard = TokenGuard::new(TokenSource::SecretArn("arn".into()), reader);
        assert_eq!(
            guard.check(Some("Bearer tok"), later()).await.unwrap(),
            None
        );
        assert_eq!(
            guard.check(Some("Bearer nope"), later()).await.unwrap(),
            Some(Refusal::WrongToken)
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn without_aws_credentials_the_secret_read_fails_naming_them() {
        let reader = secrets_manager_reader(Env::from_pairs(&[("AWS_REGION", "eu-west-1")]));
        let guard = TokenGuard::new(TokenSource::SecretArn("arn:x".into()), reader);
        let err = guard.check(Some("Bearer tok"), later()).await.unwrap_err();
        assert!(
            err.to_string().contains("arn:x") && err.to_string().contains("AWS_ACCESS_KEY_ID"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failed_or_empty_secret_read_is_an_error_and_is_retried() {
        let (reader, count) = scripted_reader(vec![Err("AccessDenied"), Ok("  "), Ok("tok")]);
        let guard = TokenGuard::new(TokenSource::SecretArn("arn:x".into()), reader);
        let err = guard.check(Some("Bearer tok"), later()).await.unwrap_err();
        assert!(
            err.to_string().contains("arn:x") && err.to_string().contains("AccessDenied"),
            "{err}"
        );
        let err = guard.check(Some("Bearer tok"), later()).await.unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        assert_eq!(
            guard.check(Some("Bearer tok"), later()).await.unwrap(),
            None
        );
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }
}
