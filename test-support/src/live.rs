//! The live side of the event source mapping emulators: what
//! `mapping-runner` runs. It polls real sources (DynamoDB Streams and
//! Kinesis through the AWS APIs a local moto serves, Kafka topics on the
//! local broker), invokes functions running under `cargo lambda watch`
//! with batches in Lambda's event shapes, and acts on each answer with the
//! same rules as the emulated runs ([`ShardCursor`], [`KafkaCursor`]), with
//! the settings read from `template.yaml`.
//!
//! Time here is real: a batching window is waited for, a failed
//! invocation is retried after a second, a record's age is measured from
//! its arrival. Records given up on go where the mapping's destination
//! says: an S3 bucket on moto (the invocation record, records included) or
//! the Kafka on-failure topic (the records themselves).
//!
//! Every settled invocation is one JSON line on stdout (see [`Report`]),
//! so a driver (`scripts/demo.py`) can count what happened.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::Client;
use rskafka::record::Record;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::http_client;
use crate::kafka_mapping::{self, KafkaCursor, KafkaMappingSettings, KafkaOnFailure, KafkaRecord};
use crate::stream_mapping::{
    on_failure_record, sequence_number, Invocation, MappingSettings, OnFailure, Settled,
    ShardCursor, Step, StreamKind, Template,
};

/// Bound on each call to moto and on each broker call made while polling.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle shard or topic is polled (Lambda polls a shard about
/// four times a second).
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The pause before a failed batch is tried again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Time an invocation is given beyond the function's timeout before the
/// runner counts it failed (`cargo lambda watch` enforces no timeout).
const INVOKE_SLACK: Duration = Duration::from_secs(5);
/// Records asked for per `GetRecords` call.
const GET_RECORDS_LIMIT: usize = 1_000;

/// Where the runner finds what it talks to.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `cargo lambda watch`'s invoke address, `host:port`.
    pub lambda: String,
    /// moto's address, `host:port`.
    pub aws: String,
    /// The Kafka broker, `host:port`.
    pub broker: String,
    /// The region the sources live in.
    pub region: String,
    /// The on-failure bucket an S3 destination stands for.
    pub failure_bucket: String,
}

/// The source a mapping reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A DynamoDB stream, by ARN.
    DynamoDb(String),
    /// A Kinesis stream, by name.
    Kinesis(String),
    /// A Kafka topic.
    Kafka(String),
}

impl Source {
    /// Reads `dynamodb:<stream-arn>`, `kinesis:<stream-name>` or
    /// `kafka:<topic>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("dynamodb", arn)) if !arn.is_empty() => Ok(Self::DynamoDb(arn.to_owned())),
            Some(("kinesis", name)) if !name.is_empty() => Ok(Self::Kinesis(name.to_owned())),
            Some(("kafka", topic)) if !topic.is_empty() => Ok(Self::Kafka(topic.to_owned())),
            _ => Err(format!(
                "{text:?}: a source is dynamodb:<stream-arn>, kinesis:<stream-name> or kafka:<topic>"
            )),
        }
    }
}

/// One mapping to run: the template's mapping, the function it invokes
/// (its `cargo lambda watch` name) and its source.
#[derive(Debug, Clone)]
pub struct LiveMapping {
    /// The mapping's logical id in the template.
    pub logical_id: String,
    /// The function's name under `cargo lambda watch`.
    pub function: String,
    /// What it reads.
    pub source: Source,
}

/// What one settled invocation (or a give-up without one) came to, printed
/// as a JSON line.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The mapping's logical id.
    pub mapping: String,
    /// The function invoked.
    pub function: String,
    /// Records in the batch.
    pub records: usize,
    /// `ok`, `partial`, `error`, or `too-old` (given up uninvoked).
    pub answer: String,
    /// Records committed by this answer.
    pub committed: usize,
    /// Records to be tried again.
    pub retried: usize,
    /// Records given up, sent to `stored`.
    pub given_up: usize,
    /// Where given-up records went (`s3://…`, `kafka://…`, `discarded`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stored: String,
    /// The error of a failed invocation.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Writes one line of the runner's report on stdout: that is its output,
