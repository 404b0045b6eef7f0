//! Kafka connection settings, read from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `KAFKA_BOOTSTRAP_SERVERS` | comma-separated `host:port` list | — |
//! | `MSK_CLUSTER_ARN` | used instead of the list: brokers come from `GetBootstrapBrokers` | — |
//! | `KAFKA_AUTH` | `iam`, `scram-sha-512`, `scram-sha-256`, `plain`, `mtls` (client certificate) or `none` | `iam` with an MSK ARN, else `none` |
//! | `KAFKA_TLS` | `true` / `false` (`mtls` needs `true`) | `false` for `none`, else `true` |
//! | `KAFKA_TLS_CA_FILE` | extra PEM CA to trust (private CAs, tests) | public roots only |
//! | `KAFKA_SECRET_ARN` | Secrets Manager secret: `{"username","password"}` for SCRAM/PLAIN; `{"certificate","privateKey"}` (PEM chain, leaf first; unencrypted PEM key) for `mtls`, as Lambda's `CLIENT_CERTIFICATE_TLS_AUTH` secret holds them | — |
//! | `KAFKA_CLIENT_CERTIFICATE_FILE` / `KAFKA_CLIENT_KEY_FILE` | local runs only: the `mtls` chain and key as PEM files; `KAFKA_CLIENT_KEY_FILE` is refused in Lambda | — |
//! | `KAFKA_ALLOW_PLAINTEXT_SASL` | local brokers only: `true` lets a password or token mode run without TLS; refused in Lambda | `false` |
//! | `KAFKA_USERNAME` / `KAFKA_PASSWORD` | local runs only: inline SCRAM/PLAIN credentials; `KAFKA_PASSWORD` is refused in Lambda ([`crate::config::Env::in_lambda`]) | — |
//! | `KAFKA_MAX_MESSAGE_BYTES` | largest record accepted, and the size of one produce batch | 1048576 (MSK's default) |
//! | `KAFKA_CLIENT_ID` | client id sent to the broker | the function name |
//! | `KAFKA_TCP_NODELAY` | `true`: broker connections go through the loopback relay that sets `TCP_NODELAY` ([`crate::kafka::relay`]); `false`: rskafka connects directly | `true` |
//! | `KAFKA_COMPRESSION` | codec of the produced record batches: `none`, `gzip`, `snappy`, `lz4` or `zstd` | [`DEFAULT_COMPRESSION`] |
//! | `AWS_REGION` | signing region for IAM (falls back to the ARN's region) | — |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::config::{ConfigError, Env, Secret};

/// How the producer finds the brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// An explicit `host:port` list.
    Servers(Vec<String>),
    /// An MSK cluster, resolved once with `GetBootstrapBrokers`.
    MskCluster {
        /// The cluster ARN.
        arn: String,
    },
}

/// SASL mechanism (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// MSK IAM: OAUTHBEARER with a SigV4-signed token.
    Iam,
    /// SASL/SCRAM-SHA-512.
    ScramSha512,
    /// SASL/SCRAM-SHA-256.
    ScramSha256,
    /// SASL/PLAIN.
    Plain,
    /// TLS client authentication: a client certificate, no SASL (MSK's TLS
    /// listener with client authentication, Lambda's
    /// `CLIENT_CERTIFICATE_TLS_AUTH`).
    ClientCertificate,
    /// No authentication.
    None,
}

impl AuthMode {
    /// Whether a username and password are needed.
    pub fn needs_password(self) -> bool {
        matches!(self, Self::ScramSha512 | Self::ScramSha256 | Self::Plain)
    }

    /// Whether the mode sends a password or a token over the connection.
    pub fn sends_a_secret(self) -> bool {
        self.needs_password() || self == Self::Iam
    }

    /// Whether the mode authenticates with something a rotation can
    /// replace, so a session that got nothing through is rebuilt with the
    /// credentials read again.
    pub fn reads_rotating_credentials(self) -> bool {
        self.needs_password() || self == Self::ClientCertificate
    }
}

