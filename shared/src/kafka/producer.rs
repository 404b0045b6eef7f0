//! Batched, partitioned, bounded producing.
//!
//! [`KafkaProducer`] is built once per execution environment without touching
//! the network. The first [`KafkaProducer::produce`] connects (resolving an
//! MSK ARN, reading a SCRAM secret, signing an IAM token as configured) and
//! keeps the connection for later invocations; rskafka reconnects by itself
//! when a broker closes it, as MSK does when an IAM session expires.
//!
//! One call sends a whole batch: records are assigned partitions (Java's
//! murmur2 for keyed records, round-robin otherwise), grouped per partition
//! in input order, cut into requests of at most `max_message_bytes`, and the
//! partitions are sent in parallel. Within a partition the requests go one
//! after another, and after the first failure the rest of that partition is
//! not sent, so per-key order holds. Every step is bounded by the caller's
//! deadline. The outcome is per record: where it landed, or why not.
//!
//! Every broker connection goes through a loopback relay that sets
//! `TCP_NODELAY` ([`crate::kafka::relay`]), unless `KAFKA_TCP_NODELAY=false`.
//!
//! A request that times out may still have reached the broker, so a retry can
//! duplicate it: delivery is at least once, as with any Kafka producer
//! without idempotence (rskafka has none).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, SaslConfig};
use rskafka::record::Record;
use rskafka::BackoffConfig;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::{timeout_at, Instant};

use crate::aws;
use crate::kafka::auth::{self, IamTokenProvider, UserPassword};
use crate::kafka::config::{
    pick_msk_brokers, AuthMode, Bootstrap, CredentialSource, KafkaConfig, MskBrokerStrings,
};
use crate::kafka::partitioner::Partitioner;
use crate::kafka::relay::BrokerRelay;
use crate::telemetry::error_chain;
use crate::tls;

/// Room left in each request for the record batch header.
const BATCH_OVERHEAD: usize = 128;
/// Room left per record for its length, delta and attribute varints.
const RECORD_OVERHEAD: usize = 32;
/// How long a topic's partition count is trusted (Java's `metadata.max.age.ms`).
const METADATA_MAX_AGE: Duration = Duration::from_secs(300);
/// rskafka's own retry budget for one step; the caller's deadline cuts it
/// shorter. Without it rskafka would retry forever.
const RSKAFKA_RETRY_BUDGET: Duration = Duration::from_secs(20);

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Partitioning key; `None` spreads records round-robin.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub value: Option<Vec<u8>>,
    /// Kafka headers.
    pub headers: BTreeMap<String, Vec<u8>>,
    /// The record timestamp; `None` means now.
    pub timestamp: Option<DateTime<Utc>>,
}

impl OutgoingRecord {
    /// Bytes the record takes in a request, less the per-record overhead.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 10)
                .sum::<usize>()
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The partition.
    pub partition: i32,
    /// The offset the broker assigned.
    pub offset: i64,
}

/// What caused a [`ProduceError`]: the Kafka client's, the SDK's or the
/// TLS set-up's own error, kept whole so that logs can render its chain
/// ([`crate::telemetry::error_chain`]). Shared, because one failed request
/// fails every record in it.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a record was not acknowledged. The `Display` of a variant with a
/// cause does not repeat it: render the whole chain where it is logged.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The record can never be sent: it is larger than the limit.
    #[error("record is {size} bytes, over the {limit}-byte limit (KAFKA_MAX_MESSAGE_BYTES)")]
    TooLarge {
        /// The record's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// No connection to the cluster could be made.
    #[error("cannot connect to Kafka: {reason}")]
    Connect {
        /// What could not be done.
        reason: String,
        /// Why, when another error says.
        #[source]
        source: Option<Cause>,
    },
    /// The topic's metadata could not be had.
    #[error("topic {topic}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
        /// Why, when another error says.
        #[source]
        source: Option<Cause>,
    },
    /// A step did not finish before the deadline.
    #[error("{step} did not finish before the deadline")]
    Timeout {
        /// The step: connect, metadata, leader lookup or produce.
        step: &'static str,
    },
    /// The broker failed the request.
    #[error("produce to partition {partition} failed: {reason}")]
    Broker {
        /// The partition.
        partition: i32,
        /// What went wrong.
        reason: String,
        /// The client's error, when it gave one.
        #[source]
        source: Option<Cause>,
    },
    /// The broker refused the record itself (`MESSAGE_TOO_LARGE`,
    /// `RECORD_LIST_TOO_LARGE`, `INVALID_RECORD`, `CORRUPT_MESSAGE` for a
    /// request holding only this record): sending it again cannot help.
    #[error("the broker rejected the record on partition {partition}: {reason}")]
    Rejected {
        /// The partition.
        partition: i32,
        /// What the broker said.
        reason: String,
        /// The client's error, when it gave one.
        #[source]
        source: Option<Cause>,
    },
    /// Not attempted, because an earlier record of the same partition failed.
    #[error("not sent: an earlier record for partition {partition} failed")]
    NotSent {
        /// The partition.
        partition: i32,
    },
}