/// read by the driver, not a log.
#[allow(clippy::print_stdout)]
pub fn emit(line: &Value) {
    println!("{line}");
}

fn print(report: &Report) {
    if let Ok(line) = serde_json::to_value(report) {
        emit(&line);
    }
}

fn note(mapping: &str, message: &str) {
    emit(&json!({"mapping": mapping, "note": message}));
}

/// Runs every mapping until the process is stopped.
pub async fn run(
    template: Template,
    endpoints: Endpoints,
    mappings: Vec<LiveMapping>,
    offsets: PathBuf,
) -> Result<(), String> {
    let endpoints = Arc::new(endpoints);
    let offsets = Arc::new(OffsetStore::open(offsets));
    let mut tasks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
        Vec::new();
    for mapping in mappings {
        match mapping.source.clone() {
            Source::DynamoDb(stream) | Source::Kinesis(stream) => {
                let kind = match mapping.source {
                    Source::DynamoDb(_) => StreamKind::DynamoDb,
                    _ => StreamKind::Kinesis,
                };
                let settings = template.stream_mapping(&mapping.logical_id)?;
                let live = live_settings(&template, &mapping.logical_id)?;
                for shard in list_shards(&endpoints, kind, &stream).await? {
                    let shard = StreamShard {
                        kind,
                        stream: stream.clone(),
                        shard,
                    };
                    tasks.push(Box::pin(run_shard(
                        endpoints.clone(),
                        mapping.clone(),
                        settings.clone(),
                        live.clone(),
                        shard,
                    )));
                }
            }
            Source::Kafka(topic) => {
                let settings = template.kafka_mapping(&mapping.logical_id)?;
                let live = live_settings(&template, &mapping.logical_id)?;
                let client =
                    tokio::time::timeout(SERVICE_TIMEOUT, crate::client(&endpoints.broker))
                        .await
                        .map_err(|_| format!("broker {}: no answer", endpoints.broker))?
                        .map_err(|e| format!("broker {}: {e}", endpoints.broker))?;
                let topic_run = KafkaTopic {
                    endpoints: endpoints.clone(),
                    mapping: mapping.clone(),
                    settings,
                    live,
                    topic,
                    client: Arc::new(client),
                    offsets: offsets.clone(),
                };
                tasks.push(Box::pin(topic_run.run()));
            }
        }
    }
    emit(&json!({"note": "started", "tasks": tasks.len()}));
    // Each task says `ready` once it holds its start position. A task only
    // ends by panicking: that stops the runner rather than one mapping
    // going quiet.
    let mut running = tokio::task::JoinSet::new();
    for task in tasks {
        running.spawn(task);
    }
    match running.join_next().await {
        Some(Err(error)) => Err(format!("a mapping task ended: {error}")),
        _ => Err("a mapping task ended".into()),
    }
}

/// The settings the emulated runs do not need: the batching window, the
/// starting position, a Kafka trigger's consumer group.
#[derive(Debug, Clone)]
struct LiveSettings {
    batching_window: Duration,
    from_latest: bool,
    consumer_group: String,
    self_managed: bool,
    function_timeout: Duration,
}

