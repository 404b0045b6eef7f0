//! A stand-in for Lambda's DynamoDB Streams and Kinesis event source
//! mapping, so a failure-path test can assert where every record ends up
//! once the engine has acted on the function's answer, with the mapping's
//! settings read from `template.yaml` itself.
//!
//! What it does, from the Lambda developer guide ("Configuring partial batch
//! response", "Retain discarded batch records", the parameters pages):
//!
//! * Batches of at most `BatchSize` records, in order, from one shard.
//! * A successful answer checkpoints the whole batch, unless the mapping has
//!   `ReportBatchItemFailures`: then the checkpoint stops at the lowest
//!   reported sequence number and the mapping starts again there. An empty
//!   or null identifier, or one that is not in the batch, fails the batch.
//! * A failed invocation (an error, or no progress at all) is retried. With
//!   `BisectBatchOnFunctionError` an erroring batch of two or more records is
//!   split in two first, which uses no retry.
//! * After `MaximumRetryAttempts` retries (-1: no limit), or once the oldest
//!   record of the batch is older than `MaximumRecordAgeInSeconds` (-1: no
//!   limit), the batch goes to the on-failure destination and the shard
//!   moves on. An S3 destination gets the whole invocation record, the event
//!   included as JSON text under `payload`; SQS and SNS get the metadata
//!   only, which this emulator records the same way (without `payload`).
//!
//! Time is emulated: each failed invocation costs the function's timeout
//! (a producer facing a dead broker waits until its deadline), a successful
//! one a second, so a test can age records past the limit in a few calls.

use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

/// Where the mapping sends what it gives up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    /// An S3 bucket: the invocation record with the event.
    S3,
    /// An SQS queue: metadata only.
    Sqs,
    /// An SNS topic: metadata only.
    Sns,
    /// None configured: the batch is dropped.
    Discard,
}

/// Which stream the mapping reads (it names the batch-info key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// DynamoDB Streams (`DDBStreamBatchInfo`).
    DynamoDb,
    /// Kinesis Data Streams (`KinesisBatchInfo`).
    Kinesis,
}

/// A stream mapping's settings, as deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSettings {
    /// `BatchSize`.
    pub batch_size: usize,
    /// `FunctionResponseTypes` includes `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts`; `None` for -1 (no limit).
    pub maximum_retry_attempts: Option<u32>,
    /// `MaximumRecordAgeInSeconds`; `None` for -1 (no limit).
    pub maximum_record_age: Option<Duration>,
    /// `DestinationConfig.OnFailure`.
    pub on_failure: OnFailure,
    /// The target function's `Timeout`.
    pub function_timeout: Duration,
}

/// A CloudFormation template with its parameters at their defaults.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