impl ProduceError {
    /// A connection failure with no other error behind it.
    pub fn connect(reason: impl Into<String>) -> Self {
        Self::Connect {
            reason: reason.into(),
            source: None,
        }
    }

    /// A connection failure: `reason` says what could not be done, `source`
    /// why.
    pub fn connect_because(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Connect {
            reason: reason.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// Whether retrying can never help (the record itself is the problem).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::Rejected { .. })
    }
}

/// Whether `record` fits in a request of at most `max_message_bytes`.
pub(crate) fn record_fits(record: &OutgoingRecord, max_message_bytes: usize) -> bool {
    record.size() + RECORD_OVERHEAD + BATCH_OVERHEAD <= max_message_bytes
}

/// The partitions whose records go one per request (see [`Session`]).
type Isolated = Arc<Mutex<BTreeSet<(String, i32)>>>;

/// The per-record outcome of [`KafkaProducer::produce`], in input order.
pub type ProduceOutcome = Result<Delivery, ProduceError>;

/// A Kafka producer for one cluster, shared across invocations.
pub struct KafkaProducer {
    config: KafkaConfig,
    /// Outlives sessions: a session dropped after a refusal under SCRAM or
    /// PLAIN must not send the refused request whole again.
    isolate: Isolated,
    iam: OnceCell<Arc<IamTokenProvider>>,
    sdk: OnceCell<aws_config::SdkConfig>,
    session: Mutex<Option<Arc<Session>>>,
    partitioner: Partitioner,
    password_reader: Option<PasswordReader>,
}

/// Reads the SCRAM/PLAIN user for a new connection, by the deadline given.
/// The producer reads it on every new session, so a rotated password is
/// picked up once the old session is dropped.
pub type PasswordReader = Arc<
    dyn Fn(Instant) -> futures::future::BoxFuture<'static, Result<UserPassword, String>>
        + Send
        + Sync,
>;

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Session {
    client: Client,
    /// Carries every broker connection of `client`; `None` when
    /// `KAFKA_TCP_NODELAY=false` or when it could not start.
    relay: Option<BrokerRelay>,
    partition_counts: Mutex<HashMap<String, (usize, Instant)>>,
    partition_clients: Mutex<HashMap<(String, i32), Arc<PartitionClient>>>,
    /// Partitions whose next records go one per request: the broker
    /// rejected a request of several records as a whole, and only a request
    /// of one names the record at fault (see [`send_partition`]). Shared
    /// with the producer, so a dropped session does not forget it.
    isolate: Isolated,
}

impl KafkaProducer {
    /// A producer for `config`. Does no I/O.
    pub fn new(config: KafkaConfig) -> Self {
        Self {
            config,
            isolate: Isolated::default(),
            iam: OnceCell::new(),
            sdk: OnceCell::new(),
            session: Mutex::new(None),
            partitioner: Partitioner::default(),
            password_reader: None,
        }
    }

    /// Reads the SCRAM/PLAIN user with `reader` instead of from
    /// `KAFKA_SECRET_ARN` or the inline variables.
    pub fn with_password_reader(mut self, reader: PasswordReader) -> Self {
        self.password_reader = Some(reader);
        self
    }

    /// Uses `provider` for IAM tokens instead of one built from the default
    /// AWS credential chain.
    pub fn with_iam_provider(self, provider: Arc<IamTokenProvider>) -> Self {
        let _ = self.iam.set(provider);
        self
    }

