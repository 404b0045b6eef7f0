//! CloudWatch metrics in the Embedded Metric Format (EMF): one document per
//! invocation, written to stdout as a log line. CloudWatch Logs turns the
//! document into metrics; there is no SDK call and no network, so metrics
//! add nothing to a cold start.
//!
//! Code anywhere below a handler counts with [`count`] and [`record`]. They
//! add to the metrics of the invocation being handled ([`collect`] scopes
//! one), and do nothing outside one, so library code can count without
//! knowing whether anyone listens. [`crate::runtime_api::serve`] scopes
//! every invocation and writes its document when the handler has answered.
//!
//! # The document
//!
//! As the EMF specification (CloudWatch user guide, "Specification: Embedded
//! metric format") has it: a JSON object whose `_aws` member holds
//! `Timestamp` (milliseconds since the epoch) and `CloudWatchMetrics`, one
//! directive with the `Namespace`, one dimension set (`Dimensions`) and the
//! metric definitions (`Name`, `Unit`); each dimension and each metric is a
//! top-level member of the document, a dimension's value a string, a
//! metric's a number or an array of numbers. A directive holds at most 100
//! metrics, a metric at most 100 values, a dimension set at most 30
//! dimensions; more metrics or values go into further documents.
//!
//! Counts and byte totals are summed into one value per invocation;
//! durations keep one value per measurement, so CloudWatch's percentiles
//! see each produce call.
//!
//! # Settings
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `POWERTOOLS_METRICS_DISABLED` | `true` writes no metrics | `false` |
//! | `POWERTOOLS_METRICS_NAMESPACE` | the CloudWatch namespace | `LambdaStreamKit` |
//! | `POWERTOOLS_SERVICE_NAME` | the `service` dimension | the function's name |
//! | `METRICS_DIMENSIONS` | the dimension set: `service`, `function` and `Name=value` pairs, comma-separated; `none` for none | `service,function` |
//!
//! The names are the ones Powertools for AWS Lambda reads, so a team that
//! runs both sets them once.
//!
//! # The log filter
//!
//! With the JSON log format, Lambda's log-level filter reads each line's
//! `level`, and a line without one counts as INFO: under
//! `ApplicationLogLevel=WARN` a bare EMF document would be dropped, and
//! the alarms built on it would see nothing. The document therefore carries
//! `timestamp`, `message` (`metrics`) and, as `level`, the lowest level the
//! function logs at (`AWS_LAMBDA_LOG_LEVEL`, INFO by default), so that it
//! passes whatever filter the function runs under.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io::Write;

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use crate::config::{ConfigError, Env};

/// The namespace when `POWERTOOLS_METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "LambdaStreamKit";

/// EMF's limit on the metrics of one directive.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;

/// EMF's limit on the values of one metric in one document.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// CloudWatch's limit on the dimensions of one dimension set.
pub const MAX_DIMENSIONS: usize = 30;

/// The metrics the functions write (README, "Operating it", says what
/// each means; the template's alarms read some of them).
pub mod names {
    /// Records in the invocation's batch (summed: throughput).
    pub const RECORDS_RECEIVED: &str = "RecordsReceived";
    /// Records in the invocation's batch, for its statistics per
    /// invocation (average and maximum: how full batches are).
    pub const BATCH_SIZE: &str = "BatchSize";
    /// Records on the destination topic.
    pub const RECORDS_PUBLISHED: &str = "RecordsPublished";
    /// Records on the dead-letter topic.
    pub const RECORDS_DEAD_LETTERED: &str = "RecordsDeadLettered";
    /// Records let go on purpose (filtered out, or not forwarded by rule).
    pub const RECORDS_SKIPPED: &str = "RecordsSkipped";
    /// Records that failed and come again.
    pub const RECORDS_FAILED: &str = "RecordsFailed";
    /// Records held back behind a failure in their shard or partition.
    pub const RECORDS_HELD_BACK: &str = "RecordsHeldBack";
    /// Records the answer hands back to the source to deliver again.
    pub const RECORDS_REPORTED: &str = "RecordsReported";
    /// Records written to the function's log.
    pub const RECORDS_LOGGED: &str = "RecordsLogged";
    /// The duration of each produce call.
    pub const PRODUCE_LATENCY: &str = "ProduceLatency";
    /// Bytes of the records on the destination topic (keys, values, headers).
    pub const BYTES_PUBLISHED: &str = "BytesPublished";
    /// Transformation results answered `Ok` (the enricher).
    pub const RESULTS_OK: &str = "ResultsOk";
    /// Transformation results answered `Dropped`.
    pub const RESULTS_DROPPED: &str = "ResultsDropped";
    /// Transformation results answered `ProcessingFailed`.
    pub const RESULTS_PROCESSING_FAILED: &str = "ResultsProcessingFailed";
    /// Transformation results answered `Split`.
    pub const RESULTS_SPLIT: &str = "ResultsSplit";
    /// 1 on the first invocation of an execution environment.
    pub const COLD_START: &str = "ColdStart";