impl Template {
    /// Reads a SAM/CloudFormation template, tags (`!Ref`, `!If`, …) kept.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let yaml: serde_norway::Value =
            serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            root: yaml_to_json(yaml),
        })
    }

    /// The same template deployed with `name` set to `value`, as
    /// `--parameter-overrides` would.
    pub fn with_parameter(mut self, name: &str, value: &str) -> Self {
        if let Some(parameter) = self.root["Parameters"].get_mut(name) {
            parameter["Default"] = Value::String(value.to_owned());
        }
        self
    }

    /// The resource `logical_id`'s `Properties`, resolved.
    pub fn properties(&self, logical_id: &str) -> Result<Value, String> {
        let properties = self.root["Resources"][logical_id]
            .get("Properties")
            .ok_or_else(|| format!("no resource {logical_id} with Properties"))?;
        Ok(self.resolve(properties).unwrap_or(Value::Null))
    }

    /// Whether resource `logical_id` is deployed: it exists, and its
    /// `Condition`, if it has one, holds.
    pub fn deploys(&self, logical_id: &str) -> bool {
        let resource = &self.root["Resources"][logical_id];
        match resource.get("Condition").and_then(Value::as_str) {
            _ if resource.is_null() => false,
            Some(condition) => self.condition(condition),
            None => true,
        }
    }

    /// The logical ids of the resources of type `resource_type`, deployed
    /// or not.
    pub fn resources_of_type(&self, resource_type: &str) -> Vec<String> {
        self.root["Resources"]
            .as_object()
            .map(|resources| {
                resources
                    .iter()
                    .filter(|(_, r)| r["Type"] == resource_type)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The resource `logical_id`'s `Type`.
    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.root["Resources"][logical_id]["Type"].as_str()
    }

    /// The stream mapping `logical_id`'s settings, with the target
    /// function's timeout.
    pub fn stream_mapping(&self, logical_id: &str) -> Result<MappingSettings, String> {
        let p = self.properties(logical_id)?;
        let number = |key: &str| -> Result<i64, String> {
            match &p[key] {
                Value::Number(n) => n.as_i64().ok_or_else(|| format!("{key}: {n}")),
                Value::String(s) => s.parse().map_err(|_| format!("{key}: {s:?}")),
                other => Err(format!("{logical_id}.{key} is {other}")),
            }
        };
        let flag = |key: &str| match &p[key] {
            Value::Bool(b) => *b,
            Value::String(s) => s == "true",
            _ => false,
        };
        let function = p["FunctionName"]
            .as_str()
            .ok_or_else(|| format!("{logical_id}.FunctionName is not a !Ref"))?;
        let timeout = self.properties(function)?["Timeout"]
            .as_u64()
            .ok_or_else(|| format!("{function} has no Timeout"))?;
        let destination = p["DestinationConfig"]["OnFailure"]["Destination"].as_str();
        let on_failure = match destination.and_then(|d| d.strip_prefix(GETATT)) {
            Some(target) => match self.resource_type(target.trim_end_matches(".Arn")) {
                Some("AWS::S3::Bucket") => OnFailure::S3,
                Some("AWS::SQS::Queue") => OnFailure::Sqs,
                Some("AWS::SNS::Topic") => OnFailure::Sns,
                other => return Err(format!("on-failure destination of type {other:?}")),
            },
            None if destination.is_some_and(|d| d.starts_with("arn:aws:s3")) => OnFailure::S3,
            None if destination.is_some() => OnFailure::Sqs,
            None => OnFailure::Discard,
        };
        let limit = |value: i64| u64::try_from(value).ok();
        Ok(MappingSettings {
            batch_size: usize::try_from(number("BatchSize")?).unwrap_or(100),
            report_batch_item_failures: p["FunctionResponseTypes"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
            bisect_on_error: flag("BisectBatchOnFunctionError"),
            maximum_retry_attempts: limit(number("MaximumRetryAttempts")?)
                .and_then(|n| u32::try_from(n).ok()),
            maximum_record_age: limit(number("MaximumRecordAgeInSeconds")?)
                .map(Duration::from_secs),
            on_failure,
            function_timeout: Duration::from_secs(timeout),
        })
    }

    /// The function `logical_id`'s environment variables, resolved (those
    /// that resolve to `AWS::NoValue` are left out).
    pub fn function_environment(&self, logical_id: &str) -> Result<Vec<(String, String)>, String> {
        let p = self.properties(logical_id)?;
        let variables = p["Environment"]["Variables"]
            .as_object()
            .ok_or_else(|| format!("{logical_id} has no Environment.Variables"))?;
        Ok(variables
            .iter()
            .filter_map(|(name, value)| {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((name.clone(), text))
            })
            .collect())
    }

    /// Evaluates the intrinsic functions a test needs: `!Ref` of a
    /// parameter (its default) or a resource (its logical id), `!GetAtt`,
    /// `!If`, `!Not`, `!Equals`, `!And`, `!Or` and conditions. `None` is
    /// `AWS::NoValue`. Anything else is kept as written.
    fn resolve(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next()?;
                match key.as_str() {
                    "!Ref" => self.reference(arg.as_str().unwrap_or_default()),
                    "!GetAtt" => {
                        let target = match arg {
                            Value::Array(parts) => parts
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("."),
                            other => other.as_str().unwrap_or_default().to_owned(),
                        };
                        Some(Value::String(format!("{GETATT}{target}")))
                    }
                    "!If" => {
                        let args = arg.as_array()?;
                        let chosen = if self.condition(args.first()?.as_str()?) {
                            args.get(1)?
                        } else {
                            args.get(2)?
                        };
                        self.resolve(chosen)
                    }
                    "!Sub" if arg.is_string() => Some(Value::String(
                        self.substitute(arg.as_str().unwrap_or_default()),
                    )),
                    "!Not" | "!Equals" | "!And" | "!Or" | "Condition" | "!Condition" => {
                        Some(Value::Bool(self.truth(value)))
                    }
                    _ => Some(self.resolve_all(value)),
                }
            }
            _ => Some(self.resolve_all(value)),
        }
    }

    fn resolve_all(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().filter_map(|v| self.resolve(v)).collect())
            }
            other => other.clone(),
        }
    }

    /// `${Name}` replaced by the parameter's default (or the name).
    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            let name = &rest[start + 2..start + end];
            match self.reference(name) {
                Some(Value::String(value)) => out.push_str(&value),
                Some(other) => out.push_str(&other.to_string()),
                None => {}
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn reference(&self, name: &str) -> Option<Value> {
        if name == "AWS::NoValue" {
            return None;
        }
        match self.root["Parameters"].get(name) {
            Some(parameter) => Some(parameter["Default"].clone()),
            None => Some(Value::String(name.to_owned())),
        }
    }

    fn condition(&self, name: &str) -> bool {
        self.truth(&self.root["Conditions"][name])
    }

    fn truth(&self, value: &Value) -> bool {
        let Some((key, arg)) = value.as_object().and_then(|m| m.iter().next()) else {
            return value.as_bool().unwrap_or(false);
        };
        let args: Vec<&Value> = match arg {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        match key.as_str() {
            "!Not" => !args.first().is_some_and(|a| self.truth(a)),
            "!And" => args.iter().all(|a| self.truth(a)),
            "!Or" => args.iter().any(|a| self.truth(a)),
            "!Equals" => {
                let side = |i: usize| args.get(i).and_then(|a| self.resolve(a));
                side(0).map(|v| scalar(&v)) == side(1).map(|v| scalar(&v))
            }
            "Condition" | "!Condition" => self.condition(arg.as_str().unwrap_or_default()),
            _ => false,
        }
    }
}

/// Prefix marking an unresolved `!GetAtt` target.
const GETATT: &str = "getatt:";

/// A parameter default and a literal compare as text (`"true"` = `true`).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn yaml_to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_norway::to_string(&other).unwrap_or_default(),
                    };
                    (key.trim().to_owned(), yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let mut map = Map::new();
            map.insert(tagged.tag.to_string(), yaml_to_json(tagged.value));
            Value::Object(map)
        }
    }
}