impl FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "iam" => Ok(Self::Iam),
            "scram-sha-512" => Ok(Self::ScramSha512),
            "scram-sha-256" => Ok(Self::ScramSha256),
            "plain" => Ok(Self::Plain),
            "mtls" => Ok(Self::ClientCertificate),
            "none" => Ok(Self::None),
            _ => Err("expected iam, scram-sha-512, scram-sha-256, plain, mtls or none".into()),
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Iam => "iam",
            Self::ScramSha512 => "scram-sha-512",
            Self::ScramSha256 => "scram-sha-256",
            Self::Plain => "plain",
            Self::ClientCertificate => "mtls",
            Self::None => "none",
        })
    }
}

/// The codec of produced record batches (`KAFKA_COMPRESSION`).
///
/// Kafka compresses whole record batches, one per partition and request, so
/// the ratio grows with the records a request carries. The broker keeps a
/// batch as it came (Kafka's default `compression.type=producer`), and every
/// consumer decodes it, so the codec must be one the consumers have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip (deflate), rskafka at level 6.
    Gzip,
    /// Snappy, unframed as Kafka expects.
    Snappy,
    /// LZ4 frames with independent blocks, as Kafka expects.
    Lz4,
    /// Zstandard, rskafka at level 3.
    Zstd,
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "gzip" => Ok(Self::Gzip),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            _ => Err("expected none, gzip, snappy, lz4 or zstd".into()),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        })
    }
}

impl From<Compression> for rskafka::client::partition::Compression {
    fn from(codec: Compression) -> Self {
        match codec {
            Compression::None => Self::NoCompression,
            Compression::Gzip => Self::Gzip,
            Compression::Snappy => Self::Snappy,
            Compression::Lz4 => Self::Lz4,
            Compression::Zstd => Self::Zstd,
        }
    }
}

/// Where the auth mode's credentials come from: a SCRAM/PLAIN user or an
/// `mtls` client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A Secrets Manager secret: `{"username": …, "password": …}` for
    /// SCRAM/PLAIN, `{"certificate": …, "privateKey": …}` for `mtls`.
    SecretArn(String),
    /// A user given inline (local runs only).
    Inline {
        /// The user name.
        username: String,
        /// The password, never printed.
        password: Secret,
    },
    /// A client certificate chain and key in PEM files (local runs only).
    CertificateFiles {
        /// The chain, leaf first.
        chain: PathBuf,
        /// The private key.
        key: PathBuf,
    },
}

/// Everything needed to connect and produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Where the brokers are.
    pub bootstrap: Bootstrap,
    /// SASL mechanism.
    pub auth: AuthMode,
    /// Whether to connect over TLS.
    pub tls: bool,
    /// Extra CA certificate (PEM file) to trust.
    pub tls_ca_file: Option<PathBuf>,
    /// SCRAM/PLAIN credentials or the `mtls` client certificate; `None`
    /// for IAM and no auth.
    pub credentials: Option<CredentialSource>,
    /// Signing region for IAM.
    pub region: Option<String>,
    /// Largest record accepted; also the byte budget of one produce request.
    pub max_message_bytes: usize,
    /// Client id sent to the broker.
    pub client_id: String,
    /// Whether broker connections go through the relay that sets
    /// `TCP_NODELAY` ([`crate::kafka::relay`]).
    pub tcp_nodelay: bool,
    /// Codec of the produced record batches.
    pub compression: Compression,
    /// Whether a password or token mode may run without TLS (local brokers
    /// only, `KAFKA_ALLOW_PLAINTEXT_SASL`); the producer refuses to connect
    /// otherwise.
    pub allow_plaintext_sasl: bool,
}