    /// Uses `sdk` for AWS calls (secrets, `GetBootstrapBrokers`, IAM
    /// credentials) instead of the configuration loaded from the
    /// environment: a local endpoint such as moto.
    pub fn with_sdk_config(self, sdk: aws_config::SdkConfig) -> Self {
        let _ = self.sdk.set(sdk);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Whether `record` is small enough to be sent at all. A record that
    /// does not fit fails [`KafkaProducer::produce`] with
    /// [`ProduceError::TooLarge`]; callers can check first and route it
    /// elsewhere.
    pub fn fits(&self, record: &OutgoingRecord) -> bool {
        record_fits(record, self.config.max_message_bytes)
    }

    /// Sends `records` to `topic` and reports, per record and in order,
    /// where it landed or why it did not. Gives up at `deadline`.
    pub async fn produce(
        &self,
        topic: &str,
        records: Vec<OutgoingRecord>,
        deadline: Instant,
    ) -> Vec<ProduceOutcome> {
        let total = records.len();
        let mut outcomes: Vec<Option<ProduceOutcome>> = vec![None; total];
        let limit = self.config.max_message_bytes;
        for (outcome, record) in outcomes.iter_mut().zip(&records) {
            if !self.fits(record) {
                *outcome = Some(Err(ProduceError::TooLarge {
                    size: record.size(),
                    limit,
                }));
            }
        }
        if outcomes.iter().all(Option::is_some) {
            return finish(outcomes);
        }

        let prepared = match self.prepare(topic, deadline).await {
            Ok(p) => p,
            Err(e) => {
                fill_missing(&mut outcomes, &e);
                return finish(outcomes);
            }
        };
        let (session, partitions) = prepared;

        let mut by_partition: BTreeMap<i32, Vec<(usize, Record)>> = BTreeMap::new();
        for (index, record) in records.into_iter().enumerate() {
            if outcomes[index].is_some() {
                continue;
            }
            let partition = self
                .partitioner
                .partition(record.key.as_deref(), partitions);
            by_partition
                .entry(partition)
                .or_default()
                .push((index, to_rskafka(record)));
        }

        let compression = self.config.compression.into();
        let sends = by_partition.into_iter().map(|(partition, records)| {
            send_partition(
                &session,
                topic,
                partition,
                records,
                limit,
                compression,
                deadline,
            )
        });
        for (index, outcome) in futures::future::join_all(sends).await.into_iter().flatten() {
            outcomes[index] = Some(outcome);
        }
        let outcomes = finish(outcomes);
        self.forget_session_after_total_failure(&outcomes).await;
        outcomes
    }

    /// rskafka keeps a session's SASL credentials for every reconnection,
    /// so after a password rotation each reconnect fails until the session
    /// is rebuilt. When nothing at all got through with SCRAM or PLAIN, the
    /// session is dropped and the next produce (the retry) connects afresh,
    /// reading the password again within its own deadline. A broker outage
    /// costs one extra secret read per failed invocation, no more.
    async fn forget_session_after_total_failure(&self, outcomes: &[ProduceOutcome]) {
        let total_failure = !outcomes.is_empty()
            && outcomes
                .iter()
                .all(|o| o.as_ref().is_err_and(|e| !e.is_permanent()));
        if total_failure && self.config.auth.reads_rotating_credentials() {
            tracing::warn!(
                "no record got through; the Kafka session is dropped so the next attempt reconnects with the credentials read again"
            );
            *self.session.lock().await = None;
        }
    }

    /// The number of partitions of `topic` (cached for five minutes).
    pub async fn partition_count(
        &self,
        topic: &str,
        deadline: Instant,
    ) -> Result<usize, ProduceError> {
        self.prepare(topic, deadline).await.map(|(_, n)| n)
    }

    async fn prepare(
        &self,
        topic: &str,
        deadline: Instant,
    ) -> Result<(Arc<Session>, usize), ProduceError> {
        let session = self.session(deadline).await?;
        if let Some(relay) = &session.relay {
            relay.set_deadline(deadline);
        }
        let partitions = session.partition_count(topic, deadline).await?;
        Ok((session, partitions))
    }

    async fn session(&self, deadline: Instant) -> Result<Arc<Session>, ProduceError> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref() {
            return Ok(Arc::clone(session));
        }
        let relay = self.start_relay(deadline).await;
        let proxy = relay.as_ref().map(BrokerRelay::proxy_address);
        let client = match timeout_at(deadline, self.connect(deadline, proxy)).await {
            Ok(connected) => connected?,
            Err(_) => {
                let auth_error = self.iam.get().and_then(|p| p.last_error());
                return Err(match auth_error {
                    Some(e) => ProduceError::connect(format!(
                        "no connection before the deadline; the last authentication attempt failed: {e}"
                    )),
                    None => ProduceError::Timeout { step: "connect" },
                });
            }
        };
        let session = Arc::new(Session {
            client,
            relay,
            partition_counts: Mutex::new(HashMap::new()),
            partition_clients: Mutex::new(HashMap::new()),
            isolate: Arc::clone(&self.isolate),
        });
        *slot = Some(Arc::clone(&session));
        Ok(session)
    }

