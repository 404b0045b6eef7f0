//! JSON log lines in the shape Lambda's log filter and Powertools users
//! expect.
//!
//! Each line is one object: `timestamp` (RFC 3339, UTC, milliseconds),
//! `level`, `message`, then the fields of the enclosing spans (the
//! runtime's invocation span gives `requestId` and `xrayTraceId`), then the
//! event's own fields, all at the top level.
//!
//! Why this shape: with JSON logs, Lambda reads `level` and `timestamp`
//! from each line to apply `ApplicationLogLevel`, and a line without a valid
//! RFC 3339 `timestamp` counts as INFO, so under `ApplicationLogLevel=WARN`
//! every ERROR line in the stock `tracing` JSON shape (no timestamp, the
//! message under `fields`, the request id under `span`) would be dropped.
//! Logs Insights and Powertools users search on `requestId`, `level` and
//! `message` at the top level.
//!
//! `tracing` fields are strings, numbers or booleans, so a JSON payload
//! would be an escaped string. A string field whose name starts with
//! [`RAW_JSON_PREFIX`] and holds valid JSON is written as that JSON value,
//! under the name without the prefix; anything else under that prefix is an
//! ordinary string, so a wrong value can never break the line. An event
//! field named like one of the line's own keys is written as
//! `field.<name>`, so it cannot shadow them.

use std::{fmt, io};

use chrono::SecondsFormat;
use lambda_runtime::tracing::subscriber::{
    fmt::{format::Writer, FmtContext, FormatEvent, FormatFields, FormattedFields},
    registry::LookupSpan,
};
use serde_json::value::RawValue;
use tracing::{
    field::{Field, Visit},
    Event, Subscriber,
};

/// Field-name prefix marking a string as JSON to embed.
pub const RAW_JSON_PREFIX: &str = "json.";

/// The keys every line starts with; event fields of these names are renamed.
const LINE_KEYS: [&str; 5] = ["timestamp", "level", "message", "requestId", "xrayTraceId"];

/// Formats each event as one JSON object per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines {
    /// Add the event's `target` (the module that logged it); for tests.
    pub target: bool,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = LineWriter::new(&mut writer);
        line.out.write_char('{')?;
        line.key("timestamp")?;
        line.string(&chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true))?;
        line.key("level")?;
        line.string(meta.level().as_str())?;
        let mut message = MessageFirst::default();
        event.record(&mut message);
        line.key("message")?;
        line.string(message.0.as_deref().unwrap_or(""))?;
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(leaf) = current {
            for span in leaf.scope().from_root() {
                write_span_fields::<_, N>(line.out, &span)?;
            }
        }
        event.record(&mut line);
        line.finish()?;
        if self.target {
            line.key("target")?;
            line.string(meta.target())?;
        }
        line.out.write_str("}\n")
    }
}

/// Finds the event's `message`, which the line writes right after `level`.
#[derive(Default)]
struct MessageFirst(Option<String>);

impl Visit for MessageFirst {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `tracing` passes a format-string message as `fmt::Arguments`,
        // whose Debug is the formatted text.
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// Splices a span's recorded fields (a JSON object, as `JsonFields` stores
/// them) into the line, without re-parsing them.
fn write_span_fields<S, N>(
    out: &mut dyn fmt::Write,
    span: &lambda_runtime::tracing::subscriber::registry::SpanRef<'_, S>,
) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let ext = span.extensions();
    let inner = ext
        .get::<FormattedFields<N>>()
        .and_then(|f| f.fields.strip_prefix('{')?.strip_suffix('}'))
        .map(str::trim)
        .unwrap_or("");
    if inner.is_empty() {
        return Ok(());
    }
    out.write_char(',')?;
    out.write_str(inner)
}

/// Writes comma-separated `"key":value` pairs to a line.
struct LineWriter<'w> {
    out: &'w mut dyn fmt::Write,
    first: bool,
    /// The first error met while visiting fields, which `Visit` cannot return.
    result: fmt::Result,
}

impl<'w> LineWriter<'w> {
    fn new(out: &'w mut dyn fmt::Write) -> Self {
        Self {
            out,
            first: true,
            result: Ok(()),
        }
    }

    fn key(&mut self, key: &str) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.out.write_char(',')?;
        }
        write_json(self.out, key)?;
        self.out.write_char(':')
    }

    fn string(&mut self, value: &str) -> fmt::Result {
        write_json(self.out, value)
    }

    fn finish(&mut self) -> fmt::Result {
        std::mem::replace(&mut self.result, Ok(()))
    }

    /// Writes one event field unless an earlier one failed; `message` is
    /// already on the line.
    fn field(&mut self, field: &Field, value: impl serde::Serialize) {
        if self.result.is_ok() && field.name() != "message" {
            self.result = self
                .field_key(field.name())
                .and_then(|()| write_json(self.out, &value));
        }
    }

    /// An event field's key, renamed when it would shadow a line key.
    fn field_key(&mut self, name: &str) -> fmt::Result {
        if LINE_KEYS.contains(&name) {
            self.key(&format!("field.{name}"))
        } else {
            self.key(name)
        }
    }
}

impl Visit for LineWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let Some(name) = field.name().strip_prefix(RAW_JSON_PREFIX) else {
            return self.field(field, value);
        };
        if self.result.is_err() {
            return;
        }
        self.result =
            self.field_key(name)
                .and_then(|()| match serde_json::from_str::<&RawValue>(value) {
                    Ok(raw) => write_compact(self.out, raw.get()),
                    Err(_) => write_json(self.out, value),
                });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, value);
    }
}