/// MSK's default `message.max.bytes` (1 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The codec used when `KAFKA_COMPRESSION` is unset: zstd.
///
/// Measured on what the two producing functions publish (DynamoDB items of
/// about 310 bytes of JSON, tagged clickstream events of about 490), encoded
/// as rskafka encodes them, on x86_64 (README, "Compression"):
/// - At 100–500 records per batch, zstd's batches are 19–38 times smaller
///   than uncompressed ones, gzip's 15–30, lz4's 9–18 and snappy's 8–12:
///   zstd's are about half the size of lz4's.
/// - Encoding costs 1.1–1.9 µs per record with zstd, 1.0–1.4 with lz4,
///   0.8–1.1 with snappy and 3.5–6.7 with gzip, against 0.65–1.05
///   uncompressed. Over a whole invocation of 100 or 1,000 records none,
///   snappy, lz4 and zstd were within the noise of each other; gzip cost
///   30–50 % more.
/// - Only in batches of tens of records does zstd's fixed cost show, about
///   35 µs per batch: 0.1–0.2 ms more than lz4 for a 100-record invocation
///   spread over 3–6 partitions.
///
/// Bytes are what the cluster stores, replicates and bills, and what its
/// brokers' network throughput limits; a few microseconds per batch are
/// not. Consumers must read zstd (Kafka clients from 2.1 on, KIP-110); for
/// others set `KAFKA_COMPRESSION=lz4` or `none`.
pub const DEFAULT_COMPRESSION: Compression = Compression::Zstd;

impl KafkaConfig {
    /// Reads the settings; see the module doc for the variables.
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        // Refused whatever the auth mode: set at all, the password sits in
        // the function's configuration for anyone who can read it.
        env.local_only_secret("KAFKA_PASSWORD", "KAFKA_SECRET_ARN")?;
        env.local_only_secret("KAFKA_CLIENT_KEY_FILE", "KAFKA_SECRET_ARN")?;
        let bootstrap = match (
            env.list("KAFKA_BOOTSTRAP_SERVERS"),
            env.optional("MSK_CLUSTER_ARN"),
        ) {
            (Some(servers), None) if !servers.is_empty() => Bootstrap::Servers(servers),
            (None, Some(arn)) => Bootstrap::MskCluster { arn },
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict(
                    "set either KAFKA_BOOTSTRAP_SERVERS or MSK_CLUSTER_ARN, not both".into(),
                ))
            }
            _ => {
                return Err(ConfigError::MissingOneOf {
                    name: "KAFKA_BOOTSTRAP_SERVERS",
                    alternative: "MSK_CLUSTER_ARN",
                    purpose: "to discover the brokers",
                })
            }
        };
        let default_auth = match bootstrap {
            Bootstrap::MskCluster { .. } => AuthMode::Iam,
            Bootstrap::Servers(_) => AuthMode::None,
        };
        let auth: AuthMode = env.parse_or("KAFKA_AUTH", default_auth)?;
        let tls = env.flag_or("KAFKA_TLS", auth != AuthMode::None)?;
        let allow_plaintext_sasl = refuse_secrets_in_the_clear(env, auth, tls)?;
        if auth == AuthMode::ClientCertificate && !tls {
            return Err(ConfigError::Conflict(
                "KAFKA_AUTH=mtls authenticates inside TLS: KAFKA_TLS=false cannot go with it"
                    .into(),
            ));
        }
        let credentials = if auth.needs_password() {
            Some(read_credentials(env, auth)?)
        } else if auth == AuthMode::ClientCertificate {
            Some(read_certificate_source(env)?)
        } else {
            None
        };
        let arn_region = match &bootstrap {
            Bootstrap::MskCluster { arn } => arn.split(':').nth(3).map(str::to_owned),
            Bootstrap::Servers(_) => None,
        };
        let region = env.optional("AWS_REGION").or(arn_region);
        if auth == AuthMode::Iam && region.is_none() {
            return Err(ConfigError::Missing { name: "AWS_REGION" });
        }
        let max_message_bytes =
            env.parse_or("KAFKA_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES)?;
        if max_message_bytes < 1024 {
            return Err(ConfigError::Invalid {
                name: "KAFKA_MAX_MESSAGE_BYTES",
                value: max_message_bytes.to_string(),
                reason: "must be at least 1024".into(),
            });
        }
        let compression = env.parse_or("KAFKA_COMPRESSION", DEFAULT_COMPRESSION)?;
        Ok(Self {
            bootstrap,
            auth,
            tls,
            tls_ca_file: env.optional("KAFKA_TLS_CA_FILE").map(PathBuf::from),
            credentials,
            region,
            max_message_bytes,
            client_id: env
                .optional("KAFKA_CLIENT_ID")
                .or_else(|| env.optional("AWS_LAMBDA_FUNCTION_NAME"))
                .unwrap_or_else(|| "lambda-stream-kit".into()),
            tcp_nodelay: env.flag_or("KAFKA_TCP_NODELAY", true)?,
            compression,
            allow_plaintext_sasl,
        })
    }

    /// A plaintext, unauthenticated configuration for the given brokers
    /// (local brokers and tests), compressing as a deployed function does
    /// by default.
    pub fn plaintext(servers: Vec<String>) -> Self {
        Self {
            bootstrap: Bootstrap::Servers(servers),
            auth: AuthMode::None,
            tls: false,
            tls_ca_file: None,
            credentials: None,
            region: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            client_id: "lambda-stream-kit".into(),
            tcp_nodelay: true,
            compression: DEFAULT_COMPRESSION,
            allow_plaintext_sasl: false,
        }
    }
}

