//! Apache Kafka for the broker-backed tests: the shared broker's listeners,
//! a private broker of a test's own, admin calls, and reading back with a
//! consumer that shares no code with the producers under test.
//!
//! Every broker is started by `scripts/kafka.sh` (the shared one through
//! `scripts/broker.sh up`), so tests, the demo and the benchmarks run the
//! same configuration. `make test` exports `KAFKA_TEST_BROKER` (the
//! PLAINTEXT address) and `KAFKA_TEST_LISTENERS` (the `listeners.json` the
//! broker wrote: every listener, the CA, the client certificate, the users
//! and the IAM test credentials).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Deserialize;

/// The static AWS credentials the broker's IAM listeners check tokens
/// against.
#[derive(Debug, Clone, Deserialize)]
pub struct IamCredentials {
    /// The access key id, also the principal the broker authenticates.
    pub access_key_id: String,
    /// The secret key the broker recomputes signatures with.
    pub secret_access_key: String,
    /// The region tokens must be signed for.
    pub region: String,
}

/// Every listener of the shared broker, as `scripts/kafka.sh` wrote them.
#[derive(Debug, Clone, Deserialize)]
pub struct Listeners {
    /// The Apache Kafka version running.
    pub version: String,
    /// PLAINTEXT, no authentication.
    pub plaintext: String,
    /// PLAINTEXT, always advertising itself (admin calls).
    pub internal: String,
    /// SASL_SSL with SCRAM-SHA-512 and SCRAM-SHA-256.
    pub scram: String,
    /// SASL_SSL with PLAIN.
    pub plain: String,
    /// SSL with client certificates required.
    pub mtls: String,
    /// SASL_SSL with OAUTHBEARER, tokens checked as MSK checks IAM tokens.
    pub iam: String,
    /// The same, with tokens that expire after `iam_short_token_seconds`.
    pub iam_short: String,
    /// The CA that signed the broker's and the client's certificates.
    pub ca_file: PathBuf,
    /// The client's certificate chain (leaf first), PEM.
    pub client_certificate_chain: PathBuf,
    /// The client's private key, PKCS#8 PEM.
    pub client_key: PathBuf,
    /// The principal the broker gives the client certificate.
    pub mtls_principal: String,
    /// SCRAM and PLAIN users and their passwords: `writer`, `denied`,
    /// `throttled`.
    pub users: BTreeMap<String, String>,
    /// What the IAM listeners check signatures against.
    pub iam_credentials: IamCredentials,
    /// One line per token the IAM listener accepted or refused.
    pub iam_log: PathBuf,
    /// The same for the short-token listener.
    pub iam_short_log: PathBuf,
    /// How long an IAM session lasts before the broker ends it.
    pub iam_reauth_ms: u64,
    /// How long a token lives on the short-token listener.
    pub iam_short_token_seconds: u64,
    /// How long a SCRAM session lasts before the broker ends it.
    pub scram_reauth_ms: u64,
}

impl Listeners {
    /// The password of one of the broker's users.
    #[allow(clippy::panic)]
    pub fn password(&self, user: &str) -> &str {
        self.users
            .get(user)
            .unwrap_or_else(|| panic!("the broker has no user {user}"))
    }
}

