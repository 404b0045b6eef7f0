//! Logging set-up shared by every function.
//!
//! [`init`] installs one subscriber for every function: with
//! `AWS_LAMBDA_LOG_FORMAT=JSON`, [`JsonLines`] (`timestamp`, `level`,
//! `message`, `requestId` and every field at the top level, the shape
//! Lambda's log-level filter reads; nested JSON for fields named
//! `json.<name>`); otherwise the runtime's text format. The level comes from
//! `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then INFO. The runtime wraps each
//! invocation in a span that carries `requestId`, so every line logged while
//! handling an event names its request.
//!
//! [`Telemetry`] gives every line logged while handling an invocation the
//! fields Powertools users search on (`service`, `cold_start`,
//! `function_name`, `function_request_id`, `xray_trace_id`), decides
//! whether the invocation's DEBUG lines are sampled, and writes the
//! invocation's [`metrics`]. [`trace`] carries the X-Ray trace into Kafka
//! headers as W3C `traceparent`.
//!
//! With the `log-capture` feature, `capture` runs a future with the same
//! formatter and records every line, so tests can assert on log output;
//! reading the lines checks that each has the shape Lambda needs.

mod invocation;
mod json_lines;
pub mod metrics;
pub mod trace;

pub use invocation::{Telemetry, SAMPLE_RATE_VARIABLE};
pub use json_lines::{JsonLines, RAW_JSON_PREFIX};

use lambda_runtime::tracing::subscriber::{
    self,
    filter::{EnvFilter, LevelFilter},
    fmt::format::JsonFields,
    layer::SubscriberExt,
    util::SubscriberInitExt,
    Layer,
};

/// Installs the process-wide subscriber. Call once, first thing in `main`.
///
/// With a DEBUG sample rate ([`SAMPLE_RATE_VARIABLE`]) above 0, DEBUG lines
/// are let through for the invocations [`Telemetry`] samples; otherwise the
/// filter is the plain level filter, and DEBUG call sites cost nothing.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if !json {
        lambda_runtime::tracing::init_default_subscriber();
        return;
    }
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // An unreadable rate stops start-up in `Telemetry::from_env`.
    let sampling = invocation::sample_rate(&crate::config::Env::process()).is_ok_and(|r| r > 0.0)
        && level < LevelFilter::DEBUG;
    let floor = if sampling { LevelFilter::DEBUG } else { level };
    let lines = subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines::default())
        .with_writer(std::io::stdout);
    subscriber::registry()
        .with(
            EnvFilter::builder()
                .with_default_directive(floor.into())
                .from_env_lossy(),
        )
        .with(sampling.then_some(DebugSampling { level }))
        .with(lines)
        .init();
}

/// Lets DEBUG (and TRACE) lines through, past `level`, only while the
/// invocation being handled is sampled. A global filter: the call sites
/// above `level` are asked at every event, the others never.
struct DebugSampling {
    level: LevelFilter,
}

impl<S: tracing::Subscriber> Layer<S> for DebugSampling {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if *metadata.level() <= self.level {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::sometimes()
        }
    }

    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _: subscriber::layer::Context<'_, S>,
    ) -> bool {
        *metadata.level() <= self.level || invocation::debug_sampled()
    }
}

/// An error with its sources, joined by `: `: what a log line or a report
/// needs when the error's own message (hyper's "client error (Connect)")
/// does not say what went wrong.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(any(test, feature = "log-capture"))]
pub use capture::{capture, CapturedLogs};

#[cfg(any(test, feature = "log-capture"))]
mod capture {
    use std::future::Future;
    use std::io;
    use std::sync::{Arc, Mutex};

    use lambda_runtime::tracing::subscriber::fmt::MakeWriter;

    /// Log lines recorded by [`capture`], one JSON object each.
    #[derive(Debug, Clone, Default)]
    pub struct CapturedLogs {
        buffer: Arc<Mutex<Vec<u8>>>,
    }

    impl CapturedLogs {
        /// Every line parsed as JSON. Panics on a line that is not a JSON
        /// object with an RFC 3339 `timestamp`, a known `level` and a
        /// string `message`: every line a function writes in a test is
        /// checked for the shape Lambda's log filter reads.
        #[allow(clippy::panic)]
        pub fn lines(&self) -> Vec<serde_json::Value> {
            self.text()
                .lines()
                .map(|line| {
                    let value: serde_json::Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
                    let shaped = value["timestamp"]
                        .as_str()
                        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
                        && LEVELS.contains(&value["level"].as_str().unwrap_or_default())
                        && value["message"].is_string();
                    assert!(
                        shaped,
                        "a log line lacks timestamp, level or message: {line}"
                    );
                    value
                })
                .collect()
        }

        /// The raw text, for checks that nothing secret was written.
        pub fn text(&self) -> String {
            let bytes = self.buffer.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    /// The levels Lambda's log filter knows.
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

    /// A writer that appends to the shared buffer.
    #[derive(Debug)]
    pub struct BufferWriter(Arc<Mutex<Vec<u8>>>);

    impl io::Write for BufferWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for CapturedLogs {
        type Writer = BufferWriter;
        fn make_writer(&'a self) -> Self::Writer {
            BufferWriter(Arc::clone(&self.buffer))
        }
    }

    tokio::task_local! {
        /// Where the lines of the capture polling this task go.
        static CAPTURING: Arc<Mutex<Vec<u8>>>;
    }

    /// The process-wide writer: each line goes to the buffer of the
    /// [`capture`] whose future wrote it, and lines written outside any
    /// capture are dropped.
    #[derive(Debug, Clone, Copy)]
    struct RouteToCapture;

    /// A writer for one line, bound to its capture's buffer if any.
    #[derive(Debug)]
    pub struct RoutedWriter(Option<Arc<Mutex<Vec<u8>>>>);

    impl io::Write for RoutedWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(Ok(mut b)) = self.0.as_ref().map(|b| b.lock()) {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for RouteToCapture {
        type Writer = RoutedWriter;
        fn make_writer(&'a self) -> Self::Writer {
            RoutedWriter(CAPTURING.try_with(Arc::clone).ok())
        }
    }

    /// Runs `future` under the test process's DEBUG-level
    /// [`JsonLines`](super::JsonLines) subscriber and returns its output
    /// together with everything it logged. Each line also names its
    /// `target`.
    ///
    /// One global subscriber routes each line to the capture that wrote it.
    /// A subscriber per capture, set for its future only, lost lines now
    /// and then when tests ran in parallel: `tracing` caches per call site
    /// whether anyone listens, and a site first reached while no such
    /// subscriber was alive could be cached as unwatched. With one global
    /// subscriber that never ends, every site is always watched.
    pub async fn capture<F: Future>(future: F) -> (F::Output, CapturedLogs) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = lambda_runtime::tracing::subscriber::fmt()
                .fmt_fields(lambda_runtime::tracing::subscriber::fmt::format::JsonFields::new())
                .event_format(super::JsonLines { target: true })
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(RouteToCapture)
                .finish();
            // A process that already has a global subscriber keeps it, and
            // its captures stay empty: the tests that read them then fail.
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
        let logs = CapturedLogs::default();
        let output = CAPTURING.scope(Arc::clone(&logs.buffer), future).await;
        (output, logs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captured_lines_carry_their_fields() {
        let ((), logs) = capture(async {
            tracing::info!(partition = 3, "acknowledged");
        })
        .await;
        let lines = logs.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"], "acknowledged");
        assert_eq!(lines[0]["partition"], 3);
        assert_eq!(lines[0]["level"], "INFO");
    }
}