/// One record of the emulated shard.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Its sequence number, as the partial batch response names it.
    pub sequence_number: String,
    /// How old it already is when the run starts.
    pub age_at_start: Duration,
    /// The record as it appears in the event's `Records`.
    pub json: Value,
}

/// What an invocation came to.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// The function answered (any JSON).
    Answered(Value),
    /// The function failed: an error, a timeout, a crash.
    Failed(String),
}

/// Where every record ended up.
#[derive(Debug, Clone, Default)]
pub struct MappingRun {
    /// Invocations made.
    pub invocations: usize,
    /// Sequence numbers the mapping checkpointed past after an answer
    /// (handled, as far as the mapping knows).
    pub committed: Vec<String>,
    /// Invocation records written to the on-failure destination.
    pub on_failure: Vec<Value>,
    /// Sequence numbers dropped with no destination configured.
    pub discarded: Vec<String>,
    /// Emulated time the run took.
    pub elapsed: Duration,
}

impl MappingRun {
    /// Sequence numbers kept in the on-failure store with the records
    /// themselves (an S3 destination's `payload`).
    pub fn stored_with_records(&self) -> Vec<String> {
        self.on_failure
            .iter()
            .filter_map(|object| object["payload"].as_str())
            .filter_map(|payload| serde_json::from_str::<Value>(payload).ok())
            .flat_map(|event| {
                event["Records"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| sequence_number(&r).map(str::to_owned))
            })
            .collect()
    }
}

/// The sequence number of a DynamoDB or Kinesis record.
pub fn sequence_number(record: &Value) -> Option<&str> {
    record
        .pointer("/dynamodb/SequenceNumber")
        .or_else(|| record.pointer("/kinesis/sequenceNumber"))
        .and_then(Value::as_str)
}

/// What the mapping does next in a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Invoke with `records[start..end]`.
    Invoke(usize, usize),
    /// Give `records[start..end]` up (to the destination): the oldest is
    /// past `MaximumRecordAgeInSeconds`.
    TooOld(usize, usize),
}