/// Writes `value` as JSON through serde_json, which escapes strings.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut dyn fmt::Write, value: &T) -> fmt::Result {
    serde_json::to_writer(FmtAdapter(out), value).map_err(|_| fmt::Error)
}

/// Writes validated JSON text without its insignificant whitespace line
/// breaks, so a pretty-printed payload still makes one log line.
fn write_compact(out: &mut dyn fmt::Write, json: &str) -> fmt::Result {
    if !json.contains(['\n', '\r']) {
        return out.write_str(json);
    }
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in json.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.write_str(json.get(start..i).unwrap_or_default())?;
            start = i + 1;
        }
    }
    out.write_str(json.get(start..).unwrap_or_default())
}

/// Lets serde_json write into a `fmt::Write`. serde_json only splits its
/// output at character boundaries, so each chunk is valid UTF-8.
struct FmtAdapter<'a>(&'a mut dyn fmt::Write);

impl io::Write for FmtAdapter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text =
            std::str::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.0.write_str(text).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::telemetry::{capture, CapturedLogs};
    use lambda_runtime::tracing::subscriber::{self, fmt::format::JsonFields};
    use serde_json::{json, Value};
    use test_support::lambda_reads_level;
    use tracing::instrument::WithSubscriber;
    use tracing::Instrument;

    use super::*;

    async fn emit_sample() {
        let span = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = "req-1",
            xrayTraceId = "trace-\"x\""
        );
        async {
            tracing::info!(
                partition_key = "pk",
                size_bytes = 12u64,
                delta = -3i64,
                ratio = 0.5,
                ok = true,
                shown = %"display",
                debugged = ?Some(1),
                r#type = "kw",
                level = "shadowing",
                "kinesis record"
            );
            tracing::error!(reason = "broker down", "record {} failed", 7);
        }
        .instrument(span)
        .await;
        tracing::warn!("outside any span");
    }

    /// The lines exactly as `init` sets them up (no test-only `target`).
    async fn production_lines() -> (Vec<Value>, String) {
        let logs = CapturedLogs::default();
        let subscriber = subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines::default())
            .with_writer(logs.clone())
            .finish();
        emit_sample().with_subscriber(subscriber).await;
        (logs.lines(), logs.text())
    }

    #[tokio::test]
    async fn lines_carry_timestamp_level_message_and_request_id_at_the_top() {
        let (lines, text) = production_lines().await;
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(text.lines().count(), 3);
        let first = &lines[0];
        let stamp = first["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert!(stamp.ends_with('Z'), "UTC: {stamp}");
        let mut fields = first.as_object().unwrap().clone();
        fields.remove("timestamp");
        assert_eq!(
            Value::Object(fields),
            json!({
                "level": "INFO",
                "message": "kinesis record",
                "requestId": "req-1",
                "xrayTraceId": "trace-\"x\"",
                "partition_key": "pk",
                "size_bytes": 12,
                "delta": -3,
                "ratio": 0.5,
                "ok": true,
                "shown": "display",
                "debugged": "Some(1)",
                "type": "kw",
                "field.level": "shadowing",
            })
        );
        assert_eq!(lines[1]["message"], "record 7 failed");
        assert_eq!(lines[1]["reason"], "broker down");
        assert_eq!(lines[1]["requestId"], "req-1");
        assert_eq!(lines[2]["message"], "outside any span");
        assert!(lines[2].get("requestId").is_none());
    }

    #[tokio::test]
    async fn error_and_warn_lines_keep_their_level_under_lambdas_log_filter() {
        let (lines, _) = production_lines().await;
        let levels: Vec<_> = lines.iter().map(lambda_reads_level).collect();
        assert_eq!(levels, ["INFO", "ERROR", "WARN"]);
        // What Lambda does with a line of the stock shape, for contrast.
        let stock = json!({"level": "ERROR", "fields": {"message": "x"}});
        assert_eq!(lambda_reads_level(&stock), "INFO");
    }

    #[tokio::test]
    async fn json_prefixed_fields_are_embedded_as_json() {
        let ((), logs) = capture(async {
            tracing::info!(json.data = r#"{"order": 7, "items": [1, 2]}"#, "object");
            tracing::info!(json.data = "42", "number");
            tracing::info!(json.data = "not json", "fallback");
            tracing::info!(
                json.data = "{\n  \"a\": \"x \\\" \\n y\",\n\t\"b\" : [ 1,\r\n 2 ]\n}",
                "pretty"
            );
        })
        .await;
        let lines = logs.lines();
        assert_eq!(lines.len(), 4, "{}", logs.text());
        assert_eq!(lines[0]["data"], json!({"order": 7, "items": [1, 2]}));
        assert_eq!(lines[1]["data"], json!(42));
        assert_eq!(lines[2]["data"], json!("not json"));
        assert_eq!(lines[3]["data"], json!({"a": "x \" \n y", "b": [1, 2]}));
        assert!(
            logs.text()
                .contains(r#""data":{"order": 7, "items": [1, 2]}"#),
            "kept verbatim"
        );
        assert!(
            logs.text()
                .contains(r#""data":{"a":"x \" \n y","b":[1,2]}"#),
            "{}",
            logs.text()
        );
        assert!(
            !logs.text().contains("json."),
            "the prefix never reaches the line"
        );
    }

    #[test]
    fn compacting_leaves_whitespace_inside_strings_alone() {
        let mut out = String::new();
        write_compact(&mut out, "[ \"a b\\\\\" ,\n \"c\\\" d\" ]").unwrap();
        assert_eq!(out, "[\"a b\\\\\",\"c\\\" d\"]");
    }
}
