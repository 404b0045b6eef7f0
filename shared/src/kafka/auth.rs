//! Authentication: MSK IAM tokens, SCRAM/PLAIN credentials and `mtls`
//! client certificates.
//!
//! An MSK IAM token is a base64url SigV4-presigned `kafka-cluster:Connect`
//! URL valid for 15 minutes. rskafka asks for one on every new broker
//! connection, so [`IamTokenProvider`] caches it and signs a new one
//! [`REFRESH_MARGIN`] before the cached one (or the credentials behind it)
//! expires. MSK closes a connection when its token expires; rskafka then
//! reconnects and asks again. Tokens are [`Secret`]s and never logged.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::Region;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use rskafka::client::{Credentials, OauthBearerCredentials, SaslConfig};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::Secret;
use crate::kafka::config::AuthMode;

/// How long before expiry a cached token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// Why credentials or a token could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The AWS credential chain gave nothing usable.
    #[error("no AWS credentials for MSK IAM: {0}")]
    Credentials(String),
    /// Signing the token failed.
    #[error("cannot sign the MSK IAM token: {0}")]
    Signing(String),
    /// The SCRAM/PLAIN secret could not be read.
    #[error("cannot read the Kafka credentials secret: {0}")]
    Secret(#[from] crate::aws::AwsError),
    /// The secret is not `{"username": …, "password": …}`.
    #[error("the Kafka credentials secret must be JSON with string fields username and password")]
    SecretFormat,
    /// The `mtls` secret is not `{"certificate": …, "privateKey": …}`.
    #[error("the Kafka client certificate secret must be JSON with string fields certificate and privateKey (PEM)")]
    CertificateSecretFormat,
    /// The `mtls` secret names a key password: the key is encrypted.
    #[error("the client certificate's private key is encrypted (privateKeyPassword is set); store the key unencrypted in the secret, which Secrets Manager encrypts at rest")]
    EncryptedKey,
    /// The certificate files could not be read.
    #[error("cannot read the client certificate file {path}")]
    CertificateFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The chain or key is not usable.
    #[error(transparent)]
    Identity(#[from] crate::tls::TlsError),
}

/// Reads an `mtls` client identity from the Secrets Manager form Lambda's
/// `CLIENT_CERTIFICATE_TLS_AUTH` uses: `{"certificate": "<PEM chain, leaf
/// first>", "privateKey": "<PEM key>", "privateKeyPassword"?: …}`. An
/// encrypted key (a password given) is refused with its own error.
pub fn client_identity_from_secret_json(
    text: &Secret,
) -> Result<crate::tls::ClientIdentity, AuthError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        certificate: String,
        private_key: String,
        #[serde(default)]
        private_key_password: Option<String>,
    }
    let raw: Raw =
        serde_json::from_str(text.expose()).map_err(|_| AuthError::CertificateSecretFormat)?;
    if raw.private_key_password.is_some_and(|p| !p.is_empty()) {
        return Err(AuthError::EncryptedKey);
    }
    Ok(crate::tls::ClientIdentity::from_pem(
        raw.certificate.as_bytes(),
        raw.private_key.as_bytes(),
    )?)
}

/// Reads an `mtls` client identity from PEM files (local runs).
pub fn client_identity_from_files(
    chain: &std::path::Path,
    key: &std::path::Path,
) -> Result<crate::tls::ClientIdentity, AuthError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| AuthError::CertificateFile {
            path: path.display().to_string(),
            source,
        })
    };
    Ok(crate::tls::ClientIdentity::from_pem(
        &read(chain)?,
        &read(key)?,
    )?)
}

struct CachedToken {
    token: Secret,
    refresh_at: SystemTime,
}