/// What the mapping made of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// `records[start..end]` are checkpointed past.
    Committed(usize, usize),
    /// The batch is tried again (whole, or bisected first).
    Retried,
    /// The batch is given up after this many attempts.
    Exhausted(u32),
}

/// The mapping's place in one shard, and the engine's rules for what it
/// does with each answer. The emulated run ([`run_shard`]) and the live
/// runner (`mapping-runner`) both drive one, so they follow the same rules.
#[derive(Debug, Clone)]
pub struct ShardCursor {
    settings: MappingSettings,
    position: usize,
    // Bisected halves still to go, as ranges of the shard's records.
    halves: VecDeque<(usize, usize)>,
    retries: u32,
}

impl ShardCursor {
    /// A cursor at the start of the shard.
    pub fn new(settings: &MappingSettings) -> Self {
        Self {
            settings: settings.clone(),
            position: 0,
            halves: VecDeque::new(),
            retries: 0,
        }
    }

    /// Records before this index are done with (committed or given up).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The next step, with `available` records read from the shard so far
    /// and `oldest` telling the age of a batch's oldest record; `None` when
    /// every available record is done with.
    pub fn next(
        &self,
        available: usize,
        oldest: impl Fn(usize, usize) -> Duration,
    ) -> Option<Step> {
        if self.position >= available {
            return None;
        }
        let (start, end) = self.halves.front().copied().unwrap_or((
            self.position,
            (self.position + self.settings.batch_size).min(available),
        ));
        let too_old = self
            .settings
            .maximum_record_age
            .is_some_and(|limit| oldest(start, end) > limit);
        Some(if too_old {
            Step::TooOld(start, end)
        } else {
            Step::Invoke(start, end)
        })
    }

    /// Moves past `records[start..end]`, given up on.
    pub fn give_up(&mut self, end: usize) -> u32 {
        self.halves.pop_front();
        self.position = self.position.max(end);
        std::mem::take(&mut self.retries)
    }

    /// Acts on `answer` to the invocation with `sequence_numbers` (those of
    /// `records[start..end]`).
    pub fn settle(
        &mut self,
        start: usize,
        end: usize,
        sequence_numbers: &[&str],
        answer: &Invocation,
    ) -> Settled {
        let failed_from = match answer {
            Invocation::Failed(_) => Some(start),
            Invocation::Answered(_) if !self.settings.report_batch_item_failures => None,
            Invocation::Answered(response) => {
                first_reported(response, sequence_numbers).map(|i| start + i)
            }
        };
        match failed_from {
            None => {
                self.halves.pop_front();
                self.position = self.position.max(end);
                self.retries = 0;
                Settled::Committed(start, end)
            }
            Some(from) if from > start => {
                // Progress: everything before the reported record is done,
                // and the mapping starts again at that record.
                self.halves.clear();
                self.position = from;
                self.retries = 0;
                Settled::Committed(start, from)
            }
            Some(_) => {
                let erred = matches!(answer, Invocation::Failed(_));
                if erred && self.settings.bisect_on_error && end - start > 1 {
                    let middle = start + (end - start) / 2;
                    self.halves.pop_front();
                    self.halves.push_front((middle, end));
                    self.halves.push_front((start, middle));
                    return Settled::Retried;
                }
                self.retries += 1;
                if self
                    .settings
                    .maximum_retry_attempts
                    .is_some_and(|limit| self.retries > limit)
                {
                    Settled::Exhausted(self.give_up(end))
                } else {
                    Settled::Retried
                }
            }
        }
    }
}