    async fn start_relay(&self, deadline: Instant) -> Option<BrokerRelay> {
        if !self.config.tcp_nodelay {
            return None;
        }
        if let Bootstrap::Servers(servers) = &self.config.bootstrap {
            if servers.iter().any(|s| s.starts_with('[')) {
                tracing::warn!(
                    "an IPv6 literal broker address cannot go through the TCP_NODELAY relay; connecting directly (set KAFKA_TCP_NODELAY=false to say so)"
                );
                return None;
            }
        }
        match BrokerRelay::start(deadline).await {
            Ok(relay) => Some(relay),
            Err(e) => {
                tracing::warn!(
                    error = %error_chain(&e),
                    "cannot start the TCP_NODELAY relay; connecting to the brokers directly, where a request can stall up to 40 ms"
                );
                None
            }
        }
    }

    async fn connect(
        &self,
        deadline: Instant,
        socks5_proxy: Option<String>,
    ) -> Result<Client, ProduceError> {
        let brokers = match &self.config.bootstrap {
            Bootstrap::Servers(servers) => servers.clone(),
            Bootstrap::MskCluster { arn } => self.resolve_msk(arn, deadline).await?,
        };
        if self.config.auth.sends_a_secret()
            && !self.config.tls
            && !self.config.allow_plaintext_sasl
        {
            return Err(ProduceError::connect(format!(
                "KAFKA_AUTH={} would send a password or token in the clear; refusing to connect without TLS",
                self.config.auth
            )));
        }
        let mut builder = ClientBuilder::new(brokers.clone())
            .client_id(self.config.client_id.clone())
            .backoff_config(BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
                deadline: Some(RSKAFKA_RETRY_BUDGET),
            });
        if self.config.tls {
            let identity = match self.config.auth {
                AuthMode::ClientCertificate => Some(self.client_identity(deadline).await?),
                _ => None,
            };
            let tls =
                tls::client_config_with_identity(self.config.tls_ca_file.as_deref(), identity)
                    .map_err(|e| ProduceError::connect_because("TLS configuration", e))?;
            builder = builder.tls_config(tls);
        }
        if let Some(sasl) = self.sasl_config(deadline).await? {
            builder = builder.sasl_config(sasl);
        }
        let tcp_nodelay = socks5_proxy.is_some();
        if let Some(proxy) = socks5_proxy {
            builder = builder.socks5_proxy(proxy);
        }
        let client = builder
            .build()
            .await
            .map_err(|e| ProduceError::connect_because("no broker answered", e))?;
        tracing::info!(
            brokers = brokers.join(","),
            auth = %self.config.auth,
            tls = self.config.tls,
            tcp_nodelay,
            "connected to Kafka"
        );
        Ok(client)
    }

    /// The `mtls` client certificate, from the secret or local files.
    async fn client_identity(
        &self,
        deadline: Instant,
    ) -> Result<tls::ClientIdentity, ProduceError> {
        let because = |e| ProduceError::connect_because("the mtls client certificate", e);
        match &self.config.credentials {
            Some(CredentialSource::SecretArn(arn)) => {
                let text = aws::secret_string(self.sdk().await, arn, deadline)
                    .await
                    .map_err(|e| ProduceError::connect_because("reading KAFKA_SECRET_ARN", e))?;
                auth::client_identity_from_secret_json(&text).map_err(because)
            }
            Some(CredentialSource::CertificateFiles { chain, key }) => {
                auth::client_identity_from_files(chain, key).map_err(because)
            }
            _ => Err(ProduceError::connect(
                "KAFKA_AUTH=mtls needs a client certificate",
            )),
        }
    }