fn live_settings(template: &Template, logical_id: &str) -> Result<LiveSettings, String> {
    let p = template.properties(logical_id)?;
    let window = match &p["MaximumBatchingWindowInSeconds"] {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let group = p["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]
        .as_str()
        .or_else(|| p["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"].as_str())
        .unwrap_or(logical_id);
    let function = p["FunctionName"].as_str().unwrap_or_default();
    let timeout = template
        .properties(function)
        .ok()
        .and_then(|f| f["Timeout"].as_u64())
        .unwrap_or(3);
    Ok(LiveSettings {
        batching_window: Duration::from_secs(window),
        from_latest: p["StartingPosition"] == "LATEST",
        consumer_group: group.to_owned(),
        self_managed: p.get("SelfManagedEventSource").is_some(),
        function_timeout: Duration::from_secs(timeout),
    })
}

// ---- the AWS side (moto) ---------------------------------------------------

/// A JSON-protocol AWS call. moto does not check signatures; it reads the
/// service and region from the credential scope, so the header names them.
async fn aws_call(
    endpoints: &Endpoints,
    service: &str,
    target: &str,
    body: &Value,
) -> Result<Value, String> {
    let authorization = authorization(endpoints, service);
    let content_type = if service == "kinesis" {
        "application/x-amz-json-1.1"
    } else {
        "application/x-amz-json-1.0"
    };
    let answer = http_client::request(
        &endpoints.aws,
        "POST",
        "/",
        &[
            ("X-Amz-Target", target),
            ("Content-Type", content_type),
            ("Authorization", &authorization),
        ],
        body.to_string().as_bytes(),
        SERVICE_TIMEOUT,
    )
    .await?;
    if answer.status != 200 {
        return Err(format!("{target}: {} {}", answer.status, answer.text()));
    }
    serde_json::from_slice(&answer.body).map_err(|e| format!("{target}: {e}"))
}

fn authorization(endpoints: &Endpoints, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/{}/{service}/aws4_request, SignedHeaders=host, Signature=0",
        endpoints.region
    )
}

/// Puts one object in the failure bucket; the `s3://` URL on success.
async fn s3_put(endpoints: &Endpoints, key: &str, body: &[u8]) -> Result<String, String> {
    let path = format!("/{}/{key}", endpoints.failure_bucket);
    let authorization = authorization(endpoints, "s3");
    let answer = http_client::request(
        &endpoints.aws,
        "PUT",
        &path,
        &[
            ("Authorization", &authorization),
            ("Content-Type", "application/json"),
        ],
        body,
        SERVICE_TIMEOUT,
    )
    .await?;
    if answer.status != 200 {
        return Err(format!("PUT {path}: {} {}", answer.status, answer.text()));
    }
    Ok(format!("s3://{}/{key}", endpoints.failure_bucket))
}

/// The key Lambda gives an on-failure object:
/// `aws/lambda/<mapping>/<shard>/YYYY/MM/DD/<timestamp>-<unique>`.
fn failure_key(mapping: &str, shard: &str) -> String {
    let now = chrono::Utc::now();
    format!(
        "aws/lambda/{mapping}/{shard}/{}/{}-{}",
        now.format("%Y/%m/%d"),
        now.format("%Y-%m-%dT%H.%M.%S"),
        now.timestamp_nanos_opt().unwrap_or_default()
    )
}

/// The API of a stream kind: the credential scope's service, the target
/// prefix, and the request field that names the stream.
fn stream_api(kind: StreamKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        StreamKind::DynamoDb => ("dynamodb", "DynamoDBStreams_20120810", "StreamArn"),
        StreamKind::Kinesis => ("kinesis", "Kinesis_20131202", "StreamName"),
    }
}

async fn list_shards(
    endpoints: &Endpoints,
    kind: StreamKind,
    stream: &str,
) -> Result<Vec<String>, String> {
    let (service, prefix, field) = stream_api(kind);
    let description = aws_call(
        endpoints,
        service,
        &format!("{prefix}.DescribeStream"),
        &json!({ field: stream }),
    )
    .await?;
    Ok(shard_ids(&description["StreamDescription"]["Shards"]))
}

