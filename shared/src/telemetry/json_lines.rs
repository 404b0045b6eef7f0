//! JSON log lines that can carry a nested JSON value.
//!
//! `tracing` fields are strings, numbers or booleans, so the stock JSON
//! formatter writes a JSON payload as an escaped string. [`JsonLines`]
//! writes the same line shape as the Lambda runtime's JSON set-up (`level`,
//! `fields`, `span`, `spans`), with one addition: a string field whose name
//! starts with [`RAW_JSON_PREFIX`] and holds valid JSON is written as that
//! JSON value, under the name without the prefix. Anything else under that
//! prefix is written as an ordinary string, so a wrong value can never break
//! the line.

use std::{fmt, io};

use lambda_runtime::tracing::subscriber::{
    self,
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

/// Formats each event as one JSON object per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines {
    /// Put event fields at the top level instead of under `fields`.
    pub flatten: bool,
    /// Add the event's `target`.
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
        line.key("level")?;
        line.string(meta.level().as_str())?;
        if self.flatten {
            event.record(&mut line);
        } else {
            line.key("fields")?;
            let mut fields = LineWriter::new(line.out);
            fields.out.write_char('{')?;
            event.record(&mut fields);
            fields.finish()?;
            fields.out.write_char('}')?;
        }
        line.finish()?;
        if self.target {
            line.key("target")?;
            line.string(meta.target())?;
        }
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = current {
            line.key("span")?;
            write_span::<_, N>(line.out, &span)?;
            line.key("spans")?;
            line.out.write_char('[')?;
            if let Some(leaf) = ctx.lookup_current() {
                for (i, span) in leaf.scope().from_root().enumerate() {
                    if i > 0 {
                        line.out.write_char(',')?;
                    }
                    write_span::<_, N>(line.out, &span)?;
                }
            }
            line.out.write_char(']')?;
        }
        line.out.write_str("}\n")
    }
}

/// Writes a span as its recorded fields plus `name`, as the stock formatter does.
fn write_span<S, N>(
    out: &mut dyn fmt::Write,
    span: &subscriber::registry::SpanRef<'_, S>,
) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let ext = span.extensions();
    // `JsonFields` stores a span's fields as a JSON object; splicing `name`
    // into it avoids re-parsing it for every line.
    let inner = ext
        .get::<FormattedFields<N>>()
        .and_then(|f| f.fields.strip_prefix('{')?.strip_suffix('}'))
        .map(str::trim)
        .unwrap_or("");
    out.write_char('{')?;
    if !inner.is_empty() {
        out.write_str(inner)?;
        out.write_char(',')?;
    }
    out.write_str("\"name\":")?;
    write_json(out, span.name())?;
    out.write_char('}')
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

    /// Writes one field unless an earlier one failed.
    fn field(&mut self, field: &Field, value: impl serde::Serialize) {
        if self.result.is_ok() {
            self.result = self
                .key(field.name())
                .and_then(|()| write_json(self.out, &value));
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
            self.key(name)
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
    use lambda_runtime::tracing::subscriber::fmt::format::JsonFields;
    use serde_json::{json, Value};
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
                "kinesis record"
            );
            tracing::warn!("no span fields");
        }
        .instrument(span)
        .await;
        tracing::info!("outside any span");
    }

    /// Lines from the stock JSON formatter configured as `lambda_runtime` does.
    async fn stock_nested_lines() -> Vec<Value> {
        let logs = CapturedLogs::default();
        let subscriber = subscriber::fmt()
            .json()
            .without_time()
            .with_target(false)
            .with_writer(logs.clone())
            .finish();
        emit_sample().with_subscriber(subscriber).await;
        logs.lines()
    }

    async fn our_nested_lines() -> (Vec<Value>, String) {
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
    async fn lines_match_the_stock_lambda_json_format() {
        let stock = stock_nested_lines().await;
        let (ours, text) = our_nested_lines().await;
        assert_eq!(ours.len(), 3, "{text}");
        assert_eq!(text.lines().count(), 3);
        assert_eq!(ours, stock);
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
