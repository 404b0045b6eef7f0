//! The enricher's settings, read once from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `OUTPUT_TABLE` | the input change item's table | table name written into every output change item |
//! | `ENRICH_IP` | unset | the enrichment IP; when set, nothing is fetched |
//! | `ENRICH_IP_URL` | `https://ifconfig.me/ip` | where the public IP is fetched from (once per execution environment) |
//! | `ENRICH_IP_TIMEOUT_MS` | `3000` | upper bound for that fetch (the invocation deadline bounds it too) |
//! | `ENRICHER_AUTH` | `token` | `token`: Function-URL callers must send the bearer token from one of the two variables below; `none`: no token check |
//! | `ENRICHER_TOKEN_SECRET_ARN` | unset | Secrets Manager secret holding the bearer token Function-URL callers must send |
//! | `ENRICHER_TOKEN` | unset | the same token inline, for local runs only (refused in Lambda) |
//! | `ENRICHER_ON_FAILURE` | `dead-letter-table` | what a Transferia change item that cannot be transformed is answered with; see [`OnFailure`] |
//!
//! The function never fails open: without a token it refuses to start
//! unless `ENRICHER_AUTH=none` says that the Function URL needs no token
//! (its auth type is `AWS_IAM`, or there is no URL and the function is only
//! invoked directly or by Firehose, both authorised by IAM).

use std::net::IpAddr;
use std::time::Duration;

use http::Uri;
use lambda_stream_kit::config::{ConfigError, Env, Secret};

/// Default source of the function's public IP, as in the reference.
pub const DEFAULT_IP_URL: &str = "https://ifconfig.me/ip";

/// Default bound for the IP fetch, in milliseconds.
pub const DEFAULT_IP_TIMEOUT_MS: u64 = 3_000;

/// Where the bearer token that Function-URL callers must present comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token, chosen explicitly with `ENRICHER_AUTH=none`: Function-URL
    /// calls are not checked (the URL's own auth type, `AWS_IAM`, is then
    /// the only gate).
    None,
    /// The token itself (`ENRICHER_TOKEN`), for local runs.
    Inline(Secret),
    /// A Secrets Manager secret ARN (`ENRICHER_TOKEN_SECRET_ARN`), read on
    /// the first Function-URL call and cached.
    SecretArn(String),
}

/// What a Transferia change item that cannot be transformed is answered
/// with (`ENRICHER_ON_FAILURE`). Firehose records always get
/// `ProcessingFailed`: Firehose delivers those to its error output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// `dead-letter-table`: `Ok`, with the item moved to the table
    /// `<table>_ProcessingFailed` and the reason in a `__processing_error`
    /// column. Transferia's CDC mode skips any other result without a
    /// trace, so this is the only answer that keeps the item.
    #[default]
    DeadLetterTable,
    /// `processing-failed`: `ProcessingFailed` with the original item, for
    /// engines that act on it (Transferia's CDC mode loses the item).
    ProcessingFailed,
    /// `fail-call`: the whole call fails (HTTP 500 or a Lambda error), so the
    /// engine retries it and, once its retries run out, stops the transfer.
    FailCall,
}

impl OnFailure {
    /// The variable's spelling of this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeadLetterTable => "dead-letter-table",
            Self::ProcessingFailed => "processing-failed",
            Self::FailCall => "fail-call",
        }
    }

    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let Some(value) = env.optional("ENRICHER_ON_FAILURE") else {
            return Ok(Self::default());
        };
        [
            Self::DeadLetterTable,
            Self::ProcessingFailed,
            Self::FailCall,
        ]
        .into_iter()
        .find(|mode| value.trim().eq_ignore_ascii_case(mode.as_str()))
        .ok_or_else(|| ConfigError::Invalid {
            name: "ENRICHER_ON_FAILURE",
            value,
            reason: "expected dead-letter-table, processing-failed or fail-call".into(),
        })
    }
}

/// Everything the enricher is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Table name for output items; `None` keeps the input's table.
    pub output_table: Option<String>,
    /// A fixed enrichment IP; `None` means fetch it from `enrich_ip_url`.
    pub enrich_ip: Option<IpAddr>,
    /// URL answering with the caller's public IP as plain text.
    pub enrich_ip_url: String,
    /// Bearer token required on Function-URL calls.
    pub token: TokenSource,
    /// Upper bound for one IP fetch.
    pub ip_timeout: Duration,
    /// What a Transferia change item that cannot be transformed becomes.
    pub on_failure: OnFailure,
}

impl Config {
    /// Reads and validates the configuration; the error names the variable.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let enrich_ip_url = env
            .optional("ENRICH_IP_URL")
            .unwrap_or_else(|| DEFAULT_IP_URL.to_owned());
        validate_url(&enrich_ip_url)?;