fn shard_ids(shards: &Value) -> Vec<String> {
    shards
        .as_array()
        .map(|shards| {
            shards
                .iter()
                .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Invokes `function` under `cargo lambda watch` with `event`. A 200 is an
/// answer; any other status (the function's error), or no answer within
/// `timeout`, is a failed invocation.
async fn invoke(
    endpoints: &Endpoints,
    function: &str,
    event: &Value,
    timeout: Duration,
) -> Invocation {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let answer = http_client::request(
        &endpoints.lambda,
        "POST",
        &path,
        &[("Content-Type", "application/json")],
        event.to_string().as_bytes(),
        timeout,
    )
    .await;
    match answer {
        Ok(answer) if answer.status == 200 => answered(&answer.body),
        Ok(answer) => Invocation::Failed(format!("status {}: {}", answer.status, answer.text())),
        Err(error) => Invocation::Failed(error),
    }
}

/// A 200's body as the mapping reads it. An error document (`cargo lambda
/// watch` answers an init error with a 200) or a body that is not JSON is a
/// failed invocation, never an empty success that would commit the batch.
fn answered(body: &[u8]) -> Invocation {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Invocation::Answered(Value::Null);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.get("errorType").is_some() || value.get("errorMessage").is_some() => {
            Invocation::Failed(value.to_string())
        }
        Ok(value) => Invocation::Answered(value),
        Err(error) => Invocation::Failed(format!("the answer is not JSON: {error}")),
    }
}

// ---- DynamoDB Streams and Kinesis --------------------------------------------

struct StreamShard {
    kind: StreamKind,
    /// The stream's ARN (DynamoDB) or name (Kinesis).
    stream: String,
    shard: String,
}

impl StreamShard {
    /// A request naming this shard's stream and shard, with `fields`.
    fn request(&self, fields: Value) -> Value {
        let (_, _, stream_field) = stream_api(self.kind);
        let mut request = json!({ "ShardId": self.shard, stream_field: self.stream });
        if let (Some(request), Value::Object(fields)) = (request.as_object_mut(), fields) {
            request.extend(fields);
        }
        request
    }

    async fn call(
        &self,
        endpoints: &Endpoints,
        action: &str,
        request: &Value,
    ) -> Result<Value, String> {
        let (service, prefix, _) = stream_api(self.kind);
        aws_call(endpoints, service, &format!("{prefix}.{action}"), request).await
    }

    /// An iterator at the start position (`LATEST` or `TRIM_HORIZON`).
    async fn iterator(&self, endpoints: &Endpoints, latest: bool) -> Result<String, String> {
        let kind = if latest { "LATEST" } else { "TRIM_HORIZON" };
        self.iterator_of(endpoints, json!({ "ShardIteratorType": kind }))
            .await
    }

    /// An iterator just after `last` (or at the start position when
    /// nothing was read); `None` leaves it for the next poll.
    async fn iterator_after(
        &self,
        endpoints: &Endpoints,
        last: Option<&Value>,
        latest: bool,
    ) -> Option<String> {
        let Some(sequence) = last.and_then(|r| sequence_number(r)) else {
            return self.iterator(endpoints, latest).await.ok();
        };
        let fields = json!({
            "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
            "StartingSequenceNumber": sequence,
        });
        self.iterator_of(endpoints, fields).await.ok()
    }

    async fn iterator_of(&self, endpoints: &Endpoints, fields: Value) -> Result<String, String> {
        let answer = self
            .call(endpoints, "GetShardIterator", &self.request(fields))
            .await?;
        answer["ShardIterator"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("GetShardIterator for {}: no iterator", self.shard))
    }

    /// The next records, in the event's shape, and the next iterator
    /// (`None` once the shard is closed).
    async fn records(
        &self,
        endpoints: &Endpoints,
        iterator: &str,
    ) -> Result<(Vec<Value>, Option<String>), String> {
        let request = json!({"ShardIterator": iterator, "Limit": GET_RECORDS_LIMIT});
        let answer = self.call(endpoints, "GetRecords", &request).await?;
        let records = answer["Records"]
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .map(|r| self.event_record(endpoints, r))
                    .collect()
            })
            .unwrap_or_default();
        Ok((
            records,
            answer["NextShardIterator"].as_str().map(str::to_owned),
        ))
    }

    /// An API record as Lambda puts it in the event.
    fn event_record(&self, endpoints: &Endpoints, record: &Value) -> Value {
        match self.kind {
            StreamKind::DynamoDb => {
                let mut record = record.clone();
                record["eventSourceARN"] = json!(self.stream);
                record
            }
            StreamKind::Kinesis => {
                let sequence = record["SequenceNumber"].as_str().unwrap_or_default();
                json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": record["PartitionKey"],
                        "sequenceNumber": sequence,
                        "data": record["Data"],
                        "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"],
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": format!("{}:{sequence}", self.shard),
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/local-mapping-runner",
                    "awsRegion": endpoints.region,
                    "eventSourceARN": format!(
                        "arn:aws:kinesis:{}:123456789012:stream/{}",
                        endpoints.region, self.stream
                    ),
                })
            }
        }
    }
}