/// Runs one shard of `records` through `invoke` under `settings` until every
/// record is committed, stored or discarded. `invoke` gets the event.
pub async fn run_shard<F, Fut>(
    settings: &MappingSettings,
    kind: StreamKind,
    records: &[StreamRecord],
    mut invoke: F,
) -> MappingRun
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = Invocation>,
{
    let mut run = MappingRun::default();
    let mut cursor = ShardCursor::new(settings);
    // A run that never ends is a bug in the function or the settings; this
    // bounds it far beyond any test.
    let mut guard = 0usize;
    while guard < 100_000 {
        guard += 1;
        let elapsed = run.elapsed;
        let oldest = |start: usize, end: usize| {
            records[start..end]
                .iter()
                .map(|r| r.age_at_start)
                .max()
                .unwrap_or_default()
                + elapsed
        };
        let (start, end) = match cursor.next(records.len(), oldest) {
            None => break,
            Some(Step::TooOld(start, end)) => {
                let attempts = cursor.give_up(end);
                let object = on_failure_record(
                    kind,
                    "shardId-emulated",
                    &batch_json(&records[start..end]),
                    "RecordAgeExceeded",
                    attempts,
                    run.invocations,
                );
                store(settings, object, &records[start..end], &mut run);
                continue;
            }
            Some(Step::Invoke(start, end)) => (start, end),
        };
        let batch = &records[start..end];
        run.invocations += 1;
        let answer = invoke(json!({ "Records": batch_json(batch) })).await;
        let sequence_numbers: Vec<&str> =
            batch.iter().map(|r| r.sequence_number.as_str()).collect();
        match cursor.settle(start, end, &sequence_numbers, &answer) {
            Settled::Committed(from, to) => {
                run.elapsed += Duration::from_secs(1);
                run.committed
                    .extend(records[from..to].iter().map(|r| r.sequence_number.clone()));
            }
            Settled::Retried => run.elapsed += settings.function_timeout,
            Settled::Exhausted(attempts) => {
                run.elapsed += settings.function_timeout;
                let object = on_failure_record(
                    kind,
                    "shardId-emulated",
                    &batch_json(batch),
                    "RetryAttemptsExhausted",
                    attempts,
                    run.invocations,
                );
                store(settings, object, batch, &mut run);
            }
        }
    }
    run
}

fn batch_json(batch: &[StreamRecord]) -> Vec<Value> {
    batch.iter().map(|r| r.json.clone()).collect()
}

/// Keeps the on-failure record as the destination would, or discards the
/// batch when there is none.
fn store(
    settings: &MappingSettings,
    mut object: Value,
    batch: &[StreamRecord],
    run: &mut MappingRun,
) {
    match settings.on_failure {
        OnFailure::Discard => {
            run.discarded
                .extend(batch.iter().map(|r| r.sequence_number.clone()));
        }
        OnFailure::S3 => run.on_failure.push(object),
        OnFailure::Sqs | OnFailure::Sns => {
            if let Some(fields) = object.as_object_mut() {
                fields.remove("payload");
            }
            run.on_failure.push(object);
        }
    }
}

/// The index in `batch` where redelivery starts, per the partial batch
/// response; the whole batch when an identifier is empty, null or unknown.
fn first_reported(response: &Value, batch: &[&str]) -> Option<usize> {
    let failures = response["batchItemFailures"].as_array()?;
    let mut lowest: Option<usize> = None;
    for failure in failures {
        let index = failure["itemIdentifier"]
            .as_str()
            .filter(|id| !id.is_empty())
            .and_then(|id| batch.iter().position(|seq| *seq == id))
            .unwrap_or(0);
        lowest = Some(lowest.map_or(index, |l| l.min(index)));
    }
    lowest
}