        let timeout_ms = env.parse_or("ENRICH_IP_TIMEOUT_MS", DEFAULT_IP_TIMEOUT_MS)?;
        if timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                name: "ENRICH_IP_TIMEOUT_MS",
                value: "0".into(),
                reason: "must be at least 1 millisecond".into(),
            });
        }

        Ok(Self {
            output_table: env.optional("OUTPUT_TABLE"),
            enrich_ip: parse_ip(env)?,
            enrich_ip_url,
            token: token_source(env)?,
            ip_timeout: Duration::from_millis(timeout_ms),
            on_failure: OnFailure::from_env(env)?,
        })
    }
}

/// `ENRICHER_AUTH` and the token variables. Blank values count as unset
/// ([`Env::optional`]), so an empty token is no token and cannot open the
/// gate to every caller.
fn token_source(env: &Env<'_>) -> Result<TokenSource, ConfigError> {
    env.local_only_secret("ENRICHER_TOKEN", "ENRICHER_TOKEN_SECRET_ARN")?;
    let check_token = match env.optional("ENRICHER_AUTH") {
        None => true,
        Some(mode) => match mode.to_ascii_lowercase().as_str() {
            "token" => true,
            "none" => false,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "ENRICHER_AUTH",
                    value: mode,
                    reason: "expected token or none".into(),
                })
            }
        },
    };
    let arn = env.optional("ENRICHER_TOKEN_SECRET_ARN");
    let inline = env.optional("ENRICHER_TOKEN");
    if !check_token {
        return match (&arn, &inline) {
            (None, None) => Ok(TokenSource::None),
            _ => Err(ConfigError::Conflict(
                "ENRICHER_AUTH=none turns the token check off, but ENRICHER_TOKEN_SECRET_ARN \
                 or ENRICHER_TOKEN is set: unset the token, or set ENRICHER_AUTH=token"
                    .into(),
            )),
        };
    }
    match (arn, inline) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict(
            "set ENRICHER_TOKEN_SECRET_ARN or ENRICHER_TOKEN, not both".into(),
        )),
        (Some(arn), None) => Ok(TokenSource::SecretArn(arn)),
        (None, Some(token)) => Ok(TokenSource::Inline(Secret::new(token))),
        (None, None) => Err(ConfigError::Conflict(
            "no caller token: set ENRICHER_TOKEN_SECRET_ARN (or ENRICHER_TOKEN for local runs), \
             or set ENRICHER_AUTH=none when the Function URL's auth type is AWS_IAM \
             or the function has no Function URL"
                .into(),
        )),
    }
}

fn parse_ip(env: &Env<'_>) -> Result<Option<IpAddr>, ConfigError> {
    env.optional("ENRICH_IP")
        .map(|value| {
            value.parse().map_err(|_| ConfigError::Invalid {
                name: "ENRICH_IP",
                value,
                reason: "expected an IPv4 or IPv6 address".into(),
            })
        })
        .transpose()
}