    async fn sasl_config(&self, deadline: Instant) -> Result<Option<SaslConfig>, ProduceError> {
        let auth = self.config.auth;
        match auth {
            AuthMode::None | AuthMode::ClientCertificate => Ok(None),
            AuthMode::Iam => {
                let provider = self
                    .iam
                    .get_or_try_init(|| async {
                        let region = self.config.region.clone().ok_or_else(|| {
                            ProduceError::connect("AWS_REGION is needed for MSK IAM")
                        })?;
                        let credentials =
                            self.sdk().await.credentials_provider().ok_or_else(|| {
                                ProduceError::connect("no AWS credential provider is configured")
                            })?;
                        Ok::<_, ProduceError>(Arc::new(IamTokenProvider::new(region, credentials)))
                    })
                    .await?;
                // Sign once before connecting: a missing credential then fails
                // fast with its own message instead of as a handshake that
                // rskafka retries until the deadline.
                timeout_at(deadline, provider.token())
                    .await
                    .map_err(|_| ProduceError::Timeout {
                        step: "MSK IAM token",
                    })?
                    .map_err(|e| ProduceError::connect_because("MSK IAM token", e))?;
                Ok(Some(Arc::clone(provider).sasl_config()))
            }
            AuthMode::ScramSha512 | AuthMode::ScramSha256 | AuthMode::Plain => {
                if let Some(reader) = &self.password_reader {
                    let user = timeout_at(deadline, reader(deadline))
                        .await
                        .map_err(|_| ProduceError::Timeout {
                            step: "password read",
                        })?
                        .map_err(ProduceError::connect)?;
                    return Ok(user.sasl_config(auth));
                }
                let user = match &self.config.credentials {
                    Some(CredentialSource::Inline { username, password }) => UserPassword {
                        username: username.clone(),
                        password: password.clone(),
                    },
                    Some(CredentialSource::SecretArn(arn)) => {
                        let text = aws::secret_string(self.sdk().await, arn, deadline)
                            .await
                            .map_err(|e| {
                                ProduceError::connect_because("reading KAFKA_SECRET_ARN", e)
                            })?;
                        UserPassword::from_secret_json(&text).map_err(|e| {
                            ProduceError::connect_because("reading KAFKA_SECRET_ARN", e)
                        })?
                    }
                    None | Some(CredentialSource::CertificateFiles { .. }) => {
                        return Err(ProduceError::connect(format!(
                            "KAFKA_AUTH={auth} needs a user and password"
                        )))
                    }
                };
                Ok(user.sasl_config(auth))
            }
        }
    }

    async fn resolve_msk(&self, arn: &str, deadline: Instant) -> Result<Vec<String>, ProduceError> {
        let client = aws_sdk_kafka::Client::new(self.sdk().await);
        let answer = timeout_at(
            deadline,
            client.get_bootstrap_brokers().cluster_arn(arn).send(),
        )
        .await
        .map_err(|_| ProduceError::Timeout {
            step: "kafka:GetBootstrapBrokers",
        })?
        .map_err(|e| ProduceError::connect_because("kafka:GetBootstrapBrokers failed", e))?;
        let strings = MskBrokerStrings {
            plaintext: answer.bootstrap_broker_string().map(str::to_owned),
            tls: answer.bootstrap_broker_string_tls().map(str::to_owned),
            sasl_scram: answer
                .bootstrap_broker_string_sasl_scram()
                .map(str::to_owned),
            sasl_iam: answer.bootstrap_broker_string_sasl_iam().map(str::to_owned),
        };
        pick_msk_brokers(&strings, self.config.auth, self.config.tls).map_err(ProduceError::connect)
    }

    async fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk.get_or_init(aws::sdk_config).await
    }
}

