//! A stand-in for Lambda's MSK and self-managed Kafka event source mapping,
//! so a failure-path test can assert where every source record ends up once
//! the engine has acted on the function's answer, with the trigger's
//! settings read from `template.yaml` ([`Template::kafka_mapping`]).
//!
//! What it does, from the Lambda developer guide ("Configuring error
//! handling controls for Kafka event sources", "Capturing discarded
//! batches"):
//!
//! * Batches of at most `BatchSize` records, grouped under
//!   `"<topic>-<partition>"` keys as the real event is.
//! * Without `ReportBatchItemFailures` (on-demand pollers), a successful
//!   answer commits the whole batch, whatever it says; an error retries the
//!   whole batch, with no limit.
//! * With it (provisioned pollers), the records listed in
//!   `batchItemFailures` are retried, alone, and every other record of the
//!   batch is committed ("Lambda can retry only the failed records"). An
//!   identifier that is malformed fails the whole batch.
//! * An erroring batch is bisected first when `BisectBatchOnFunctionError`
//!   is on (no retry used). A record retried more than
//!   `MaximumRetryAttempts` times goes to the on-failure destination: a
//!   Kafka topic gets the record itself, S3 the invocation record with the
//!   event. With unlimited retries and a destination, Lambda caps retries at
//!   10.
//!
//! A run that cannot finish (unlimited retries of a record that never
//! succeeds) stops after a bounded number of invocations and reports the
//! records still being retried: retried, not lost.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;

use serde_json::{json, Value};

use super::stream_mapping::{Invocation, Template};

/// Where a Kafka trigger sends the records it gives up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaOnFailure {
    /// `kafka://<topic>` on the same cluster.
    Topic(String),
    /// An S3 bucket.
    S3,
    /// None: given-up records are dropped.
    Discard,
}

/// A Kafka trigger's settings, as deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaMappingSettings {
    /// `BatchSize`.
    pub batch_size: usize,
    /// `FunctionResponseTypes` includes `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts`; `None` for no limit.
    pub maximum_retry_attempts: Option<u32>,
    /// `DestinationConfig.OnFailure`.
    pub on_failure: KafkaOnFailure,
}

impl Template {
    /// The Kafka trigger `logical_id`'s settings.
    pub fn kafka_mapping(&self, logical_id: &str) -> Result<KafkaMappingSettings, String> {
        let p = self.properties(logical_id)?;
        let number = |key: &str| -> Option<i64> {
            match &p[key] {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
        };
        let destination = p["DestinationConfig"]["OnFailure"]["Destination"].as_str();
        let on_failure = match destination {
            None => KafkaOnFailure::Discard,
            Some(d) if d.starts_with("kafka://") => {
                KafkaOnFailure::Topic(d.trim_start_matches("kafka://").to_owned())
            }
            Some(d)
                if d.starts_with("arn:aws:s3")
                    || self
                        .resource_type(d.trim_start_matches("getatt:").trim_end_matches(".Arn"))
                        .is_some_and(|t| t == "AWS::S3::Bucket") =>
            {
                KafkaOnFailure::S3
            }
            Some(other) => return Err(format!("unsupported on-failure destination {other}")),
        };
        let retries = number("MaximumRetryAttempts")
            .and_then(|n| u32::try_from(n).ok())
            // Unlimited, but capped at 10 once a destination is set.
            .or((on_failure != KafkaOnFailure::Discard).then_some(10));
        Ok(KafkaMappingSettings {
            batch_size: number("BatchSize")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(100),
            report_batch_item_failures: p["FunctionResponseTypes"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
            bisect_on_error: matches!(&p["BisectBatchOnFunctionError"], Value::Bool(true))
                || p["BisectBatchOnFunctionError"] == "true",
            maximum_retry_attempts: retries,
            on_failure,
        })
    }
}

/// One record of the emulated source topic.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i64,
    /// Its offset.
    pub offset: i64,
    /// The record as it appears in the event (`topic`, `partition`,
    /// `offset`, `timestamp`, `key`, `value`, `headers`, …).
    pub json: Value,
}

impl KafkaRecord {
    /// `(topic, partition, offset)`.
    pub fn position(&self) -> (String, i64, i64) {
        (self.topic.clone(), self.partition, self.offset)
    }
}

/// Where every record ended up.
#[derive(Debug, Clone, Default)]
pub struct KafkaMappingRun {
    /// Invocations made.
    pub invocations: usize,
    /// Records committed after an answer, as `(topic, partition, offset)`.
    pub committed: Vec<(String, i64, i64)>,
    /// Records given up on and sent to a Kafka destination, as they were.
    pub to_topic: Vec<KafkaRecord>,
    /// Invocation records written to an S3 destination.
    pub to_s3: Vec<Value>,
    /// Records given up on with no destination: lost.
    pub discarded: Vec<(String, i64, i64)>,
    /// Records still being retried when the run stopped.
    pub retrying: Vec<(String, i64, i64)>,
}

/// The records a Kafka mapping has read and not yet committed or given up,
/// and the engine's rules for what it does with each answer. The emulated
/// run ([`run_kafka`]) and the live runner (`mapping-runner`) both drive
/// one, so they follow the same rules.
#[derive(Debug, Clone)]
pub struct KafkaCursor {
    settings: KafkaMappingSettings,
    pending: VecDeque<KafkaRecord>,
    // A bisected half (or a whole-batch retry) still to go, as a count of
    // records from the front.
    next_size: Option<usize>,
    attempts: BTreeMap<(String, i64, i64), u32>,
}

/// What the mapping made of an answer.
#[derive(Debug, Clone, Default)]
pub struct KafkaSettled {
    /// Records committed.
    pub committed: Vec<(String, i64, i64)>,
    /// Records past the retry limit, for the on-failure destination.
    pub given_up: Vec<KafkaRecord>,
    /// Records put back to be tried again.
    pub retried: usize,
}

impl KafkaCursor {
    /// A cursor with nothing read yet.
    pub fn new(settings: &KafkaMappingSettings) -> Self {
        Self {
            settings: settings.clone(),
            pending: VecDeque::new(),
            next_size: None,
            attempts: BTreeMap::new(),
        }
    }