/// When a stream record arrived, in seconds since the epoch.
fn arrival(record: &Value) -> Option<f64> {
    record
        .pointer("/dynamodb/ApproximateCreationDateTime")
        .or_else(|| record.pointer("/kinesis/approximateArrivalTimestamp"))
        .and_then(Value::as_f64)
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn run_shard(
    endpoints: Arc<Endpoints>,
    mapping: LiveMapping,
    settings: MappingSettings,
    live: LiveSettings,
    shard: StreamShard,
) {
    let name = mapping.logical_id.as_str();
    let mut iterator = loop {
        match shard.iterator(&endpoints, live.from_latest).await {
            Ok(iterator) => break Some(iterator),
            Err(error) => note(name, &error),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    };
    emit(&json!({"mapping": name, "note": "ready", "shard": shard.shard}));
    let mut records: Vec<Value> = Vec::new();
    let mut cursor = ShardCursor::new(&settings);
    let mut waiting_since: Option<Instant> = None;
    loop {
        if let Some(current) = iterator.clone() {
            match shard.records(&endpoints, &current).await {
                Ok((read, next)) => {
                    records.extend(read);
                    iterator = next;
                }
                Err(error) => {
                    // An iterator can expire: start again after the last
                    // record read.
                    note(name, &error);
                    iterator = shard
                        .iterator_after(&endpoints, records.last(), live.from_latest)
                        .await;
                }
            }
        }
        let pending = records.len() - cursor.position();
        if pending == 0 {
            waiting_since = None;
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        let since = *waiting_since.get_or_insert_with(Instant::now);
        if pending < settings.batch_size && since.elapsed() < live.batching_window {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        let now = now_seconds();
        let oldest = |start: usize, end: usize| {
            let first = records[start..end]
                .iter()
                .filter_map(arrival)
                .fold(now, f64::min);
            Duration::try_from_secs_f64(now - first).unwrap_or_default()
        };
        let Some(step) = cursor.next(records.len(), oldest) else {
            continue;
        };
        let mut report = Report {
            mapping: name.to_owned(),
            function: mapping.function.clone(),
            ..Report::default()
        };
        match step {
            Step::TooOld(start, end) => {
                let attempts = cursor.give_up(end);
                report.records = end - start;
                report.answer = "too-old".into();
                report.given_up = end - start;
                report.stored = store_stream_batch(
                    &endpoints,
                    &settings,
                    &shard,
                    name,
                    &records[start..end],
                    "RecordAgeExceeded",
                    attempts,
                )
                .await;
            }
            Step::Invoke(start, end) => {
                let batch = &records[start..end];
                let event = json!({ "Records": batch });
                let timeout = settings.function_timeout + INVOKE_SLACK;
                let answer = invoke(&endpoints, &mapping.function, &event, timeout).await;
                let sequence_numbers: Vec<&str> = batch
                    .iter()
                    .map(|r| sequence_number(r).unwrap_or(""))
                    .collect();
                report.records = batch.len();
                describe(&mut report, &answer);
                match cursor.settle(start, end, &sequence_numbers, &answer) {
                    Settled::Committed(from, to) => {
                        report.committed = to - from;
                        report.retried = end - to;
                        waiting_since = None;
                    }
                    Settled::Retried => {
                        report.retried = batch.len();
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    Settled::Exhausted(attempts) => {
                        report.given_up = batch.len();
                        report.stored = store_stream_batch(
                            &endpoints,
                            &settings,
                            &shard,
                            name,
                            batch,
                            "RetryAttemptsExhausted",
                            attempts,
                        )
                        .await;
                    }
                }
            }
        }
        print(&report);
    }
}

fn describe(report: &mut Report, answer: &Invocation) {
    match answer {
        Invocation::Failed(error) => {
            report.answer = "error".into();
            report.error = error.chars().take(300).collect();
        }
        Invocation::Answered(response)
            if response["batchItemFailures"]
                .as_array()
                .is_some_and(|failures| !failures.is_empty()) =>
        {
            report.answer = "partial".into();
        }
        Invocation::Answered(_) => report.answer = "ok".into(),
    }
}

/// Sends a given-up stream batch to the mapping's destination; where it
/// went. An S3 put that fails is tried again until it works: the mapping
/// does not move on without its record.
async fn store_stream_batch(
    endpoints: &Endpoints,
    settings: &MappingSettings,
    shard: &StreamShard,
    mapping: &str,
    batch: &[Value],
    condition: &str,
    attempts: u32,
) -> String {
    match settings.on_failure {
        OnFailure::Discard => "discarded".into(),
        OnFailure::Sqs | OnFailure::Sns => "metadata only (not emulated live)".into(),
        OnFailure::S3 => {
            let object = on_failure_record(shard.kind, &shard.shard, batch, condition, attempts, 0);
            let body = object.to_string();
            loop {
                match s3_put(
                    endpoints,
                    &failure_key(mapping, &shard.shard),
                    body.as_bytes(),
                )
                .await
                {
                    Ok(url) => return url,
                    Err(error) => note(mapping, &error),
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

// ---- Kafka ---------------------------------------------------------------------

/// Committed offsets per consumer group, kept in a JSON file
/// (`{"group": {"topic-partition": next offset}}`).
struct OffsetStore {
    path: PathBuf,
    groups: std::sync::Mutex<BTreeMap<String, BTreeMap<String, i64>>>,
}

impl OffsetStore {
    fn open(path: PathBuf) -> Self {
        let groups = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self {
            path,
            groups: std::sync::Mutex::new(groups),
        }
    }

    fn committed(&self, group: &str, key: &str) -> Option<i64> {
        let groups = self.groups.lock().ok()?;
        groups.get(group)?.get(key).copied()
    }

    fn commit(&self, group: &str, offsets: BTreeMap<String, i64>) {
        let Ok(mut groups) = self.groups.lock() else {
            return;
        };
        groups.entry(group.to_owned()).or_default().extend(offsets);
        if let Ok(text) = serde_json::to_vec_pretty(&*groups) {
            if let Err(error) = std::fs::write(&self.path, text) {
                note(
                    group,
                    &format!("cannot write {}: {error}", self.path.display()),
                );
            }
        }
    }
}

struct KafkaTopic {
    endpoints: Arc<Endpoints>,
    mapping: LiveMapping,
    settings: KafkaMappingSettings,
    live: LiveSettings,
    topic: String,
    client: Arc<Client>,
    offsets: Arc<OffsetStore>,
}

impl KafkaTopic {
    async fn partitions(&self) -> Result<Vec<(i32, PartitionClient, i64)>, String> {
        let topics = tokio::time::timeout(SERVICE_TIMEOUT, self.client.list_topics())
            .await
            .map_err(|_| "list_topics: no answer".to_owned())?
            .map_err(|e| format!("list_topics: {e}"))?;
        let topic = topics
            .into_iter()
            .find(|t| t.name == self.topic)
            .ok_or_else(|| format!("topic {} does not exist", self.topic))?;
        let mut partitions = Vec::new();
        for partition in topic.partitions {
            let client = tokio::time::timeout(
                SERVICE_TIMEOUT,
                self.client
                    .partition_client(&self.topic, partition, UnknownTopicHandling::Error),
            )
            .await
            .map_err(|_| "partition_client: no answer".to_owned())?
            .map_err(|e| format!("partition {partition}: {e}"))?;
            let key = format!("{}-{partition}", self.topic);
            let start = match self.offsets.committed(&self.live.consumer_group, &key) {
                Some(offset) => offset,
                None => {
                    let at = if self.live.from_latest {
                        OffsetAt::Latest
                    } else {
                        OffsetAt::Earliest
                    };
                    tokio::time::timeout(SERVICE_TIMEOUT, client.get_offset(at))
                        .await
                        .map_err(|_| "get_offset: no answer".to_owned())?
                        .map_err(|e| format!("get_offset: {e}"))?
                }
            };
            partitions.push((partition, client, start));
        }
        Ok(partitions)
    }

    async fn run(self) {
        let name = self.mapping.logical_id.clone();
        let mut partitions = loop {
            match self.partitions().await {
                Ok(partitions) => break partitions,
                Err(error) => note(&name, &error),
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        };
        // Start positions are committed at once, so a LATEST start holds
        // even when nothing arrives before the runner is restarted.
        self.commit(&partitions, &KafkaCursor::new(&self.settings));
        emit(&json!({"mapping": name, "note": "ready", "topic": self.topic}));
        let mut cursor = KafkaCursor::new(&self.settings);
        let mut waiting_since: Option<Instant> = None;
        loop {
            for (partition, client, next) in partitions.iter_mut() {
                let fetch = client.fetch_records(*next, 1..10_000_000, 50);
                match tokio::time::timeout(SERVICE_TIMEOUT, fetch).await {
                    Ok(Ok((records, _))) => {
                        if let Some(last) = records.last() {
                            *next = last.offset + 1;
                        }
                        cursor.read(
                            records
                                .into_iter()
                                .map(|r| event_record(&self.topic, *partition, r)),
                        );
                    }
                    Ok(Err(error)) => note(&name, &format!("fetch: {error}")),
                    Err(_) => note(&name, "fetch: no answer from the broker"),
                }
            }
            let pending = cursor.pending().count();
            if pending == 0 {
                waiting_since = None;
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if pending < self.settings.batch_size && since.elapsed() < self.live.batching_window {
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            let Some(batch) = cursor.next_batch() else {
                continue;
            };
            let mut event = kafka_mapping::event(&batch);
            if self.live.self_managed {
                event = json!({
                    "eventSource": "SelfManagedKafka",
                    "bootstrapServers": self.endpoints.broker,
                    "records": event["records"],
                });
            }
            let mut report = Report {
                mapping: name.clone(),
                function: self.mapping.function.clone(),
                records: batch.len(),
                ..Report::default()
            };
            let answer = invoke(
                &self.endpoints,
                &self.mapping.function,
                &event,
                self.live.function_timeout + INVOKE_SLACK,
            )
            .await;
            describe(&mut report, &answer);
            let settled = cursor.settle(batch, &answer);
            report.committed = settled.committed.len();
            report.retried = settled.retried;
            report.given_up = settled.given_up.len();
            if !settled.given_up.is_empty() {
                report.stored = self.store(&settled.given_up).await;
            }
            if settled.retried > 0 {
                tokio::time::sleep(RETRY_PAUSE).await;
            } else {
                waiting_since = None;
            }
            self.commit(&partitions, &cursor);
            print(&report);
        }
    }

    /// Commits, per partition, the offset before the first record still
    /// pending (or the next to fetch when none is).
    fn commit(&self, partitions: &[(i32, PartitionClient, i64)], cursor: &KafkaCursor) {
        let mut offsets = BTreeMap::new();
        for (partition, _, next) in partitions {
            let lowest_pending = cursor
                .pending()
                .filter(|r| r.partition == i64::from(*partition))
                .map(|r| r.offset)
                .min();
            offsets.insert(
                format!("{}-{partition}", self.topic),
                lowest_pending.unwrap_or(*next),
            );
        }
        self.offsets.commit(&self.live.consumer_group, offsets);
    }

    /// Sends given-up records to the trigger's destination, trying again
    /// until it works; where they went.
    async fn store(&self, given_up: &[KafkaRecord]) -> String {
        let name = &self.mapping.logical_id;
        loop {
            let stored = match &self.settings.on_failure {
                KafkaOnFailure::Discard => Ok("discarded".to_owned()),
                KafkaOnFailure::S3 => {
                    let body = kafka_mapping::on_failure_record(given_up).to_string();
                    s3_put(
                        &self.endpoints,
                        &failure_key(name, &self.topic),
                        body.as_bytes(),
                    )
                    .await
                }
                KafkaOnFailure::Topic(topic) => self.produce_to(topic, given_up).await,
            };
            match stored {
                Ok(url) => return url,
                Err(error) => note(name, &error),
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn produce_to(&self, topic: &str, records: &[KafkaRecord]) -> Result<String, String> {
        let client = tokio::time::timeout(
            SERVICE_TIMEOUT,
            self.client
                .partition_client(topic, 0, UnknownTopicHandling::Error),
        )
        .await
        .map_err(|_| format!("{topic}: no answer"))?
        .map_err(|e| format!("{topic}: {e}"))?;
        let decode = |field: &Value| {
            field
                .as_str()
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        };
        let records = records
            .iter()
            .map(|r| Record {
                key: decode(&r.json["key"]),
                value: decode(&r.json["value"]),
                headers: event_headers(&r.json["headers"]),
                timestamp: chrono::Utc::now(),
            })
            .collect();
        tokio::time::timeout(
            SERVICE_TIMEOUT,
            client.produce(records, Compression::NoCompression),
        )
        .await
        .map_err(|_| format!("{topic}: no answer"))?
        .map_err(|e| format!("{topic}: {e}"))?;
        Ok(format!("kafka://{topic}"))
    }
}

/// A Kafka event's `headers` (`[{"name": [bytes…]}]`) as record headers;
/// an entry of another shape is left out.
fn event_headers(headers: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in headers.as_array().into_iter().flatten() {
        for (name, bytes) in entry.as_object().into_iter().flatten() {
            let bytes: Option<Vec<u8>> = bytes
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            if let Some(bytes) = bytes {
                out.insert(name.clone(), bytes);
            }
        }
    }
    out
}

/// A fetched record as Lambda puts it in a Kafka event.
fn event_record(
    topic: &str,
    partition: i32,
    fetched: rskafka::record::RecordAndOffset,
) -> KafkaRecord {
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let record = fetched.record;
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|(name, value)| json!({ name: value }))
        .collect();
    let mut json = json!({
        "topic": topic,
        "partition": partition,
        "offset": fetched.offset,
        "timestamp": record.timestamp.timestamp_millis(),
        "timestampType": "CREATE_TIME",
        "headers": headers,
    });
    if let Some(key) = &record.key {
        json["key"] = json!(encode(key));
    }
    if let Some(value) = &record.value {
        json["value"] = json!(encode(value));
    }
    KafkaRecord {
        topic: topic.to_owned(),
        partition: i64::from(partition),
        offset: fetched.offset,
        json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_read_by_their_prefix() {
        assert_eq!(
            Source::parse("kafka:clicks"),
            Ok(Source::Kafka("clicks".into()))
        );
        assert_eq!(
            Source::parse("dynamodb:arn:aws:dynamodb:us-east-1:1:table/t/stream/x"),
            Ok(Source::DynamoDb(
                "arn:aws:dynamodb:us-east-1:1:table/t/stream/x".into()
            ))
        );
        assert!(Source::parse("sqs:queue").is_err());
        assert!(Source::parse("kinesis:").is_err());
    }

    #[test]
    fn a_kafka_record_keeps_its_bytes_and_headers() {
        let fetched = rskafka::record::RecordAndOffset {
            record: Record {
                key: Some(b"k".to_vec()),
                value: Some(b"{}".to_vec()),
                headers: BTreeMap::from([("traceparent".to_owned(), b"00-ab".to_vec())]),
                timestamp: chrono::DateTime::from_timestamp_millis(1_000).unwrap_or_default(),
            },
            offset: 7,
        };
        let record = event_record("clicks", 2, fetched);
        assert_eq!(record.json["key"], "aw==");
        assert_eq!(record.json["value"], "e30=");
        assert_eq!(record.json["timestamp"], 1_000);
        assert_eq!(
            record.json["headers"][0]["traceparent"],
            json!([48, 48, 45, 97, 98])
        );
        assert_eq!(record.position(), ("clicks".into(), 2, 7));
        assert_eq!(
            event_headers(&record.json["headers"]),
            BTreeMap::from([("traceparent".to_owned(), b"00-ab".to_vec())]),
            "headers survive the trip to an on-failure topic"
        );
    }
}