impl Session {
    async fn partition_count(&self, topic: &str, deadline: Instant) -> Result<usize, ProduceError> {
        if let Some((count, fetched)) = self.partition_counts.lock().await.get(topic) {
            if fetched.elapsed() < METADATA_MAX_AGE {
                return Ok(*count);
            }
        }
        let topics = timeout_at(deadline, self.client.list_topics())
            .await
            .map_err(|_| ProduceError::Timeout { step: "metadata" })?
            .map_err(|e| ProduceError::Topic {
                topic: topic.to_owned(),
                reason: "the metadata request failed".into(),
                source: Some(Arc::new(e)),
            })?;
        let count = topics
            .iter()
            .find(|t| t.name == topic)
            .map(|t| t.partitions.len())
            .filter(|&n| n > 0)
            .ok_or_else(|| ProduceError::Topic {
                topic: topic.to_owned(),
                reason: "does not exist, or this principal is not allowed to describe it (topics are not created automatically; the broker hides topics a principal may not describe: check the topic ACLs or kafka-cluster:DescribeTopic)".into(),
                source: None,
            })?;
        self.partition_counts
            .lock()
            .await
            .insert(topic.to_owned(), (count, Instant::now()));
        Ok(count)
    }

    async fn partition_client(
        &self,
        topic: &str,
        partition: i32,
        deadline: Instant,
    ) -> Result<Arc<PartitionClient>, ProduceError> {
        let key = (topic.to_owned(), partition);
        if let Some(client) = self.partition_clients.lock().await.get(&key) {
            return Ok(Arc::clone(client));
        }
        let client = timeout_at(
            deadline,
            self.client
                .partition_client(topic, partition, UnknownTopicHandling::Error),
        )
        .await
        .map_err(|_| ProduceError::Timeout {
            step: "leader lookup",
        })?
        .map_err(|e| ProduceError::Broker {
            partition,
            reason: "the leader lookup failed".into(),
            source: Some(Arc::new(e)),
        })?;
        let client = Arc::new(client);
        self.partition_clients
            .lock()
            .await
            .insert(key, Arc::clone(&client));
        Ok(client)
    }

    async fn forget_partition_client(&self, topic: &str, partition: i32) {
        self.partition_clients
            .lock()
            .await
            .remove(&(topic.to_owned(), partition));
    }
}

async fn send_partition(
    session: &Session,
    topic: &str,
    partition: i32,
    records: Vec<(usize, Record)>,
    limit: usize,
    compression: Compression,
    deadline: Instant,
) -> Vec<(usize, ProduceOutcome)> {
    let mut outcomes = Vec::with_capacity(records.len());
    let client = match session.partition_client(topic, partition, deadline).await {
        Ok(client) => client,
        Err(e) => {
            outcomes.extend(records.into_iter().map(|(i, _)| (i, Err(e.clone()))));
            return outcomes;
        }
    };
    let mut failure: Option<ProduceError> = None;
    // Sending the records of a partition one per request costs round trips,
    // so it happens only on the retry after the broker refused a request as
    // a whole; keeping a copy of every request instead would cost a clone of
    // every record on every produce.
    let one_by_one = session
        .isolate
        .lock()
        .await
        .remove(&(topic.to_owned(), partition));
    let requests = if one_by_one {
        records.into_iter().map(|record| vec![record]).collect()
    } else {
        into_requests(records, limit)
    };
    for chunk in requests {
        if failure.is_some() {
            outcomes.extend(
                chunk
                    .into_iter()
                    .map(|(i, _)| (i, Err(ProduceError::NotSent { partition }))),
            );
            continue;
        }
        let (indexes, batch): (Vec<usize>, Vec<Record>) = chunk.into_iter().unzip();
        let sent = timeout_at(deadline, client.produce(batch, compression)).await;
        match sent {
            Ok(Ok(offsets)) if offsets.len() == indexes.len() => {
                outcomes.extend(
                    indexes
                        .into_iter()
                        .zip(offsets)
                        .map(|(i, offset)| (i, Ok(Delivery { partition, offset }))),
                );
            }
            Ok(Err(e)) if rejection(&e).is_some() && indexes.len() == 1 => {
                tracing::warn!(topic, partition, error = %error_chain(&e), "the broker rejected a record");
                let error = ProduceError::Rejected {
                    partition,
                    reason: "the record itself is at fault".into(),
                    source: Some(Arc::new(e)),
                };
                // The record is at fault, not the partition: the next ones go on.
                outcomes.extend(indexes.into_iter().map(|i| (i, Err(error.clone()))));
            }
            other => {
                let error = match other {
                    Err(_) => ProduceError::Timeout { step: "produce" },
                    Ok(Err(e)) if rejection(&e).is_some() => {
                        session
                            .isolate
                            .lock()
                            .await
                            .insert((topic.to_owned(), partition));
                        ProduceError::Broker {
                            partition,
                            reason: "the broker refused the request as a whole, so its records go one per request on the retry, to find the one at fault".into(),
                            source: Some(Arc::new(e)),
                        }
                    }
                    Ok(Err(e)) => {
                        if is_authorization(&e) {
                            // Not the records' fault, and no retry will fix
                            // it: said loudly, and the records are reported
                            // rather than dead-lettered.
                            tracing::error!(
                                topic,
                                partition,
                                error = %error_chain(&e),
                                "the broker refused this function's credentials for the topic; check the role's kafka-cluster permissions or the topic ACLs"
                            );
                        }
                        ProduceError::Broker {
                            partition,
                            reason: "the request failed".into(),
                            source: Some(Arc::new(e)),
                        }
                    }
                    Ok(Ok(offsets)) => ProduceError::Broker {
                        partition,
                        reason: format!(
                            "broker acknowledged {} records of {}",
                            offsets.len(),
                            indexes.len()
                        ),
                        source: None,
                    },
                };
                tracing::warn!(topic, partition, error = %error_chain(&error), "produce failed");
                session.forget_partition_client(topic, partition).await;
                outcomes.extend(indexes.into_iter().map(|i| (i, Err(error.clone()))));
                failure = Some(error);
            }
        }
    }
    outcomes
}