/// The invocation record Lambda writes to an on-failure destination for
/// `batch` (the event's `Records`) from `shard` after `attempts`
/// invocations, with the event itself under `payload`
/// (an S3 destination keeps it; SQS and SNS get the rest).
pub fn on_failure_record(
    kind: StreamKind,
    shard: &str,
    batch: &[Value],
    condition: &str,
    attempts: u32,
    invocations: usize,
) -> Value {
    let info = json!({
        "shardId": shard,
        "startSequenceNumber": batch.first().and_then(|r| sequence_number(r)),
        "endSequenceNumber": batch.last().and_then(|r| sequence_number(r)),
        "batchSize": batch.len(),
        "streamArn": batch.first().and_then(|r| r["eventSourceARN"].as_str()).unwrap_or("arn:aws:emulated"),
    });
    let mut object = json!({
        "requestContext": {
            "requestId": format!("emulated-{invocations}"),
            "functionArn": "arn:aws:lambda:emulated",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": ""},
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "payload": json!({ "Records": batch }).to_string(),
    });
    let key = match kind {
        StreamKind::DynamoDb => "DDBStreamBatchInfo",
        StreamKind::Kinesis => "KinesisBatchInfo",
    };
    object[key] = info;
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MappingSettings {
        MappingSettings {
            batch_size: 4,
            report_batch_item_failures: true,
            bisect_on_error: true,
            maximum_retry_attempts: Some(2),
            maximum_record_age: None,
            on_failure: OnFailure::S3,
            function_timeout: Duration::from_secs(30),
        }
    }

    fn records(n: usize) -> Vec<StreamRecord> {
        (0..n)
            .map(|i| StreamRecord {
                sequence_number: format!("{}", 100 + i),
                age_at_start: Duration::ZERO,
                json: json!({"dynamodb": {"SequenceNumber": format!("{}", 100 + i)}}),
            })
            .collect()
    }

    fn seqs(event: &Value) -> Vec<String> {
        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| sequence_number(r).unwrap().to_owned())
            .collect()
    }

    fn failure(seq: &str) -> Invocation {
        Invocation::Answered(json!({"batchItemFailures": [{"itemIdentifier": seq}]}))
    }

    #[tokio::test]
    async fn a_partial_response_checkpoints_before_the_reported_record() {
        let mut calls = Vec::new();
        let run = run_shard(&settings(), StreamKind::DynamoDb, &records(4), |event| {
            calls.push(seqs(&event));
            let first = calls.len() == 1;
            async move {
                if first {
                    failure("102")
                } else {
                    Invocation::Answered(json!({"batchItemFailures": []}))
                }
            }
        })
        .await;
        assert_eq!(
            calls,
            [vec!["100", "101", "102", "103"], vec!["102", "103"]]
        );
        assert_eq!(run.committed, ["100", "101", "102", "103"]);
        assert!(run.on_failure.is_empty());
    }

    #[tokio::test]
    async fn without_report_batch_item_failures_any_answer_commits_everything() {
        let mut s = settings();
        s.report_batch_item_failures = false;
        let run = run_shard(&s, StreamKind::DynamoDb, &records(3), |_| async {
            failure("100")
        })
        .await;
        assert_eq!(run.invocations, 1);
        assert_eq!(run.committed, ["100", "101", "102"]);
    }

    #[tokio::test]
    async fn bisect_isolates_an_erroring_record_and_the_retry_cap_stores_it() {
        let run = run_shard(&settings(), StreamKind::DynamoDb, &records(4), |event| {
            let poisoned = seqs(&event).contains(&"101".to_owned());
            async move {
                if poisoned {
                    Invocation::Failed("boom".into())
                } else {
                    Invocation::Answered(json!({}))
                }
            }
        })
        .await;
        assert_eq!(run.committed, ["100", "102", "103"]);
        assert_eq!(run.stored_with_records(), ["101"]);
        assert_eq!(
            run.on_failure[0]["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
    }

    #[tokio::test]
    async fn an_sqs_destination_keeps_no_records() {
        let mut s = settings();
        s.on_failure = OnFailure::Sqs;
        let run = run_shard(&s, StreamKind::Kinesis, &records(1), |_| async {
            failure("100")
        })
        .await;
        assert_eq!(run.on_failure.len(), 1);
        assert!(run.on_failure[0].get("payload").is_none());
        assert!(run.on_failure[0].get("KinesisBatchInfo").is_some());
        assert!(run.stored_with_records().is_empty());
    }

    #[tokio::test]
    async fn records_past_the_age_limit_are_stored_without_another_invocation() {
        let mut s = settings();
        s.maximum_retry_attempts = None;
        s.maximum_record_age = Some(Duration::from_secs(100));
        let mut old = records(2);
        old[0].age_at_start = Duration::from_secs(50);
        let run = run_shard(&s, StreamKind::DynamoDb, &old, |_| async { failure("100") }).await;
        // 50 s old, +30 s per failed call: over 100 s after the second call.
        assert_eq!(run.invocations, 2);
        assert_eq!(run.stored_with_records(), ["100", "101"]);
        assert_eq!(
            run.on_failure[0]["requestContext"]["condition"],
            "RecordAgeExceeded"
        );
    }

    #[test]
    fn the_project_template_resolves_to_its_stream_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let template = Template::read(&path).unwrap();
        let settings = template
            .stream_mapping("DynamoStreamProducerTrigger")
            .unwrap();
        assert!(settings.report_batch_item_failures);
        assert_eq!(settings.function_timeout, Duration::from_secs(30));
        let env = template
            .function_environment("DynamoStreamProducerFunction")
            .unwrap();
        assert!(env.iter().any(|(k, _)| k == "TOPIC_NAME"));
    }
}