/// Signs and caches MSK IAM tokens.
pub struct IamTokenProvider {
    region: Region,
    credentials: SharedCredentialsProvider,
    max_age: Option<Duration>,
    cache: Mutex<Option<CachedToken>>,
    last_error: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for IamTokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamTokenProvider")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl IamTokenProvider {
    /// A provider signing for `region` with credentials from `credentials`.
    pub fn new(region: impl Into<String>, credentials: SharedCredentialsProvider) -> Self {
        Self {
            region: Region::new(region.into()),
            credentials,
            max_age: None,
            cache: Mutex::new(None),
            last_error: std::sync::Mutex::new(None),
        }
    }

    /// A provider signing with fixed keys: local brokers that check IAM
    /// tokens (the test broker's IAM listeners) rather than AWS itself.
    pub fn from_static_keys(
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        let credentials = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "static keys",
        );
        Self::new(region, SharedCredentialsProvider::new(credentials))
    }

    /// Replaces cached tokens after `max_age` even when they are still
    /// valid. Tests use it to exercise refresh without waiting 15 minutes.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// A valid token, from the cache when it has time left.
    pub async fn token(&self) -> Result<Secret, AuthError> {
        let result = self.cached_or_new_token().await;
        if let Ok(mut last) = self.last_error.lock() {
            *last = result.as_ref().err().map(ToString::to_string);
        }
        result
    }

    /// Why the most recent token request failed, if it did. rskafka retries
    /// a failed handshake until the deadline, so this is what turns a bare
    /// timeout into an actionable error.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    async fn cached_or_new_token(&self) -> Result<Secret, AuthError> {
        let mut cache = self.cache.lock().await;
        let now = SystemTime::now();
        if let Some(cached) = cache.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| AuthError::Credentials(e.to_string()))?;
        let credentials_expiry = credentials.expiry();
        let (token, expiry_ms) =
            aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider(
                self.region.clone(),
                SharedCredentialsProvider::new(credentials),
            )
            .await
            .map_err(|e| AuthError::Signing(e.to_string()))?;
        let token_expiry =
            UNIX_EPOCH + Duration::from_millis(u64::try_from(expiry_ms).unwrap_or(0));
        let expiry = credentials_expiry.map_or(token_expiry, |c| c.min(token_expiry));
        let mut refresh_at = expiry.checked_sub(REFRESH_MARGIN).unwrap_or(now);
        if let Some(max_age) = self.max_age {
            refresh_at = refresh_at.min(now + max_age);
        }
        tracing::debug!(
            region = %self.region,
            refresh_in_s = refresh_at.duration_since(now).map(|d| d.as_secs()).unwrap_or(0),
            "signed a new MSK IAM token"
        );
        let token = Secret::new(token);
        *cache = Some(CachedToken {
            token: token.clone(),
            refresh_at,
        });
        Ok(token)
    }

    /// The rskafka SASL configuration that asks this provider for tokens.
    pub fn sasl_config(self: Arc<Self>) -> SaslConfig {
        SaslConfig::Oauthbearer(OauthBearerCredentials {
            callback: Arc::new(move || {
                let provider = Arc::clone(&self);
                Box::pin(async move {
                    provider
                        .token()
                        .await
                        .map(|t| t.expose().to_owned())
                        .map_err(|e| {
                            tracing::warn!(error = %e, "MSK IAM token unavailable");
                            Box::new(e) as Box<dyn std::error::Error + Send + Sync>
                        })
                })
            }),
            authz_id: None,
            bearer_kvs: Vec::new(),
        })
    }
}

/// A SCRAM/PLAIN user.
#[derive(Clone)]
pub struct UserPassword {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

impl std::fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPassword")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl UserPassword {
    /// Parses the Secrets Manager form `{"username": "…", "password": "…"}`,
    /// which is also what MSK's SCRAM secrets (`AmazonMSK_…`) hold.
    pub fn from_secret_json(text: &Secret) -> Result<Self, AuthError> {
        #[derive(Deserialize)]
        struct Raw {
            username: String,
            password: String,
        }
        let raw: Raw = serde_json::from_str(text.expose()).map_err(|_| AuthError::SecretFormat)?;
        Ok(Self {
            username: raw.username,
            password: Secret::new(raw.password),
        })
    }