    /// Every name above.
    pub const ALL: [&str; 16] = [
        RECORDS_RECEIVED,
        BATCH_SIZE,
        RECORDS_PUBLISHED,
        RECORDS_DEAD_LETTERED,
        RECORDS_SKIPPED,
        RECORDS_FAILED,
        RECORDS_HELD_BACK,
        RECORDS_REPORTED,
        RECORDS_LOGGED,
        PRODUCE_LATENCY,
        BYTES_PUBLISHED,
        RESULTS_OK,
        RESULTS_DROPPED,
        RESULTS_PROCESSING_FAILED,
        RESULTS_SPLIT,
        COLD_START,
    ];
}

/// The unit of a metric, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things; summed per invocation.
    Count,
    /// A size; summed per invocation.
    Bytes,
    /// A duration; one value per measurement.
    Milliseconds,
}

impl Unit {
    /// CloudWatch's name for the unit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
        }
    }

    fn sums(self) -> bool {
        !matches!(self, Self::Milliseconds)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and under which names the metrics go, read once from the
/// environment (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Whether documents are written at all.
    pub enabled: bool,
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The dimension set, names and values, in order.
    pub dimensions: Vec<(String, String)>,
    /// The `level` the document's line carries (see the module doc).
    pub line_level: String,
}

impl MetricsConfig {
    /// Reads the settings; `service` is the service name the logs use too.
    pub fn from_env(env: &Env<'_>, service: &str) -> Result<Self, ConfigError> {
        let enabled = !env.flag_or("POWERTOOLS_METRICS_DISABLED", false)?;
        let namespace = env
            .optional("POWERTOOLS_METRICS_NAMESPACE")
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if namespace.len() > 255 || namespace.starts_with("AWS/") || !namespace.is_ascii() {
            return Err(ConfigError::Invalid {
                name: "POWERTOOLS_METRICS_NAMESPACE",
                value: namespace,
                reason: "a CloudWatch namespace is up to 255 ASCII characters and may not start with AWS/".into(),
            });
        }
        let function = env
            .optional("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|| "local".to_owned());
        let spec = env
            .optional("METRICS_DIMENSIONS")
            .unwrap_or_else(|| "service,function".to_owned());
        let dimensions =
            dimensions(&spec, service, &function).map_err(|reason| ConfigError::Invalid {
                name: "METRICS_DIMENSIONS",
                value: spec.clone(),
                reason,
            })?;
        let line_level = env
            .optional("AWS_LAMBDA_LOG_LEVEL")
            .map(|level| level.to_ascii_uppercase())
            .filter(|level| LEVELS.contains(&level.as_str()))
            .unwrap_or_else(|| "INFO".to_owned());
        Ok(Self {
            enabled,
            namespace,
            dimensions,
            line_level,
        })
    }
}

/// The levels Lambda's log filter knows, lowest first.
const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

fn dimensions(spec: &str, service: &str, function: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    if spec.eq_ignore_ascii_case("none") {
        return Ok(out);
    }
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = match item.split_once('=') {
            None if item == "service" => ("service", service),
            None if item == "function" => ("function", function),
            None => {
                return Err(format!(
                    "{item:?} is neither `service`, `function` nor `Name=value`"
                ))
            }
            Some((name, value)) => (name.trim(), value.trim()),
        };
        if name.is_empty() || name.len() > 255 || name.starts_with(':') || !name.is_ascii() {
            return Err(format!(
                "dimension name {name:?}: 1 to 255 ASCII characters, not starting with `:`"
            ));
        }
        if value.is_empty() || value.len() > 1024 {
            return Err(format!(
                "dimension {name}: its value must be 1 to 1024 characters"
            ));
        }
        if out.iter().any(|(n, _)| n == name) || name == "_aws" {
            return Err(format!("dimension {name} is named twice or reserved"));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    if out.len() > MAX_DIMENSIONS {
        return Err(format!("at most {MAX_DIMENSIONS} dimensions"));
    }
    Ok(out)
}

/// One metric's values in this invocation.
#[derive(Debug, Clone, PartialEq)]
struct Metric {
    name: &'static str,
    unit: Unit,
    values: Vec<f64>,
}

/// The metrics of one invocation, in the order they were first counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    metrics: Vec<Metric>,
}

impl Metrics {
    /// Adds `value` to metric `name`: summed for counts and bytes, one more
    /// value for durations. A name keeps the unit it was first given.
    pub fn add(&mut self, name: &'static str, unit: Unit, value: f64) {
        match self.metrics.iter_mut().find(|m| m.name == name) {
            Some(metric) if metric.unit.sums() => {
                if let Some(total) = metric.values.first_mut() {
                    *total += value;
                }
            }
            Some(metric) => metric.values.push(value),
            None => self.metrics.push(Metric {
                name,
                unit,
                values: vec![value],
            }),
        }
    }