/// The broker's error when it refuses the records themselves, so that no
/// retry of the same request can succeed.
fn rejection(error: &rskafka::client::error::Error) -> Option<ProtocolError> {
    match error {
        rskafka::client::error::Error::ServerError { protocol_error, .. } => match protocol_error {
            ProtocolError::MessageTooLarge
            | ProtocolError::RecordListTooLarge
            | ProtocolError::InvalidRecord
            | ProtocolError::CorruptMessage => Some(*protocol_error),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the broker refused the client rather than the records.
fn is_authorization(error: &rskafka::client::error::Error) -> bool {
    matches!(
        error,
        rskafka::client::error::Error::ServerError {
            protocol_error: ProtocolError::TopicAuthorizationFailed
                | ProtocolError::ClusterAuthorizationFailed
                | ProtocolError::SaslAuthenticationFailed,
            ..
        }
    )
}

/// Cuts one partition's records into requests that fit the byte limit,
/// keeping their order.
fn into_requests(records: Vec<(usize, Record)>, limit: usize) -> Vec<Vec<(usize, Record)>> {
    let budget = limit.saturating_sub(BATCH_OVERHEAD);
    let mut requests = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for (index, record) in records {
        let size = record.approximate_size() + RECORD_OVERHEAD;
        if !current.is_empty() && used + size > budget {
            requests.push(std::mem::take(&mut current));
            used = 0;
        }
        used += size;
        current.push((index, record));
    }
    if !current.is_empty() {
        requests.push(current);
    }
    requests
}

fn to_rskafka(record: OutgoingRecord) -> Record {
    Record {
        key: record.key,
        value: record.value,
        headers: record.headers,
        timestamp: record.timestamp.unwrap_or_else(Utc::now),
    }
}

fn fill_missing(outcomes: &mut [Option<ProduceOutcome>], error: &ProduceError) {
    for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
        *outcome = Some(Err(error.clone()));
    }
}

fn finish(outcomes: Vec<Option<ProduceOutcome>>) -> Vec<ProduceOutcome> {
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Err(ProduceError::Timeout { step: "produce" })))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(protocol_error: ProtocolError) -> rskafka::client::error::Error {
        rskafka::client::error::Error::ServerError {
            protocol_error,
            error_message: None,
            request: rskafka::client::error::RequestContext::Partition("t".into(), 0),
            response: None,
            is_virtual: false,
        }
    }

    #[test]
    fn record_level_refusals_are_rejections_and_the_rest_are_not() {
        for refused in [
            ProtocolError::MessageTooLarge,
            ProtocolError::RecordListTooLarge,
            ProtocolError::InvalidRecord,
            ProtocolError::CorruptMessage,
        ] {
            assert_eq!(rejection(&server_error(refused)), Some(refused));
        }
        for other in [
            ProtocolError::NotLeaderOrFollower,
            ProtocolError::TopicAuthorizationFailed,
            ProtocolError::RequestTimedOut,
        ] {
            assert_eq!(rejection(&server_error(other)), None, "{other:?}");
        }
        assert!(is_authorization(&server_error(
            ProtocolError::TopicAuthorizationFailed
        )));
        assert!(!is_authorization(&server_error(
            ProtocolError::MessageTooLarge
        )));
    }

    #[test]
    fn a_rejected_record_is_permanent_and_a_broker_error_is_not() {
        let rejected = ProduceError::Rejected {
            partition: 0,
            reason: "MessageTooLarge".into(),
            source: None,
        };
        assert!(rejected.is_permanent());
        let transient = ProduceError::Broker {
            partition: 0,
            reason: "NotLeaderOrFollower".into(),
            source: None,
        };
        assert!(!transient.is_permanent());
    }

    fn record(value_len: usize) -> (usize, Record) {
        (
            0,
            to_rskafka(OutgoingRecord {
                value: Some(vec![b'x'; value_len]),
                ..Default::default()
            }),
        )
    }

    #[test]
    fn requests_respect_the_byte_limit_and_keep_order() {
        let records: Vec<(usize, Record)> = (0..10)
            .map(|i| {
                let (_, r) = record(300);
                (i, r)
            })
            .collect();
        let requests = into_requests(records, 1024);
        assert!(requests.len() > 1);
        let flat: Vec<usize> = requests.iter().flatten().map(|(i, _)| *i).collect();
        assert_eq!(flat, (0..10).collect::<Vec<_>>());
        for request in &requests {
            let bytes: usize = request
                .iter()
                .map(|(_, r)| r.approximate_size() + RECORD_OVERHEAD)
                .sum();
            assert!(bytes + BATCH_OVERHEAD <= 1024 || request.len() == 1);
        }
    }

    #[test]
    fn a_single_record_always_makes_a_request() {
        assert_eq!(into_requests(vec![record(5000)], 1024).len(), 1);
        assert!(into_requests(Vec::new(), 1024).is_empty());
    }

    #[tokio::test]
    async fn oversized_records_fail_before_any_network_step() {
        let mut config = KafkaConfig::plaintext(vec!["127.0.0.1:1".into()]);
        config.max_message_bytes = 2048;
        let producer = KafkaProducer::new(config);
        let outcomes = producer
            .produce(
                "t",
                vec![OutgoingRecord {
                    value: Some(vec![0; 4096]),
                    ..Default::default()
                }],
                Instant::now() + Duration::from_secs(5),
            )
            .await;
        assert!(matches!(
            outcomes[0],
            Err(ProduceError::TooLarge {
                size: 4096,
                limit: 2048
            })
        ));
        assert!(outcomes[0].as_ref().unwrap_err().is_permanent());
    }

    #[tokio::test]
    async fn broker_connections_go_through_the_relay_unless_turned_off_or_ipv6() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let relayed = KafkaProducer::new(KafkaConfig::plaintext(vec!["b-1.kafka:9092".into()]));
        let relay = relayed.start_relay(deadline).await;
        let address = relay.as_ref().map(BrokerRelay::proxy_address);
        assert!(
            address
                .as_deref()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{address:?}"
        );

        let mut config = KafkaConfig::plaintext(vec!["b-1.kafka:9092".into()]);
        config.tcp_nodelay = false;
        assert!(KafkaProducer::new(config)
            .start_relay(deadline)
            .await
            .is_none());

        let ipv6 = KafkaConfig::plaintext(vec!["[::1]:9092".into()]);
        assert!(KafkaProducer::new(ipv6)
            .start_relay(deadline)
            .await
            .is_none());
    }

    #[test]
    fn record_size_counts_key_value_and_headers() {
        let r = OutgoingRecord {
            key: Some(vec![0; 3]),
            value: Some(vec![0; 5]),
            headers: BTreeMap::from([("ab".to_owned(), vec![0; 4])]),
            timestamp: None,
        };
        assert_eq!(r.size(), 3 + 5 + 2 + 4 + 10);
    }
}