    /// Adds records read from the topic, after those already pending.
    pub fn read(&mut self, records: impl IntoIterator<Item = KafkaRecord>) {
        self.pending.extend(records);
    }

    /// The records not yet done with, in the order they will be tried.
    pub fn pending(&self) -> impl Iterator<Item = &KafkaRecord> {
        self.pending.iter()
    }

    /// The next batch to invoke with, taken off the pending records.
    pub fn next_batch(&mut self) -> Option<Vec<KafkaRecord>> {
        if self.pending.is_empty() {
            return None;
        }
        let size = self
            .next_size
            .take()
            .unwrap_or(self.settings.batch_size)
            .min(self.pending.len());
        Some(self.pending.drain(..size).collect())
    }

    /// Acts on `answer` to the invocation with `batch`.
    pub fn settle(&mut self, batch: Vec<KafkaRecord>, answer: &Invocation) -> KafkaSettled {
        let mut settled = KafkaSettled::default();
        let listed = match answer {
            Invocation::Answered(_) if !self.settings.report_batch_item_failures => {
                Some(BTreeSet::new())
            }
            Invocation::Answered(response) => listed_failures(response, &batch),
            Invocation::Failed(_) => None,
        };
        let retry = match listed {
            Some(failed) => {
                let mut retry = Vec::new();
                for record in batch {
                    if failed.contains(&record.position()) {
                        retry.push(record);
                    } else {
                        settled.committed.push(record.position());
                    }
                }
                self.count_attempts(retry, &mut settled)
            }
            None if self.settings.bisect_on_error && batch.len() > 1 => {
                self.next_size = Some(batch.len() / 2);
                batch
            }
            None => {
                let kept = self.count_attempts(batch, &mut settled);
                // A whole-batch retry is the same batch again.
                self.next_size = (!kept.is_empty()).then_some(kept.len());
                kept
            }
        };
        settled.retried = retry.len();
        for record in retry.into_iter().rev() {
            self.pending.push_front(record);
        }
        settled
    }

    /// Counts one more attempt for each of `records`; those past the limit
    /// are given up, the rest are returned for another try.
    fn count_attempts(
        &mut self,
        records: Vec<KafkaRecord>,
        settled: &mut KafkaSettled,
    ) -> Vec<KafkaRecord> {
        let mut kept = Vec::new();
        for record in records {
            let tries = self.attempts.entry(record.position()).or_insert(0);
            *tries += 1;
            if self
                .settings
                .maximum_retry_attempts
                .is_some_and(|limit| *tries > limit)
            {
                settled.given_up.push(record);
            } else {
                kept.push(record);
            }
        }
        kept
    }
}

/// Runs `records` through `invoke` under `settings`, for at most
/// `max_invocations` invocations.
pub async fn run_kafka<F, Fut>(
    settings: &KafkaMappingSettings,
    records: &[KafkaRecord],
    max_invocations: usize,
    mut invoke: F,
) -> KafkaMappingRun
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = Invocation>,
{
    let mut run = KafkaMappingRun::default();
    let mut cursor = KafkaCursor::new(settings);
    cursor.read(records.iter().cloned());
    while run.invocations < max_invocations {
        let Some(batch) = cursor.next_batch() else {
            break;
        };
        run.invocations += 1;
        let answer = invoke(event(&batch)).await;
        let settled = cursor.settle(batch, &answer);
        run.committed.extend(settled.committed);
        if !settled.given_up.is_empty() {
            match &settings.on_failure {
                KafkaOnFailure::Topic(_) => run.to_topic.extend(settled.given_up),
                KafkaOnFailure::S3 => run.to_s3.push(on_failure_record(&settled.given_up)),
                KafkaOnFailure::Discard => run
                    .discarded
                    .extend(settled.given_up.iter().map(KafkaRecord::position)),
            }
        }
    }
    run.retrying = cursor.pending().map(KafkaRecord::position).collect();
    run
}

/// The invocation record an S3 destination gets for records given up on.
pub fn on_failure_record(given_up: &[KafkaRecord]) -> Value {
    json!({
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "payload": event(given_up).to_string(),
    })
}

/// The records `response` lists, or `None` (the whole batch failed) when
/// an identifier is malformed.
fn listed_failures(
    response: &Value,
    batch: &[KafkaRecord],
) -> Option<BTreeSet<(String, i64, i64)>> {
    let Some(failures) = response.get("batchItemFailures").and_then(Value::as_array) else {
        return Some(BTreeSet::new());
    };
    let mut listed = BTreeSet::new();
    for failure in failures {
        let id = &failure["itemIdentifier"];
        let key = id["partition"].as_str()?;
        let offset = id["offset"].as_i64()?;
        let record = batch
            .iter()
            .find(|r| format!("{}-{}", r.topic, r.partition) == key && r.offset == offset)?;
        listed.insert(record.position());
    }
    Some(listed)
}

/// The event Lambda sends for `batch`.
pub fn event(batch: &[KafkaRecord]) -> Value {
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for record in batch {
        groups
            .entry(format!("{}-{}", record.topic, record.partition))
            .or_default()
            .push(record.json.clone());
    }
    json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/emulated/0",
        "bootstrapServers": "emulated:9098",
        "records": groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: i64) -> Vec<KafkaRecord> {
        (0..n)
            .map(|offset| KafkaRecord {
                topic: "clicks".into(),
                partition: 0,
                offset,
                json: json!({"topic": "clicks", "partition": 0, "offset": offset}),
            })
            .collect()
    }

