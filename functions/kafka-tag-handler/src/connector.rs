//! Synchronous invocation by the Confluent AWS Lambda Sink connector.
//!
//! The connector sends a JSON array of `{"payload": {"timestamp", "topic",
//! "partition", "offset", "key"?, "value", …}}` (unknown fields are
//! ignored; an item without `payload` is read as the payload itself). The
//! `value` is a JSON object, or a string holding JSON. The answer is an
//! array with exactly one entry per input, in order, which the connector
//! writes to its response topic:
//!
//! * a page visit: the tagged event;
//! * a bad record, with `ON_ERROR=log` or `dlq`: an error entry
//!   `{"error": {"kind", "message", "index", "topic", "partition", "offset"}}`
//!   in its place (nothing is published: the connector owns the topics in
//!   this mode, and its `behavior.on.error` decides what happens next);
//! * a bad record, with `ON_ERROR=fail`: the whole call fails, naming the
//!   record, so a connector with `behavior.on.error=fail` stops there.

use serde_json::{json, Value};

use crate::bad_record::{BadRecord, ErrorKind};
use crate::config::OnError;
use crate::handler::{App, HandlerError};
use crate::source::kind_of;
use crate::visit;

/// Tags every item; see the module doc for the answer.
pub fn handle(items: Vec<Value>, app: &App, tagged_at: &str) -> Result<Vec<Value>, HandlerError> {
    let mut results = Vec::with_capacity(items.len());
    for (index, mut item) in items.into_iter().enumerate() {
        let position = Position::of(&item);
        match tag_item(&mut item, app, tagged_at) {
            Ok(tagged) => results.push(tagged),
            Err(bad) => {
                tracing::warn!(
                    index,
                    topic = position.topic.as_deref(),
                    partition = position.partition,
                    offset = position.offset,
                    kind = bad.kind.as_str(),
                    reason = %bad.message,
                    on_error = %app.config.on_error,
                    "connector record cannot be tagged"
                );
                if app.config.on_error == OnError::Fail {
                    return Err(HandlerError::ConnectorRecord {
                        index,
                        position: position.to_string(),
                        bad,
                    });
                }
                results.push(error_entry(index, &position, &bad));
            }
        }
    }
    Ok(results)
}

fn tag_item(item: &mut Value, app: &App, tagged_at: &str) -> Result<Value, BadRecord> {
    let payload = match item {
        Value::Object(fields) if fields.get("payload").is_some_and(Value::is_object) => fields
            .get_mut("payload")
            .map(Value::take)
            .unwrap_or_default(),
        Value::Object(_) => item.take(),
        other => {
            return Err(BadRecord::new(
                ErrorKind::MalformedRecord,
                format!(
                    "a connector record must be an object, not {}",
                    kind_of(other)
                ),
            ))
        }
    };
    let Value::Object(mut payload) = payload else {
        return Err(BadRecord::new(
            ErrorKind::MalformedRecord,
            "the payload is not an object",
        ));
    };
    match payload.remove("value") {
        None | Some(Value::Null) => Err(BadRecord::new(
            ErrorKind::NotJson,
            "the record has no value",
        )),
        Some(Value::String(text)) => visit::tag_text(&text, &app.tagger, tagged_at),
        Some(value) => visit::tag_value(value, &app.tagger, tagged_at),
    }
}

/// Where a connector record came from, as far as it says.
#[derive(Debug, Default)]
struct Position {
    topic: Option<String>,
    partition: Option<i64>,
    offset: Option<i64>,
}

impl Position {
    fn of(item: &Value) -> Self {
        let payload = item
            .get("payload")
            .filter(|p| p.is_object())
            .unwrap_or(item);
        Self {
            topic: payload
                .get("topic")
                .and_then(Value::as_str)
                .map(str::to_owned),
            partition: payload.get("partition").and_then(Value::as_i64),
            offset: payload.get("offset").and_then(Value::as_i64),
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.topic, self.partition, self.offset) {
            (Some(t), Some(p), Some(o)) => write!(f, " ({t}-{p} at offset {o})"),
            _ => Ok(()),
        }
    }
}

fn error_entry(index: usize, position: &Position, bad: &BadRecord) -> Value {
    json!({"error": {
        "kind": bad.kind.as_str(),
        "message": bad.message,
        "index": index,
        "topic": position.topic,
        "partition": position.partition,
        "offset": position.offset,
    }})
}