    /// The rskafka SASL configuration for `mode`, or `None` when the mode
    /// does not use a password.
    pub fn sasl_config(&self, mode: AuthMode) -> Option<SaslConfig> {
        let credentials =
            Credentials::new(self.username.clone(), self.password.expose().to_owned());
        match mode {
            AuthMode::ScramSha512 => Some(SaslConfig::ScramSha512(credentials)),
            AuthMode::ScramSha256 => Some(SaslConfig::ScramSha256(credentials)),
            AuthMode::Plain => Some(SaslConfig::Plain(credentials)),
            AuthMode::Iam | AuthMode::ClientCertificate | AuthMode::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
    use aws_credential_types::Credentials as AwsCredentials;
    use base64::Engine;
    use ring::{digest, hmac};

    const ACCESS_KEY: &str = "AKIDEXAMPLE";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";

    /// Fixed credentials that count how often they are asked for.
    #[derive(Debug, Default)]
    struct CountingCredentials {
        calls: AtomicUsize,
        fail: bool,
    }

    /// Lets a test keep a handle on the counter it gives away.
    #[derive(Debug)]
    struct Shared(Arc<CountingCredentials>);

    impl ProvideCredentials for Shared {
        fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
        where
            Self: 'a,
        {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            if self.0.fail {
                return ProvideFuture::ready(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded("no chain"),
                ));
            }
            ProvideFuture::ready(Ok(AwsCredentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                Some(SESSION_TOKEN.to_owned()),
                None,
                "test",
            )))
        }
    }