    /// The sum of metric `name`'s values, if it was counted.
    pub fn total(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.values.iter().sum())
    }

    /// Metric `name`'s values, empty if it was not counted.
    pub fn values(&self, name: &str) -> &[f64] {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map_or(&[], |m| m.values.as_slice())
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The EMF documents for these metrics (none when nothing was counted),
    /// stamped `at`, with `properties` as further top-level members (log
    /// fields, not dimensions). Each respects EMF's limits.
    pub fn documents(
        &self,
        config: &MetricsConfig,
        at: chrono::DateTime<chrono::Utc>,
        properties: &[(&str, Value)],
    ) -> Vec<Value> {
        // Each metric's values, cut into runs a document can hold.
        let mut pending: Vec<(&Metric, std::slice::Chunks<'_, f64>)> = self
            .metrics
            .iter()
            .map(|m| (m, m.values.chunks(MAX_VALUES_PER_METRIC)))
            .collect();
        let mut documents = Vec::new();
        loop {
            let mut batch: Vec<(&Metric, &[f64])> = Vec::new();
            for (metric, chunks) in &mut pending {
                if batch.len() == MAX_METRICS_PER_DOCUMENT {
                    break;
                }
                if let Some(values) = chunks.next() {
                    batch.push((metric, values));
                }
            }
            if batch.is_empty() {
                return documents;
            }
            documents.push(document(config, at, properties, &batch));
        }
    }

    /// Writes the documents to stdout, one line each, unless metrics are
    /// off. A failed write is logged: metrics never fail an invocation.
    pub fn emit(&self, config: &MetricsConfig, properties: &[(&str, Value)]) {
        if !config.enabled {
            return;
        }
        let mut text = String::new();
        for document in self.documents(config, chrono::Utc::now(), properties) {
            text.push_str(&document.to_string());
            text.push('\n');
        }
        if let Err(error) = std::io::stdout().lock().write_all(text.as_bytes()) {
            tracing::warn!(%error, "the metrics could not be written");
        }
    }
}

fn document(
    config: &MetricsConfig,
    at: chrono::DateTime<chrono::Utc>,
    properties: &[(&str, Value)],
    batch: &[(&Metric, &[f64])],
) -> Value {
    let mut root = Map::new();
    root.insert(
        "timestamp".into(),
        at.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
    );
    root.insert("level".into(), config.line_level.clone().into());
    root.insert("message".into(), "metrics".into());
    for (name, value) in properties {
        root.insert((*name).to_owned(), value.clone());
    }
    for (name, value) in &config.dimensions {
        root.insert(name.clone(), value.clone().into());
    }
    let mut definitions = Vec::with_capacity(batch.len());
    for (metric, values) in batch {
        definitions.push(serde_json::json!({"Name": metric.name, "Unit": metric.unit.as_str()}));
        let value = match values {
            [one] => Value::from(*one),
            many => Value::from(many.to_vec()),
        };
        root.insert(metric.name.to_owned(), value);
    }
    let dimension_names: Vec<&str> = config.dimensions.iter().map(|(n, _)| n.as_str()).collect();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": config.namespace,
                "Dimensions": [dimension_names],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(root)
}

tokio::task_local! {
    /// The metrics of the invocation this task is handling.
    static CURRENT: RefCell<Metrics>;
}

/// Runs `work` with a fresh set of metrics that [`count`] and [`record`]
/// add to, and returns them with its output.
pub async fn collect<F: Future>(work: F) -> (F::Output, Metrics) {
    CURRENT
        .scope(RefCell::new(Metrics::default()), async move {
            let output = work.await;
            let metrics = CURRENT
                .try_with(|current| current.take())
                .unwrap_or_default();
            (output, metrics)
        })
        .await
}

/// Adds `n` to count `name` of the current invocation; nothing outside one.
pub fn count(name: &'static str, n: usize) {
    record(name, Unit::Count, n as f64);
}

/// [`count`] for each `(name, n)`.
pub fn count_each(counts: &[(&'static str, usize)]) {
    for &(name, n) in counts {
        count(name, n);
    }
}

/// Adds `value` to metric `name` of the current invocation (see
/// [`Metrics::add`]); nothing outside one.
pub fn record(name: &'static str, unit: Unit, value: f64) {
    let _ = CURRENT.try_with(|current| current.borrow_mut().add(name, unit, value));
}

#[cfg(test)]
mod tests;