    fn provisioned() -> KafkaMappingSettings {
        KafkaMappingSettings {
            batch_size: 10,
            report_batch_item_failures: true,
            bisect_on_error: true,
            maximum_retry_attempts: Some(2),
            on_failure: KafkaOnFailure::Topic("errors".into()),
        }
    }

    fn listing(offsets: &[i64]) -> Invocation {
        let failures: Vec<Value> = offsets
            .iter()
            .map(|o| json!({"itemIdentifier": {"partition": "clicks-0", "offset": o}}))
            .collect();
        Invocation::Answered(json!({"batchItemFailures": failures}))
    }

    #[tokio::test]
    async fn only_the_listed_records_are_retried_and_the_rest_committed() {
        let mut calls = 0;
        let run = run_kafka(&provisioned(), &records(4), 10, |event| {
            calls += 1;
            let seen = event["records"]["clicks-0"].as_array().unwrap().len();
            let first = calls == 1;
            async move {
                assert!(
                    first || seen == 1,
                    "the retry carries the failed record alone"
                );
                if first {
                    listing(&[2])
                } else {
                    listing(&[])
                }
            }
        })
        .await;
        assert_eq!(run.invocations, 2);
        assert_eq!(run.committed.len(), 4);
    }

    #[tokio::test]
    async fn ignored_partial_responses_commit_everything() {
        let mut settings = provisioned();
        settings.report_batch_item_failures = false;
        let run = run_kafka(&settings, &records(3), 10, |_| async {
            listing(&[0, 1, 2])
        })
        .await;
        assert_eq!(run.committed.len(), 3, "committed though reported: lost");
    }

    #[tokio::test]
    async fn a_record_failing_past_the_cap_goes_to_the_destination_topic() {
        let run = run_kafka(&provisioned(), &records(3), 10, |_| async { listing(&[1]) }).await;
        assert_eq!(run.committed.len(), 2);
        assert_eq!(run.to_topic.len(), 1);
        assert_eq!(run.to_topic[0].offset, 1);
        assert_eq!(run.invocations, 3, "first try and two retries");
    }

    #[tokio::test]
    async fn unlimited_whole_batch_retries_leave_the_records_retrying() {
        let settings = KafkaMappingSettings {
            batch_size: 10,
            report_batch_item_failures: false,
            bisect_on_error: false,
            maximum_retry_attempts: None,
            on_failure: KafkaOnFailure::Discard,
        };
        let run = run_kafka(&settings, &records(2), 5, |_| async {
            Invocation::Failed("down".into())
        })
        .await;
        assert_eq!(run.invocations, 5);
        assert!(run.committed.is_empty() && run.discarded.is_empty());
        assert_eq!(run.retrying.len(), 2);
    }

    #[test]
    fn the_template_gives_each_poller_mode_its_controls() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let on_demand = Template::read(&path).unwrap();
        let settings = on_demand
            .kafka_mapping("KafkaTagHandlerMskTrigger")
            .unwrap();
        assert!(!settings.report_batch_item_failures);
        assert_eq!(settings.on_failure, KafkaOnFailure::Discard);
        assert_eq!(settings.maximum_retry_attempts, None);
        let provisioned = on_demand.with_parameter("KafkaPollerMode", "provisioned");
        let settings = provisioned
            .kafka_mapping("KafkaTagHandlerMskTrigger")
            .unwrap();
        assert!(settings.report_batch_item_failures && settings.bisect_on_error);
        assert_eq!(settings.maximum_retry_attempts, Some(10));
        assert!(matches!(settings.on_failure, KafkaOnFailure::Topic(_)));
    }
}