/// The shared broker's listeners (`KAFKA_TEST_LISTENERS`). Panics with
/// instructions when unset, so a listener test never passes without one.
#[allow(clippy::panic)]
pub fn listeners() -> Listeners {
    let path = match std::env::var("KAFKA_TEST_LISTENERS") {
        Ok(p) if !p.trim().is_empty() => PathBuf::from(p.trim()),
        _ => panic!(
            "KAFKA_TEST_LISTENERS is not set: run `make test`, which starts Apache Kafka \
             with every listener (scripts/broker.sh listeners prints the file)"
        ),
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How long an admin call or a read-back may take: far above what either
/// needs, so only a hang reaches it.
const SUBPROCESS_TIMEOUT: Duration = Duration::from_secs(90);

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Runs `scripts/kafka.sh admin` (Kafka's own Admin client) against a
/// PLAINTEXT listener: `create-topic NAME PARTITIONS [config=value …]`,
/// `allow`/`deny PRINCIPAL OPERATION TOPIC`, `quota USER KEY VALUE`,
/// `scram USER MECHANISM PASSWORD`. Returns what it printed, or why it
/// failed.
pub async fn admin(bootstrap: &str, args: &[&str]) -> Result<String, String> {
    let command = tokio::process::Command::new("bash")
        .arg(repo_file("scripts/kafka.sh"))
        .arg("admin")
        .arg(bootstrap)
        .args(args)
        .kill_on_drop(true)
        .output();
    let name = args.first().copied().unwrap_or_default();
    let output = tokio::time::timeout(SUBPROCESS_TIMEOUT, command)
        .await
        .map_err(|_| format!("kafka.sh admin {name}: no answer in {SUBPROCESS_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run scripts/kafka.sh: {e}"))?;
    let out = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(out)
    } else {
        Err(format!(
            // The arguments may hold a password: only the command is named.
            "kafka.sh admin {name}: {}{}",
            String::from_utf8_lossy(&output.stderr).trim(),
            out
        ))
    }
}

/// One record as kafka-python's consumer handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Its offset.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value, if any.
    pub value: Option<Vec<u8>>,
    /// Its headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ConsumedRecord {
    /// The value as text (empty when absent).
    pub fn value_text(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
}

/// One record batch as the broker stores and serves it.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredBatch {
    /// The offset of its first record.
    pub base_offset: i64,
    /// How many records it holds.
    pub records: usize,
    /// Its size on the wire.
    pub bytes: usize,
    /// The codec number in its attributes (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub compression: u8,
}

/// What a topic holds, read by kafka-python (`test-support/readback.py`).
#[derive(Debug, Clone, Default)]
pub struct ReadBack {
    /// Per partition, the records in the order the consumer delivered them.
    pub consumed: BTreeMap<i32, Vec<ConsumedRecord>>,
    /// Per partition, the record batches as stored.
    pub batches: BTreeMap<i32, Vec<StoredBatch>>,
}

impl ReadBack {
    /// Every record of every partition, partition by partition.
    pub fn records(&self) -> impl Iterator<Item = (i32, &ConsumedRecord)> {
        self.consumed
            .iter()
            .flat_map(|(p, records)| records.iter().map(move |r| (*p, r)))
    }

    /// Every value as text, partition by partition.
    pub fn values(&self) -> Vec<String> {
        self.records().map(|(_, r)| r.value_text()).collect()
    }
}

/// One consumed record as readback.py prints it: offset, key, value,
/// headers, the bytes in base64.
type RawRecord = (
    i64,
    Option<String>,
    Option<String>,
    Vec<(String, Option<String>)>,
);

#[derive(Deserialize)]
struct RawReadBack {
    consumed: BTreeMap<String, Vec<RawRecord>>,
    batches: BTreeMap<String, Vec<StoredBatch>>,
}

fn python() -> PathBuf {
    match std::env::var_os("KAFKA_TEST_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo_file(".venv/bin/python"),
    }
}

fn decode(field: Option<String>) -> Result<Option<Vec<u8>>, String> {
    field
        .map(|text| BASE64.decode(text).map_err(|e| e.to_string()))
        .transpose()
}

/// Reads `topic` back with kafka-python (a consumer this project did not
/// write), waiting until at least `expected` records are there, then
/// everything up to each partition's end. The Python comes from
/// `KAFKA_TEST_PYTHON`, or else the project's `.venv`.
pub async fn read_back(
    broker: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Result<ReadBack, String> {
    let python = python();
    let script = repo_file("test-support/readback.py");
    let command = tokio::process::Command::new(&python)
        .arg(&script)
        .args([
            broker,
            topic,
            &partitions.to_string(),
            &expected.to_string(),
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SUBPROCESS_TIMEOUT, command)
        .await
        .map_err(|_| format!("readback.py: no answer in {SUBPROCESS_TIMEOUT:?}"))?
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (run `scripts/tools.sh broker`, or set KAFKA_TEST_PYTHON)",
                python.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "readback.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let raw: RawReadBack = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    let mut read = ReadBack::default();
    for (partition, records) in raw.consumed {
        let partition: i32 = partition.parse().map_err(|_| "bad partition".to_owned())?;
        let mut list = Vec::with_capacity(records.len());
        for (offset, key, value, headers) in records {
            let headers = headers
                .into_iter()
                .map(|(name, value)| Ok((name, decode(value)?.unwrap_or_default())))
                .collect::<Result<_, String>>()?;
            list.push(ConsumedRecord {
                offset,
                key: decode(key)?,
                value: decode(value)?,
                headers,
            });
        }
        read.consumed.insert(partition, list);
    }
    for (partition, batches) in raw.batches {
        let partition: i32 = partition.parse().map_err(|_| "bad partition".to_owned())?;
        read.batches.insert(partition, batches);
    }
    Ok(read)
}

/// A private Apache Kafka broker for tests that need to break the network
/// between a producer and the broker. Its PLAINTEXT listener advertises
/// `advertised_host:advertised_port`, where a [`crate::FaultProxy`] (or
/// another front) stands, so every connection a client makes, leaders
/// included, goes through it. Admin calls use a listener that advertises
/// itself, so they work while the front is down. Killed on drop.
#[derive(Debug)]
pub struct PrivateBroker {
    child: tokio::process::Child,
    dir: PathBuf,
    /// The broker's own PLAINTEXT address (what the front forwards to).
    pub direct: String,
    /// A PLAINTEXT listener that advertises itself.
    pub internal: String,
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl PrivateBroker {
    /// A broker that advertises a [`crate::FaultProxy`] in front of it.
    /// Clients bootstrap from [`crate::FaultProxy::address`].
    pub async fn start_behind_proxy() -> (Self, crate::FaultProxy) {
        // The proxy takes its port first (it reaches the broker only when a
        // client connects), so nothing else can take it while the broker
        // starts.
        let (proxy_port, port) = (crate::free_port(), crate::free_port());
        let proxy = crate::FaultProxy::start(proxy_port, format!("127.0.0.1:{port}")).await;
        let broker = Self::launch(port, "127.0.0.1", proxy_port).await;
        (broker, proxy)
    }

    /// Starts Apache Kafka (`scripts/kafka.sh serve`, the version
    /// `KAFKA_VERSION` names) and waits until it says it has started.
    pub async fn start(advertised_host: &str, advertised_port: u16) -> Self {
        Self::launch(crate::free_port(), advertised_host, advertised_port).await
    }

    #[allow(clippy::panic)]
    async fn launch(port: u16, advertised_host: &str, advertised_port: u16) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lsk-broker-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let log_path = dir.join("log");
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
        let err_log = log
            .try_clone()
            .unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
        let (controller, internal) = (crate::free_port(), crate::free_port());
        let child = tokio::process::Command::new("bash")
            .arg(repo_file("scripts/kafka.sh"))
            .arg("serve")
            .arg(&dir)
            .args(["--port", &port.to_string()])
            .args(["--controller-port", &controller.to_string()])
            .args(["--internal-port", &internal.to_string()])
            .args([
                "--advertise",
                &format!("{advertised_host}:{advertised_port}"),
            ])
            .env(
                "KAFKA_HEAP",
                std::env::var("KAFKA_TEST_PRIVATE_HEAP").unwrap_or_else(|_| "256m".into()),
            )
            .stdout(log)
            .stderr(err_log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start scripts/kafka.sh: {e}"));
        let mut broker = Self {
            child,
            dir,
            direct: format!("127.0.0.1:{port}"),
            internal: format!("127.0.0.1:{internal}"),
        };
        let give_up = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains("Kafka Server started") {
                return broker;
            }
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("the broker exited ({status}):\n{text}");
            }
            if tokio::time::Instant::now() >= give_up {
                panic!("the broker did not start in 90 s:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a topic through the broker's own listener (its advertised
    /// address may be a front that is down).
    #[allow(clippy::panic)]
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        if let Err(e) = admin(
            &self.internal,
            &["create-topic", topic, &partitions.to_string()],
        )
        .await
        {
            panic!("{e}");
        }
    }

    /// Stops the broker now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The moto server `make test` starts for the tests (`TEST_MOTO`,
/// `host:port`): Secrets Manager for the functions' credential secrets.
#[allow(clippy::panic)]
pub fn moto() -> String {
    match std::env::var("TEST_MOTO") {
        Ok(m) if !m.trim().is_empty() => m.trim().to_owned(),
        _ => panic!("TEST_MOTO is not set: run `make test`, which starts moto"),
    }
}

/// Creates a Secrets Manager secret on moto (`host:port`) and returns its
/// ARN. moto reads the service and region from the credential scope and
/// checks no signature.
pub async fn create_secret(moto: &str, name: &str, secret_string: &str) -> Result<String, String> {
    let body = serde_json::json!({"Name": name, "SecretString": secret_string}).to_string();
    let answer = crate::http_client::request(
        moto,
        "POST",
        "/",
        &[
            ("X-Amz-Target", "secretsmanager.CreateSecret"),
            ("Content-Type", "application/x-amz-json-1.1"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            ),
        ],
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .await?;
    if answer.status != 200 {
        return Err(format!("CreateSecret: {} {}", answer.status, answer.text()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
    value["ARN"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("CreateSecret answered no ARN: {value}"))
}

/// How a client authenticates to one of the shared broker's listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerMode {
    /// PLAINTEXT, no authentication.
    Plaintext,
    /// SASL_SSL, SCRAM-SHA-512, the user read from a secret on moto.
    ScramSha512,
    /// SASL_SSL, SCRAM-SHA-256, the user read from a secret on moto.
    ScramSha256,
    /// SASL_SSL, PLAIN, the user read from a secret on moto.
    Plain,
    /// SSL with a client certificate read from a secret on moto.
    ClientCertificate,
    /// SASL_SSL, OAUTHBEARER with an MSK IAM token.
    Iam,
}

impl ListenerMode {
    /// Every mode, for matrix tests.
    pub const ALL: [Self; 6] = [
        Self::Plaintext,
        Self::ScramSha512,
        Self::ScramSha256,
        Self::Plain,
        Self::ClientCertificate,
        Self::Iam,
    ];

    /// Its `KAFKA_AUTH` value.
    pub fn kafka_auth(self) -> &'static str {
        match self {
            Self::Plaintext => "none",
            Self::ScramSha512 => "scram-sha-512",
            Self::ScramSha256 => "scram-sha-256",
            Self::Plain => "plain",
            Self::ClientCertificate => "mtls",
            Self::Iam => "iam",
        }
    }
}

impl Listeners {
    /// The listener that serves `mode`.
    pub fn address(&self, mode: ListenerMode) -> &str {
        match mode {
            ListenerMode::Plaintext => &self.plaintext,
            ListenerMode::ScramSha512 | ListenerMode::ScramSha256 => &self.scram,
            ListenerMode::Plain => &self.plain,
            ListenerMode::ClientCertificate => &self.mtls,
            ListenerMode::Iam => &self.iam,
        }
    }

    /// The function environment (`KAFKA_*`) that connects to `mode`'s
    /// listener as `user`, as a deployed function would: the SCRAM, PLAIN
    /// and certificate credentials in a Secrets Manager secret on `moto`,
    /// in the shapes Lambda's own Kafka triggers use. IAM signs with the
    /// [`IamCredentials`], which the caller hands the producer.
    pub async fn client_env(
        &self,
        mode: ListenerMode,
        user: &str,
        moto: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let mut env = vec![
            (
                "KAFKA_BOOTSTRAP_SERVERS".to_owned(),
                self.address(mode).to_owned(),
            ),
            ("KAFKA_AUTH".to_owned(), mode.kafka_auth().to_owned()),
        ];
        if mode == ListenerMode::Plaintext {
            return Ok(env);
        }
        env.push((
            "KAFKA_TLS_CA_FILE".to_owned(),
            self.ca_file.display().to_string(),
        ));
        let secret = match mode {
            ListenerMode::ScramSha512 | ListenerMode::ScramSha256 | ListenerMode::Plain => Some(
                serde_json::json!({"username": user, "password": self.password(user)}).to_string(),
            ),
            ListenerMode::ClientCertificate => {
                let read = |path: &Path| {
                    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
                };
                Some(
                    serde_json::json!({
                        "certificate": read(&self.client_certificate_chain)?,
                        "privateKey": read(&self.client_key)?,
                    })
                    .to_string(),
                )
            }
            ListenerMode::Iam => {
                env.push(("AWS_REGION".to_owned(), self.iam_credentials.region.clone()));
                None
            }
            ListenerMode::Plaintext => None,
        };
        if let Some(secret) = secret {
            let name = crate::unique_topic(&format!("kafka-{}", mode.kafka_auth()));
            let arn = create_secret(moto, &name, &secret).await?;
            env.push(("KAFKA_SECRET_ARN".to_owned(), arn));
        }
        Ok(env)
    }
}

/// Creates a topic no other test uses, named from `prefix`, through a
/// PLAINTEXT listener that advertises itself (`Listeners::internal`), with
/// topic configs such as `max.message.bytes=4096`. Panics on failure: a
/// test cannot go on without its topic.
#[allow(clippy::panic)]
pub async fn new_topic(internal: &str, prefix: &str, partitions: i32, configs: &[&str]) -> String {
    let topic = crate::unique_topic(prefix);
    let partitions = partitions.to_string();
    let mut args = vec!["create-topic", topic.as_str(), partitions.as_str()];
    args.extend_from_slice(configs);
    if let Err(e) = admin(internal, &args).await {
        panic!("{e}");
    }
    topic
}

/// The lines a log file (the IAM validator's) gains after this point: the
/// shared broker's logs hold every test's lines, so a test reads only its
/// own stretch.
#[derive(Debug, Clone)]
pub struct LogCursor {
    path: PathBuf,
    start: usize,
}

impl LogCursor {
    /// A cursor at the current end of `path` (which may not exist yet).
    pub fn at_end(path: &Path) -> Self {
        let start = std::fs::read(path).map(|b| b.len()).unwrap_or(0);
        Self {
            path: path.to_owned(),
            start,
        }
    }

    /// Every line written since the cursor was made.
    pub fn lines(&self) -> Vec<String> {
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(self.start..).unwrap_or_default())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}