fn read_credentials(env: &Env<'_>, auth: AuthMode) -> Result<CredentialSource, ConfigError> {
    if let Some(arn) = env.optional("KAFKA_SECRET_ARN") {
        return Ok(CredentialSource::SecretArn(arn));
    }
    match (env.optional("KAFKA_USERNAME"), env.optional("KAFKA_PASSWORD")) {
        (Some(username), Some(password)) => Ok(CredentialSource::Inline {
            username,
            password: Secret::new(password),
        }),
        (Some(_), None) => Err(ConfigError::Missing {
            name: "KAFKA_PASSWORD",
        }),
        _ => Err(ConfigError::Conflict(format!(
            "KAFKA_AUTH={auth} needs KAFKA_SECRET_ARN (or KAFKA_USERNAME and KAFKA_PASSWORD for local runs)"
        ))),
    }
}

/// A password or an IAM token never crosses a plaintext connection: SASL
/// without TLS refuses to start (MSK's IAM listener needs TLS anyway). A
/// local broker without TLS may be allowed with
/// `KAFKA_ALLOW_PLAINTEXT_SASL=true`, which is itself refused in Lambda.
fn refuse_secrets_in_the_clear(
    env: &Env<'_>,
    auth: AuthMode,
    tls: bool,
) -> Result<bool, ConfigError> {
    let allowed = env.flag_or("KAFKA_ALLOW_PLAINTEXT_SASL", false)?;
    if allowed && env.in_lambda() {
        return Err(ConfigError::Conflict(
            "KAFKA_ALLOW_PLAINTEXT_SASL is for local brokers only and is refused in Lambda".into(),
        ));
    }
    if auth.sends_a_secret() && !tls && !allowed {
        return Err(ConfigError::Conflict(format!(
            "KAFKA_AUTH={auth} would send a password or token in the clear: it needs KAFKA_TLS=true (KAFKA_ALLOW_PLAINTEXT_SASL=true allows a local broker without TLS)"
        )));
    }
    Ok(allowed)
}

fn read_certificate_source(env: &Env<'_>) -> Result<CredentialSource, ConfigError> {
    if let Some(arn) = env.optional("KAFKA_SECRET_ARN") {
        return Ok(CredentialSource::SecretArn(arn));
    }
    match (
        env.optional("KAFKA_CLIENT_CERTIFICATE_FILE"),
        env.optional("KAFKA_CLIENT_KEY_FILE"),
    ) {
        (Some(chain), Some(key)) => Ok(CredentialSource::CertificateFiles {
            chain: PathBuf::from(chain),
            key: PathBuf::from(key),
        }),
        (Some(_), None) => Err(ConfigError::Missing {
            name: "KAFKA_CLIENT_KEY_FILE",
        }),
        _ => Err(ConfigError::Conflict(
            "KAFKA_AUTH=mtls needs KAFKA_SECRET_ARN (or KAFKA_CLIENT_CERTIFICATE_FILE and KAFKA_CLIENT_KEY_FILE for local runs)".into(),
        )),
    }
}