    fn provider(creds: Arc<CountingCredentials>) -> IamTokenProvider {
        IamTokenProvider::new("us-west-2", SharedCredentialsProvider::new(Shared(creds)))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 3986 encoding as SigV4 canonical query strings use it.
    fn uri_encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// Recomputes the SigV4 query-string signature from scratch for the
    /// clock the token says it was signed at.
    fn expected_signature(params: &[(String, String)], date: &str, region: &str) -> String {
        let mut signed: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "X-Amz-Signature" && k != "User-Agent")
            .cloned()
            .collect();
        signed.sort();
        let query = signed
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let host = format!("kafka.{region}.amazonaws.com");
        let empty_hash = hex(digest::digest(&digest::SHA256, b"").as_ref());
        let canonical = format!("GET\n/\n{query}\nhost:{host}\n\nhost\n{empty_hash}");
        let day = &date[..8];
        let scope = format!("{day}/{region}/kafka-cluster/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
        );
        let sign = |key: &[u8], msg: &str| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg.as_bytes())
        };
        let k_date = sign(format!("AWS4{SECRET_KEY}").as_bytes(), day);
        let k_region = sign(k_date.as_ref(), region);
        let k_service = sign(k_region.as_ref(), "kafka-cluster");
        let k_signing = sign(k_service.as_ref(), "aws4_request");
        hex(sign(k_signing.as_ref(), &to_sign).as_ref())
    }

    #[tokio::test]
    async fn token_is_a_correctly_signed_connect_url() {
        let token = provider(Arc::default()).token().await.unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.expose())
            .expect("token is base64url without padding");
        let url = url::Url::parse(std::str::from_utf8(&raw).unwrap()).unwrap();
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.host_str(), Some("kafka.us-west-2.amazonaws.com"));
        assert_eq!(url.path(), "/");
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("Action"), "kafka-cluster:Connect");
        assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(get("X-Amz-Expires"), "900");
        assert_eq!(get("X-Amz-SignedHeaders"), "host");
        assert_eq!(get("X-Amz-Security-Token"), SESSION_TOKEN);
        assert!(get("User-Agent").starts_with("aws-msk-iam-sasl-signer"));
        let date = get("X-Amz-Date");
        assert_eq!(date.len(), 16, "{date}");
        assert_eq!(
            get("X-Amz-Credential"),
            format!(
                "{ACCESS_KEY}/{}/us-west-2/kafka-cluster/aws4_request",
                &date[..8]
            )
        );
        assert_eq!(
            get("X-Amz-Signature"),
            expected_signature(&params, &date, "us-west-2")
        );
    }

    #[tokio::test]
    async fn tokens_are_cached_until_close_to_expiry() {
        let creds = Arc::new(CountingCredentials::default());
        let p = provider(Arc::clone(&creds));
        let first = p.token().await.unwrap();
        let second = p.token().await.unwrap();
        assert_eq!(first, second);
        assert_eq!(creds.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_short_max_age_forces_a_new_token() {
        let creds = Arc::new(CountingCredentials::default());
        let p = provider(Arc::clone(&creds)).with_max_age(Duration::ZERO);
        p.token().await.unwrap();
        p.token().await.unwrap();
        assert_eq!(creds.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_sasl_callback_hands_out_the_cached_token() {
        let creds = Arc::new(CountingCredentials::default());
        let p = Arc::new(provider(Arc::clone(&creds)));
        let expected = p.token().await.unwrap();
        let SaslConfig::Oauthbearer(bearer) = Arc::clone(&p).sasl_config() else {
            panic!("IAM uses OAUTHBEARER");
        };
        assert_eq!((bearer.callback)().await.unwrap(), expected.expose());
        assert_eq!(creds.calls.load(Ordering::SeqCst), 1);
        assert!(!format!("{bearer:?}").contains(expected.expose()));
    }

    #[tokio::test]
    async fn missing_credentials_are_a_clear_error() {
        let creds = Arc::new(CountingCredentials {
            fail: true,
            ..Default::default()
        });
        let err = provider(creds).token().await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no AWS credentials for MSK IAM"),
            "{err}"
        );
    }

    #[test]
    fn a_client_certificate_secret_is_read_and_an_encrypted_key_refused() {
        let leaf = rcgen::generate_simple_self_signed(vec!["writer".into()]).unwrap();
        let secret = |extra: &str| {
            Secret::new(format!(
                r#"{{"certificate":{},"privateKey":{}{extra}}}"#,
                serde_json::to_string(&leaf.cert.pem()).unwrap(),
                serde_json::to_string(&leaf.signing_key.serialize_pem()).unwrap()
            ))
        };
        assert!(client_identity_from_secret_json(&secret("")).is_ok());
        assert!(client_identity_from_secret_json(&secret(r#","privateKeyPassword":"""#)).is_ok());
        assert!(matches!(
            client_identity_from_secret_json(&secret(r#","privateKeyPassword":"hunter2""#)),
            Err(AuthError::EncryptedKey)
        ));
        assert!(matches!(
            client_identity_from_secret_json(&Secret::new(r#"{"username":"u","password":"p"}"#)),
            Err(AuthError::CertificateSecretFormat)
        ));
    }

    #[test]
    fn secrets_parse_into_sasl_configs() {
        let user =
            UserPassword::from_secret_json(&Secret::new(r#"{"username":"svc","password":"pw"}"#))
                .unwrap();
        assert!(
            matches!(user.sasl_config(AuthMode::ScramSha512), Some(SaslConfig::ScramSha512(c)) if c.username == "svc" && c.password == "pw")
        );
        assert!(matches!(
            user.sasl_config(AuthMode::ScramSha256),
            Some(SaslConfig::ScramSha256(_))
        ));
        assert!(matches!(
            user.sasl_config(AuthMode::Plain),
            Some(SaslConfig::Plain(_))
        ));
        assert!(user.sasl_config(AuthMode::None).is_none());
        assert!(!format!("{user:?}").contains("pw\""));
        for bad in [
            "",
            "[]",
            r#"{"username":"svc"}"#,
            r#"{"username":1,"password":"x"}"#,
        ] {
            assert!(matches!(
                UserPassword::from_secret_json(&Secret::new(bad)),
                Err(AuthError::SecretFormat)
            ));
        }
    }
}
