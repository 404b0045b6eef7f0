//! What surrounds every invocation: the log fields, DEBUG sampling and the
//! invocation's metrics.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use lambda_runtime::Context;
use serde_json::Value;
use tracing::Instrument;

use super::metrics::{self, names, Metrics, MetricsConfig, Unit};
use crate::config::{ConfigError, Env};

/// The share of invocations, 0 to 1, whose DEBUG lines are logged whatever
/// the log level (the name Powertools reads).
pub const SAMPLE_RATE_VARIABLE: &str = "POWERTOOLS_LOGGER_SAMPLE_RATE";

/// Whether the invocation being handled logs its DEBUG lines. One
/// invocation runs at a time in an execution environment.
static DEBUG_SAMPLED: AtomicBool = AtomicBool::new(false);

/// Whether the invocation being handled was sampled for DEBUG lines.
pub(super) fn debug_sampled() -> bool {
    DEBUG_SAMPLED.load(Ordering::Relaxed)
}

/// Reads [`SAMPLE_RATE_VARIABLE`]: 0 when unset.
pub(super) fn sample_rate(env: &Env<'_>) -> Result<f64, ConfigError> {
    let rate: f64 = env.parse_or(SAMPLE_RATE_VARIABLE, 0.0)?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(ConfigError::Invalid {
            name: SAMPLE_RATE_VARIABLE,
            value: rate.to_string(),
            reason: "a share between 0 and 1".into(),
        })
    }
}

/// The log fields, DEBUG sampling and metrics of every invocation, read
/// once from the environment.
#[derive(Debug)]
pub struct Telemetry {
    /// `POWERTOOLS_SERVICE_NAME`, or the function's name.
    pub service: String,
    /// `AWS_LAMBDA_FUNCTION_NAME` (`local` outside Lambda).
    pub function_name: String,
    /// The share of invocations whose DEBUG lines are logged.
    pub debug_sample_rate: f64,
    /// Where the metrics go.
    pub metrics: MetricsConfig,
    invoked: AtomicBool,
}

impl Telemetry {
    /// Reads the settings (see [`metrics`] and [`SAMPLE_RATE_VARIABLE`]).
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let function_name = env
            .optional("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|| "local".to_owned());
        let service = env
            .optional("POWERTOOLS_SERVICE_NAME")
            .unwrap_or_else(|| function_name.clone());
        Ok(Self {
            metrics: MetricsConfig::from_env(env, &service)?,
            debug_sample_rate: sample_rate(env)?,
            service,
            function_name,
            invoked: AtomicBool::new(false),
        })
    }

    /// Runs one invocation's `work`: every line it logs carries the
    /// invocation's fields, its DEBUG lines are logged if it is sampled, and
    /// what it counts is returned with its output (with `ColdStart` on the
    /// first invocation).
    pub async fn observe<F: Future>(&self, context: &Context, work: F) -> (F::Output, Metrics) {
        let cold_start = !self.invoked.swap(true, Ordering::Relaxed);
        DEBUG_SAMPLED.store(self.samples(&context.request_id), Ordering::Relaxed);
        let span = self.fields(context, cold_start);
        let (output, mut metrics) = metrics::collect(work.instrument(span)).await;
        DEBUG_SAMPLED.store(false, Ordering::Relaxed);
        metrics.add(
            names::COLD_START,
            Unit::Count,
            if cold_start { 1.0 } else { 0.0 },
        );
        (output, metrics)
    }

    /// The fields every line of an invocation carries. A field added here
    /// is on every line. The span is at ERROR level so that no log level
    /// filters it out, and with it the fields.
    fn fields(&self, context: &Context, cold_start: bool) -> tracing::Span {
        tracing::error_span!(
            "invocation",
            service = %self.service,
            function_name = %self.function_name,
            function_request_id = %context.request_id,
            xray_trace_id = context.xray_trace_id.as_deref(),
            cold_start,
            sampling_rate = (self.debug_sample_rate > 0.0).then_some(self.debug_sample_rate),
        )
    }

    /// Whether the invocation `request_id` logs its DEBUG lines: a hash of
    /// the id against the rate, so one request decides the same way in
    /// every run of a test.
    fn samples(&self, request_id: &str) -> bool {
        if self.debug_sample_rate <= 0.0 {
            return false;
        }
        // FNV-1a: stable across builds, unlike std's hasher.
        let hash = request_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (hash % 10_000) as f64 / 10_000.0 < self.debug_sample_rate
    }

    /// Writes the invocation's metrics (see [`metrics`]), with its request
    /// and trace ids as properties so a document can be found from a log line.
    pub fn emit(&self, metrics: &Metrics, context: &Context) {
        let mut properties = vec![(
            "function_request_id",
            Value::from(context.request_id.as_str()),
        )];
        if let Some(trace) = &context.xray_trace_id {
            properties.push(("xray_trace_id", Value::from(trace.as_str())));
        }
        metrics.emit(&self.metrics, &properties);
    }
}

#[cfg(test)]
mod tests;