/// The broker string fields of a `GetBootstrapBrokers` answer.
#[derive(Debug, Clone, Default)]
pub struct MskBrokerStrings {
    /// `BootstrapBrokerString` (plaintext, port 9092).
    pub plaintext: Option<String>,
    /// `BootstrapBrokerStringTls` (port 9094).
    pub tls: Option<String>,
    /// `BootstrapBrokerStringSaslScram` (port 9096).
    pub sasl_scram: Option<String>,
    /// `BootstrapBrokerStringSaslIam` (port 9098).
    pub sasl_iam: Option<String>,
}

/// Picks the MSK broker string that matches the auth mode and TLS setting.
pub fn pick_msk_brokers(
    strings: &MskBrokerStrings,
    auth: AuthMode,
    tls: bool,
) -> Result<Vec<String>, String> {
    let (chosen, listener) = match (auth, tls) {
        (AuthMode::Iam, _) => (&strings.sasl_iam, "SASL/IAM"),
        (AuthMode::ScramSha512 | AuthMode::ScramSha256, _) => (&strings.sasl_scram, "SASL/SCRAM"),
        (AuthMode::Plain, _) => return Err("MSK does not offer SASL/PLAIN".into()),
        (AuthMode::ClientCertificate, _) => (&strings.tls, "TLS"),
        (AuthMode::None, true) => (&strings.tls, "TLS"),
        (AuthMode::None, false) => (&strings.plaintext, "plaintext"),
    };
    let servers: Vec<String> = chosen
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if servers.is_empty() {
        Err(format!("the cluster has no {listener} listener enabled"))
    } else {
        Ok(servers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_servers_default_to_no_auth_and_no_tls() {
        let cfg = KafkaConfig::from_env(&Env::from_pairs(&[(
            "KAFKA_BOOTSTRAP_SERVERS",
            "a:9092, b:9092",
        )]))
        .unwrap();
        assert_eq!(
            cfg.bootstrap,
            Bootstrap::Servers(vec!["a:9092".into(), "b:9092".into()])
        );
        assert_eq!((cfg.auth, cfg.tls), (AuthMode::None, false));
        assert_eq!(cfg.max_message_bytes, 1_048_576);
        assert!(cfg.tcp_nodelay);
    }

    #[test]
    fn the_nodelay_relay_can_be_turned_off_and_a_bad_flag_is_refused() {
        let env = |value| {
            KafkaConfig::from_env(&Env::from_pairs(&[
                ("KAFKA_BOOTSTRAP_SERVERS", "a:9092"),
                ("KAFKA_TCP_NODELAY", value),
            ]))
        };
        assert!(!env("false").unwrap().tcp_nodelay);
        assert!(env("true").unwrap().tcp_nodelay);
        assert!(env("sometimes").is_err());
    }

    #[test]
    fn an_msk_arn_defaults_to_iam_over_tls_in_the_arns_region() {
        let cfg = KafkaConfig::from_env(&Env::from_pairs(&[(
            "MSK_CLUSTER_ARN",
            "arn:aws:kafka:eu-west-1:123456789012:cluster/demo/abc",
        )]))
        .unwrap();
        assert_eq!((cfg.auth, cfg.tls), (AuthMode::Iam, true));
        assert_eq!(cfg.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn every_auth_mode_parses_and_tls_follows_it() {
        for (text, mode) in [
            ("iam", AuthMode::Iam),
            ("SCRAM-SHA-512", AuthMode::ScramSha512),
            ("scram-sha-256", AuthMode::ScramSha256),
            ("plain", AuthMode::Plain),
            ("MTLS", AuthMode::ClientCertificate),
            ("none", AuthMode::None),
        ] {
            let cfg = KafkaConfig::from_env(&Env::from_pairs(&[
                ("KAFKA_BOOTSTRAP_SERVERS", "b:9096"),
                ("KAFKA_AUTH", text),
                ("KAFKA_USERNAME", "u"),
                ("KAFKA_PASSWORD", "p"),
                ("KAFKA_CLIENT_CERTIFICATE_FILE", "/c.pem"),
                ("KAFKA_CLIENT_KEY_FILE", "/k.pem"),
                ("AWS_REGION", "us-east-1"),
            ]))
            .unwrap();
            assert_eq!(cfg.auth, mode);
            assert_eq!(cfg.tls, mode != AuthMode::None, "{text}");
            assert_eq!(
                cfg.credentials.is_some(),
                mode.needs_password() || mode == AuthMode::ClientCertificate,
                "{text}"
            );
        }
    }

    #[test]
    fn every_codec_parses_in_any_case_and_maps_to_rskafkas() {
        use rskafka::client::partition::Compression as Wire;
        for (text, codec, wire) in [
            ("none", Compression::None, Wire::NoCompression),
            ("GZIP", Compression::Gzip, Wire::Gzip),
            ("snappy", Compression::Snappy, Wire::Snappy),
            ("Lz4", Compression::Lz4, Wire::Lz4),
            ("zstd", Compression::Zstd, Wire::Zstd),
        ] {
            let cfg = KafkaConfig::from_env(&Env::from_pairs(&[
                ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
                ("KAFKA_COMPRESSION", text),
            ]))
            .unwrap();
            assert_eq!(cfg.compression, codec, "{text}");
            assert_eq!(Wire::from(codec), wire, "{text}");
            assert_eq!(codec.to_string(), text.to_ascii_lowercase());
        }
    }

    #[test]
    fn compression_defaults_alike_from_the_environment_and_in_plaintext() {
        let cfg = KafkaConfig::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("KAFKA_COMPRESSION", " "),
        ]))
        .unwrap();
        assert_eq!(cfg.compression, DEFAULT_COMPRESSION);
        assert_eq!(
            KafkaConfig::plaintext(vec!["b:9092".into()]).compression,
            DEFAULT_COMPRESSION
        );
    }

    #[test]
    fn an_unknown_codec_is_refused_with_the_choices() {
        let err = KafkaConfig::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("KAFKA_COMPRESSION", "lz4hc"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"KAFKA_COMPRESSION="lz4hc" is invalid: expected none, gzip, snappy, lz4 or zstd"#
        );
    }

    #[test]
    fn mtls_reads_its_certificate_from_the_secret_or_local_files_and_needs_tls() {
        let secret = KafkaConfig::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9094"),
            ("KAFKA_AUTH", "mtls"),
            (
                "KAFKA_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:cert",
            ),
        ]))
        .unwrap();
        assert!(matches!(
            secret.credentials,
            Some(CredentialSource::SecretArn(_))
        ));
        assert!(secret.tls);

        let local = [
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9094"),
            ("KAFKA_AUTH", "mtls"),
            ("KAFKA_CLIENT_CERTIFICATE_FILE", "/tls/client-chain.pem"),
            ("KAFKA_CLIENT_KEY_FILE", "/tls/client.key"),
        ];
        let files = KafkaConfig::from_env(&Env::from_pairs(&local)).unwrap();
        assert_eq!(
            files.credentials,
            Some(CredentialSource::CertificateFiles {
                chain: "/tls/client-chain.pem".into(),
                key: "/tls/client.key".into()
            })
        );

        let mut in_lambda = local.to_vec();
        in_lambda.extend([
            ("AWS_LAMBDA_FUNCTION_NAME", "producer"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ]);
        assert!(matches!(
            KafkaConfig::from_env(&Env::from_pairs(&in_lambda)),
            Err(ConfigError::LocalOnly {
                name: "KAFKA_CLIENT_KEY_FILE",
                ..
            })
        ));

        let mut plaintext = local.to_vec();
        plaintext.push(("KAFKA_TLS", "false"));
        let err = KafkaConfig::from_env(&Env::from_pairs(&plaintext)).unwrap_err();
        assert!(err.to_string().contains("KAFKA_TLS=false"), "{err}");

        let err = KafkaConfig::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9094"),
            ("KAFKA_AUTH", "mtls"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("KAFKA_SECRET_ARN"), "{err}");
    }

    #[test]
    fn a_password_or_token_mode_without_tls_refuses_to_start_unless_allowed_locally() {
        for auth in ["scram-sha-512", "scram-sha-256", "plain", "iam"] {
            let base = [
                ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
                ("KAFKA_AUTH", auth),
                ("KAFKA_TLS", "false"),
                ("KAFKA_USERNAME", "u"),
                ("KAFKA_PASSWORD", "p"),
                ("AWS_REGION", "us-east-1"),
            ];
            let err = KafkaConfig::from_env(&Env::from_pairs(&base)).unwrap_err();
            assert!(err.to_string().contains("in the clear"), "{auth}: {err}");

            let mut local = base.to_vec();
            local.push(("KAFKA_ALLOW_PLAINTEXT_SASL", "true"));
            let cfg = KafkaConfig::from_env(&Env::from_pairs(&local)).unwrap();
            assert!(!cfg.tls, "{auth}");

            // In Lambda the override itself is refused (and the inline
            // password too, for the password modes).
            let mut in_lambda: Vec<_> = local
                .iter()
                .filter(|(k, _)| *k != "KAFKA_PASSWORD")
                .copied()
                .collect();
            in_lambda.extend([
                (
                    "KAFKA_SECRET_ARN",
                    "arn:aws:secretsmanager:us-east-1:1:secret:k",
                ),
                ("AWS_LAMBDA_FUNCTION_NAME", "producer"),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ]);
            let err = KafkaConfig::from_env(&Env::from_pairs(&in_lambda)).unwrap_err();
            assert!(
                err.to_string().contains("refused in Lambda"),
                "{auth}: {err}"
            );
        }
        // No secret, no TLS needed.
        assert!(KafkaConfig::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("KAFKA_AUTH", "none"),
        ]))
        .is_ok());
    }

    #[test]
    fn scram_prefers_the_secret_arn() {
        let cfg = KafkaConfig::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9096"),
            ("KAFKA_AUTH", "scram-sha-512"),
            (
                "KAFKA_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:AmazonMSK_x",
            ),
            ("KAFKA_USERNAME", "u"),
            ("KAFKA_PASSWORD", "p"),
        ]))
        .unwrap();
        assert!(matches!(
            cfg.credentials,
            Some(CredentialSource::SecretArn(_))
        ));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "KAFKA_BOOTSTRAP_SERVERS"),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
                    ("KAFKA_AUTH", "kerberos"),
                ],
                "KAFKA_AUTH",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
                    ("KAFKA_TLS", "sometimes"),
                ],
                "KAFKA_TLS",
            ),
            (
                &[("KAFKA_BOOTSTRAP_SERVERS", "b:1"), ("KAFKA_AUTH", "iam")],
                "AWS_REGION",
            ),
            (
                &[("KAFKA_BOOTSTRAP_SERVERS", "b:1"), ("KAFKA_AUTH", "plain")],
                "KAFKA_SECRET_ARN",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
                    ("KAFKA_AUTH", "plain"),
                    ("KAFKA_USERNAME", "u"),
                ],
                "KAFKA_PASSWORD",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
                    ("KAFKA_MAX_MESSAGE_BYTES", "lots"),
                ],
                "KAFKA_MAX_MESSAGE_BYTES",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
                    ("MSK_CLUSTER_ARN", "arn:x"),
                ],
                "MSK_CLUSTER_ARN",
            ),
            (
                &[
                    ("KAFKA_BOOTSTRAP_SERVERS", "b:1"),
                    ("KAFKA_COMPRESSION", "brotli"),
                ],
                "KAFKA_COMPRESSION",
            ),
        ];
        for (pairs, name) in cases {
            let err = KafkaConfig::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err} should name {name}");
        }
    }

    #[test]
    fn without_brokers_the_error_names_both_ways_to_give_them() {
        let err = KafkaConfig::from_env(&Env::from_pairs::<&str, &str>(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "KAFKA_BOOTSTRAP_SERVERS must be set (or MSK_CLUSTER_ARN, to discover the brokers)"
        );
        let blank = Env::from_pairs(&[("KAFKA_BOOTSTRAP_SERVERS", " , ")]);
        assert!(matches!(
            KafkaConfig::from_env(&blank),
            Err(ConfigError::MissingOneOf {
                alternative: "MSK_CLUSTER_ARN",
                ..
            })
        ));
    }

    const PLAIN_INLINE: [(&str, &str); 4] = [
        ("KAFKA_BOOTSTRAP_SERVERS", "b:9096"),
        ("KAFKA_AUTH", "plain"),
        ("KAFKA_USERNAME", "svc"),
        ("KAFKA_PASSWORD", "hunter2-SECRET"),
    ];

    #[test]
    fn an_inline_password_is_refused_in_lambda_pointing_to_the_secret_arn() {
        let mut pairs = PLAIN_INLINE.to_vec();
        pairs.extend([
            ("AWS_LAMBDA_FUNCTION_NAME", "tagger"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ]);
        let err = KafkaConfig::from_env(&Env::from_pairs(&pairs)).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::LocalOnly {
                    name: "KAFKA_PASSWORD",
                    instead: "KAFKA_SECRET_ARN"
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");

        // Even next to the secret ARN, which would win: the password is
        // still in the function's configuration.
        pairs.push((
            "KAFKA_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:1:secret:k",
        ));
        assert!(KafkaConfig::from_env(&Env::from_pairs(&pairs)).is_err());
    }

    #[test]
    fn an_inline_password_is_accepted_locally_and_under_cargo_lambda_watch() {
        let mut pairs = PLAIN_INLINE.to_vec();
        assert!(KafkaConfig::from_env(&Env::from_pairs(&pairs)).is_ok());
        // What `cargo lambda watch` adds to the function's environment.
        pairs.extend([
            ("AWS_LAMBDA_FUNCTION_NAME", "kafka-tag-handler"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9000"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096"),
        ]);
        let cfg = KafkaConfig::from_env(&Env::from_pairs(&pairs)).unwrap();
        assert!(matches!(
            cfg.credentials,
            Some(CredentialSource::Inline { .. })
        ));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let cfg = KafkaConfig::from_env(&Env::from_pairs(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9096"),
            ("KAFKA_AUTH", "plain"),
            ("KAFKA_USERNAME", "svc"),
            ("KAFKA_PASSWORD", "Tr0ub4dor&3-very-secret"),
        ]))
        .unwrap();
        assert!(!format!("{cfg:?}").contains("Tr0ub4dor"));
    }

    #[test]
    fn msk_broker_strings_are_picked_by_auth_mode() {
        let strings = MskBrokerStrings {
            plaintext: Some("b-1:9092".into()),
            tls: Some("b-1:9094,b-2:9094".into()),
            sasl_scram: Some("b-1:9096".into()),
            sasl_iam: Some("b-1:9098,b-2:9098".into()),
        };
        assert_eq!(
            pick_msk_brokers(&strings, AuthMode::Iam, true).unwrap(),
            vec!["b-1:9098", "b-2:9098"]
        );
        assert_eq!(
            pick_msk_brokers(&strings, AuthMode::ScramSha512, true).unwrap(),
            vec!["b-1:9096"]
        );
        assert_eq!(
            pick_msk_brokers(&strings, AuthMode::None, true).unwrap(),
            vec!["b-1:9094", "b-2:9094"]
        );
        assert_eq!(
            pick_msk_brokers(&strings, AuthMode::None, false).unwrap(),
            vec!["b-1:9092"]
        );
        assert_eq!(
            pick_msk_brokers(&strings, AuthMode::ClientCertificate, true).unwrap(),
            vec!["b-1:9094", "b-2:9094"]
        );
        assert!(pick_msk_brokers(&strings, AuthMode::Plain, true).is_err());
        let err = pick_msk_brokers(&MskBrokerStrings::default(), AuthMode::Iam, true).unwrap_err();
        assert!(err.contains("SASL/IAM"), "{err}");
    }
}