fn validate_url(url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "ENRICH_IP_URL",
        value: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    match uri.scheme_str() {
        Some("https" | "http") if uri.host().is_some() => Ok(()),
        _ => Err(invalid("expected an http or https URL with a host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fetch_from_ifconfig_me() {
        let config = Config::from_env(&Env::from_pairs(&[("ENRICHER_AUTH", "none")])).unwrap();
        assert_eq!(
            config,
            Config {
                output_table: None,
                enrich_ip: None,
                enrich_ip_url: DEFAULT_IP_URL.into(),
                token: TokenSource::None,
                ip_timeout: Duration::from_millis(DEFAULT_IP_TIMEOUT_MS),
                on_failure: OnFailure::DeadLetterTable,
            }
        );
    }

    #[test]
    fn on_failure_takes_its_three_spellings_and_refuses_others() {
        for (value, mode) in [
            ("dead-letter-table", OnFailure::DeadLetterTable),
            ("Processing-Failed", OnFailure::ProcessingFailed),
            ("fail-call", OnFailure::FailCall),
        ] {
            let env = Env::from_pairs(&[NO_AUTH, ("ENRICHER_ON_FAILURE", value)]);
            assert_eq!(Config::from_env(&env).unwrap().on_failure, mode, "{value}");
        }
        let env = Env::from_pairs(&[NO_AUTH, ("ENRICHER_ON_FAILURE", "drop")]);
        let err = Config::from_env(&env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ENRICHER_ON_FAILURE=\"drop\" is invalid"),
            "{err}"
        );
    }

    const NO_AUTH: (&str, &str) = ("ENRICHER_AUTH", "none");

    #[test]
    fn every_setting_is_read() {
        let env = Env::from_pairs(&[
            ("OUTPUT_TABLE", "enriched"),
            ("ENRICH_IP", "2001:db8::1"),
            ("ENRICH_IP_URL", "http://127.0.0.1:8080/ip"),
            ("ENRICH_IP_TIMEOUT_MS", "250"),
            (
                "ENRICHER_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:t",
            ),
        ]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.output_table.as_deref(), Some("enriched"));
        assert_eq!(config.enrich_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(config.enrich_ip_url, "http://127.0.0.1:8080/ip");
        assert_eq!(config.ip_timeout, Duration::from_millis(250));
        assert_eq!(
            config.token,
            TokenSource::SecretArn("arn:aws:secretsmanager:eu-west-1:1:secret:t".into())
        );
    }

    #[test]
    fn an_inline_token_is_kept_secret() {
        let env = Env::from_pairs(&[("ENRICHER_TOKEN", "s3cret")]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.token, TokenSource::Inline(Secret::new("s3cret")));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn without_a_token_or_an_explicit_none_it_refuses_to_start() {
        for pairs in [
            &[][..],
            &[("ENRICHER_TOKEN", "")][..],
            &[("ENRICHER_TOKEN", "   "), ("ENRICHER_AUTH", "token")][..],
            &[("ENRICHER_TOKEN_SECRET_ARN", "")][..],
        ] {
            let err = Config::from_env(&Env::from_pairs(pairs)).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, ConfigError::Conflict(_)), "{pairs:?}: {text}");
            for name in [
                "ENRICHER_TOKEN_SECRET_ARN",
                "ENRICHER_TOKEN",
                "ENRICHER_AUTH=none",
            ] {
                assert!(text.contains(name), "{pairs:?}: {text}");
            }
        }
    }

    #[test]
    fn enricher_auth_none_turns_the_check_off_and_takes_no_token() {
        let config = Config::from_env(&Env::from_pairs(&[("ENRICHER_AUTH", "NONE")])).unwrap();
        assert_eq!(config.token, TokenSource::None);
        for token in ["ENRICHER_TOKEN", "ENRICHER_TOKEN_SECRET_ARN"] {
            let err =
                Config::from_env(&Env::from_pairs(&[("ENRICHER_AUTH", "none"), (token, "x")]))
                    .unwrap_err();
            assert!(matches!(err, ConfigError::Conflict(_)), "{err}");
            assert!(err.to_string().contains("ENRICHER_AUTH=none"), "{err}");
        }
    }

    #[test]
    fn enricher_auth_token_is_the_default_and_other_values_are_rejected() {
        let env = Env::from_pairs(&[("ENRICHER_AUTH", "token"), ("ENRICHER_TOKEN", "t")]);
        assert_eq!(
            Config::from_env(&env).unwrap().token,
            TokenSource::Inline(Secret::new("t"))
        );
        let err = Config::from_env(&Env::from_pairs(&[("ENRICHER_AUTH", "iam")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ENRICHER_AUTH=\"iam\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn an_inline_token_is_refused_in_lambda_but_not_under_cargo_lambda_watch() {
        let lambda = [
            ("AWS_LAMBDA_FUNCTION_NAME", "enricher"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("ENRICHER_TOKEN", "hunter2-SECRET"),
        ];
        let err = Config::from_env(&Env::from_pairs(&lambda)).unwrap_err();
        assert_eq!(
            err,
            ConfigError::LocalOnly {
                name: "ENRICHER_TOKEN",
                instead: "ENRICHER_TOKEN_SECRET_ARN"
            }
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let watch = [
            ("AWS_LAMBDA_FUNCTION_NAME", "cdc-enricher"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9000"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("ENRICHER_TOKEN", "local-dev-token"),
        ];
        assert_eq!(
            Config::from_env(&Env::from_pairs(&watch)).unwrap().token,
            TokenSource::Inline(Secret::new("local-dev-token"))
        );

        let mut with_arn = lambda[..2].to_vec();
        with_arn.push((
            "ENRICHER_TOKEN_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:1:secret:t",
        ));
        assert!(matches!(
            Config::from_env(&Env::from_pairs(&with_arn)).unwrap().token,
            TokenSource::SecretArn(_)
        ));
    }

    #[test]
    fn a_garbage_ip_is_rejected_by_name() {
        let err = Config::from_env(&Env::from_pairs(&[("ENRICH_IP", "FILL_ME")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ENRICH_IP=\"FILL_ME\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn a_url_without_http_scheme_is_rejected() {
        for bad in ["ifconfig.me/ip", "ftp://ifconfig.me/ip", "not a url"] {
            let err = Config::from_env(&Env::from_pairs(&[("ENRICH_IP_URL", bad)])).unwrap_err();
            assert!(
                err.to_string().starts_with("ENRICH_IP_URL="),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_zero_or_non_numeric_timeout_is_rejected() {
        for bad in ["0", "soon"] {
            let err =
                Config::from_env(&Env::from_pairs(&[("ENRICH_IP_TIMEOUT_MS", bad)])).unwrap_err();
            assert!(
                err.to_string().starts_with("ENRICH_IP_TIMEOUT_MS="),
                "{err}"
            );
        }
    }

    #[test]
    fn both_token_sources_at_once_conflict() {
        let env = Env::from_pairs(&[("ENRICHER_TOKEN", "a"), ("ENRICHER_TOKEN_SECRET_ARN", "b")]);
        assert!(matches!(
            Config::from_env(&env),
            Err(ConfigError::Conflict(_))
        ));
    }
}
