//! The DoubleCloud/Transferia lambda-transformation contract: the batch,
//! the per-record transformation and the response.
//!
//! The batch is walked as `serde_json::Value`, one record at a time, so a
//! malformed record becomes a `ProcessingFailed` result instead of failing
//! the whole call. Integers inside a `Value` stay exact as long as they fit
//! `i64`/`u64`, and `commitTime` is read as a `u64`, never through `f64`.
//!
//! Per record:
//! * the message is the `value` column (the raw-table parser), else the
//!   `data` column (the mirror schema), located by name;
//! * it is base64-decoded when that column's `table_schema` type is
//!   `string` (YT bytes), and taken as text otherwise (a column missing from
//!   `table_schema` counts as text);
//! * a `null` message (a Kafka tombstone) carries no events: `Dropped`;
//! * otherwise every line becomes one output change item and the record is
//!   answered `Split` (an empty message gives an empty split, as in the
//!   reference);
//! * anything unreadable gives `ProcessingFailed` with the original `cdc`,
//!   and the reason is logged.
//!
//! Output change items leave out zero-valued fields, as the Go engine's own
//! encoder does (no `id`, `nextlsn`, `schema`, `oldkeys`, …).

use std::sync::Arc;

use base64::Engine as _;
use lambda_stream_kit::result::{DoubleCloudEnvelope, DoubleCloudRecordResult, Outcome};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::enrich::{self, EnrichedEvent};

/// Column names of every output change item.
pub const OUTPUT_COLUMNS: [&str; 5] = ["ts", "ip", "data", "appid", "identity"];

/// One `table_schema` entry of an output change item; false flags are left
/// out, as the engine's encoder does.
#[derive(Debug, Serialize)]
pub struct ColumnSchema {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    key: bool,
    #[serde(skip_serializing_if = "is_false")]
    required: bool,
}

/// The output `table_schema`: `ts` is the required datetime key.
pub const OUTPUT_SCHEMA: [ColumnSchema; 5] = [
    column("ts", "datetime", true),
    column("ip", "utf8", false),
    column("data", "any", false),
    column("appid", "utf8", false),
    column("identity", "utf8", false),
];

const fn column(name: &'static str, kind: &'static str, key: bool) -> ColumnSchema {
    ColumnSchema {
        name,
        kind,
        key,
        required: key,
    }
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Shared text (the table name, the IP) serialized as a plain string, so
/// every output item can point at it without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStr(pub Arc<str>);

impl SharedStr {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// One enriched output change item.
#[derive(Debug)]
pub struct EnrichedChangeItem {
    commit_time: u64,
    table: SharedStr,
    ip: SharedStr,
    event: EnrichedEvent,
}

impl Serialize for EnrichedChangeItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The wire layout, borrowed from the item.
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "commitTime", skip_serializing_if = "is_zero")]
            commit_time: u64,
            kind: &'static str,
            #[serde(skip_serializing_if = "SharedStr::is_empty")]
            table: &'a SharedStr,
            columnnames: &'static [&'static str; 5],
            columnvalues: enrich::ColumnValues<'a>,
            table_schema: &'static [ColumnSchema; 5],
        }
        Wire {
            commit_time: self.commit_time,
            kind: "insert",
            table: &self.table,
            columnnames: &OUTPUT_COLUMNS,
            columnvalues: self.event.as_columns(&self.ip.0),
            table_schema: &OUTPUT_SCHEMA,
        }
        .serialize(serializer)
    }
}

/// A change item in a result: an enriched one, or the original sent back.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ChangeItem {
    /// Produced by this function.
    Enriched(EnrichedChangeItem),
    /// The input's `cdc`, untouched.
    Original(Value),
}

/// The response body: `{"Records":[…]}`, one result per input record.
#[derive(Debug, Serialize)]
pub struct DoubleCloudResponse {
    /// The results, in input order.
    #[serde(rename = "Records")]
    pub records: Vec<DoubleCloudRecordResult<ChangeItem>>,
}

/// Why the batch as a whole cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// `Records` is absent, `null` or not a list: there is nothing to answer
    /// per record, so the call fails and the engine retries it.
    #[error("Records is {0}, expected a list")]
    NotAList(&'static str),
}

/// Takes the record list out of a batch.
pub fn take_records(batch: &mut Value) -> Result<Vec<Value>, BatchError> {
    match batch.get_mut("Records").map(Value::take) {
        Some(Value::Array(records)) => Ok(records),
        Some(other) => Err(BatchError::NotAList(json_kind(&other))),
        None => Err(BatchError::NotAList("absent")),
    }
}

/// What the records of one call are transformed with.
#[derive(Debug, Clone)]
pub struct Enrichment<'a> {
    /// The enrichment IP, as text.
    pub ip: SharedStr,
    /// `OUTPUT_TABLE`, when configured.
    pub output_table: Option<&'a str>,
}

/// Transforms every record: exactly one result per record, in order.
pub fn transform(records: Vec<Value>, enrichment: &Enrichment<'_>) -> DoubleCloudResponse {
    DoubleCloudResponse {
        records: records
            .into_iter()
            .enumerate()
            .map(|(index, record)| transform_record(index, record, enrichment))
            .collect(),
    }
}

fn transform_record(
    index: usize,
    mut record: Value,
    enrichment: &Enrichment<'_>,
) -> DoubleCloudRecordResult<ChangeItem> {
    let envelope = envelope(&record);
    let outcome = match record.get("cdc") {
        Some(cdc @ Value::Object(_)) => enrich_change_item(cdc, enrichment),
        Some(Value::Null) | None => Outcome::failed("record has no cdc change item"),
        Some(other) => Outcome::failed(format!(
            "cdc is {}, expected a change item object",
            json_kind(other)
        )),
    };
    match &outcome {
        Outcome::ProcessingFailed { reason } => {
            tracing::warn!(index, event_id = %envelope.event_id, reason = %reason, "record failed");
        }
        Outcome::Dropped => {
            tracing::info!(index, event_id = %envelope.event_id, "record has a null message: dropped");
        }
        Outcome::Ok(_) | Outcome::Split(_) => {}
    }
    let original = match &outcome {
        Outcome::ProcessingFailed { .. } => record
            .get_mut("cdc")
            .map(Value::take)
            .map(ChangeItem::Original),
        _ => None,
    };
    DoubleCloudRecordResult::new(envelope, outcome, original)
}

/// Copies the envelope fields; a missing or non-text field is left empty
/// (the engine's zero value).
fn envelope(record: &Value) -> DoubleCloudEnvelope {
    let text = |name: &str| {
        record
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    DoubleCloudEnvelope {
        event_id: text("eventID"),
        invoke_identity_arn: text("invokeIdentityArn"),
        event_version: text("eventVersion"),
        event_name: text("eventName"),
        event_source_arn: text("eventSourceARN"),
    }
}

fn enrich_change_item(cdc: &Value, enrichment: &Enrichment<'_>) -> Outcome<ChangeItem> {
    let commit_time = match cdc.get("commitTime") {
        None | Some(Value::Null) => 0,
        Some(value) => match value.as_u64() {
            Some(n) => n,
            None => return Outcome::failed("commitTime is not an unsigned 64-bit integer"),
        },
    };
    let message = match message_text(cdc) {
        Ok(Some(text)) => text,
        Ok(None) => return Outcome::Dropped,
        Err(reason) => return Outcome::failed(reason),
    };
    let events = match enrich::parse_message(&message) {
        Ok(events) => events,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let table = SharedStr(match enrichment.output_table {
        Some(table) => Arc::from(table),
        None => Arc::from(cdc.get("table").and_then(Value::as_str).unwrap_or_default()),
    });
    Outcome::Split(
        events
            .into_iter()
            .map(|event| {
                ChangeItem::Enriched(EnrichedChangeItem {
                    commit_time,
                    table: table.clone(),
                    ip: enrichment.ip.clone(),
                    event,
                })
            })
            .collect(),
    )
}

/// The message text of a change item: `Ok(None)` for a `null` message.
fn message_text(cdc: &Value) -> Result<Option<std::borrow::Cow<'_, str>>, String> {
    let names = cdc.get("columnnames").and_then(Value::as_array);
    let position = |wanted: &str| {
        names.and_then(|names| names.iter().position(|n| n.as_str() == Some(wanted)))
    };
    let (name, index) = match (position("value"), position("data")) {
        (Some(i), _) => ("value", i),
        (None, Some(i)) => ("data", i),
        (None, None) => return Err("change item has no value or data column".into()),
    };
    let value = cdc
        .get("columnvalues")
        .and_then(Value::as_array)
        .and_then(|values| values.get(index))
        .ok_or_else(|| format!("columnvalues has no entry for the {name} column"))?;
    let text = match value {
        Value::String(text) => text,
        Value::Null => return Ok(None),
        other => {
            return Err(format!(
                "{name} column holds {}, expected text",
                json_kind(other)
            ))
        }
    };
    if column_type(cdc, name) != Some("string") {
        return Ok(Some(std::borrow::Cow::Borrowed(text)));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("{name} column is typed string but is not valid base64: {e}"))?;
    String::from_utf8(bytes)
        .map(|text| Some(std::borrow::Cow::Owned(text)))
        .map_err(|_| format!("{name} column decodes from base64 to bytes that are not UTF-8"))
}

/// The YT type `table_schema` gives the column `name`.
fn column_type<'a>(cdc: &'a Value, name: &str) -> Option<&'a str> {
    cdc.get("table_schema")?
        .as_array()?
        .iter()
        .find(|column| column.get("name").and_then(Value::as_str) == Some(name))?
        .get("type")?
        .as_str()
}

/// A JSON value's kind, for error messages that must not quote data.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enrichment() -> Enrichment<'static> {
        Enrichment {
            ip: SharedStr(Arc::from("44.201.33.239")),
            output_table: None,
        }
    }

    fn record(event_id: &str, cdc: Value) -> Value {
        json!({"cdc": cdc, "cdc_split": null, "kinesis": null, "result": "",
               "eventSource": "CDC", "eventID": event_id, "invokeIdentityArn": "tm",
               "eventVersion": "1.0", "eventName": "dt:cdc:change_item",
               "eventSourceARN": "", "awsRegion": ""})
    }

    fn change_item(column: &str, kind: &str, value: Value) -> Value {
        json!({"commitTime": 1722183591238000000u64, "kind": "insert", "table": "t",
               "columnnames": ["topic", column],
               "columnvalues": ["t", value],
               "table_schema": [{"name": "topic", "type": "utf8"}, {"name": column, "type": kind}]})
    }

    fn one(cdc: Value) -> Value {
        serde_json::to_value(transform(vec![record("1.0", cdc)], &enrichment())).unwrap()["Records"]
            [0]
        .take()
    }

    #[test]
    fn the_data_column_is_used_when_there_is_no_value_column() {
        let result = one(change_item("data", "utf8", json!("ts=9")));
        assert_eq!(result["result"], "Split");
        assert_eq!(result["cdc_split"][0]["columnvalues"][0], "9");
    }

    #[test]
    fn a_string_typed_column_is_base64_decoded() {
        // "ts=5\nts=6" in base64.
        let result = one(change_item("value", "string", json!("dHM9NQp0cz02")));
        let items = result["cdc_split"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["columnvalues"][0], "6");
    }

    #[test]
    fn a_utf8_column_is_not_base64_decoded() {
        let result = one(change_item("value", "utf8", json!("dHM9NQp0cz02")));
        assert_eq!(result["result"], "ProcessingFailed", "no ts in that text");
    }

    #[test]
    fn an_empty_message_is_an_empty_split_and_a_null_one_is_dropped() {
        let empty = one(change_item("value", "utf8", json!("")));
        assert_eq!(
            (empty["result"].clone(), empty["cdc_split"].clone()),
            (json!("Split"), json!([]))
        );
        let null = one(change_item("value", "utf8", Value::Null));
        assert_eq!(null["result"], "Dropped");
        assert!(null.get("cdc").is_none());
    }

    #[test]
    fn the_output_table_replaces_the_input_table_when_configured() {
        let mut with_table = enrichment();
        with_table.output_table = Some("enriched");
        let response = transform(
            vec![record("1", change_item("value", "utf8", json!("ts=1")))],
            &with_table,
        );
        let v = serde_json::to_value(response).unwrap();
        assert_eq!(v["Records"][0]["cdc_split"][0]["table"], "enriched");
        assert_eq!(
            one(change_item("value", "utf8", json!("ts=1")))["cdc_split"][0]["table"],
            "t"
        );
    }

    #[test]
    fn a_zero_commit_time_and_empty_table_are_left_out_like_go_omitempty() {
        let result = one(json!({"columnnames": ["value"], "columnvalues": ["ts=1"]}));
        let item = &result["cdc_split"][0];
        assert!(
            item.get("commitTime").is_none() && item.get("table").is_none(),
            "{item}"
        );
        assert_eq!(item["kind"], "insert");
    }

    #[test]
    fn unreadable_change_items_fail_with_the_original_sent_back() {
        let cases = [
            (
                json!({"columnnames": ["key"], "columnvalues": ["x"]}),
                "no value or data column",
            ),
            (
                json!({"columnnames": ["value"], "columnvalues": []}),
                "no entry for the value column",
            ),
            (
                json!({"commitTime": -1, "columnnames": ["value"], "columnvalues": ["ts=1"]}),
                "commitTime",
            ),
            (
                json!({"commitTime": 1.5, "columnnames": ["value"], "columnvalues": ["ts=1"]}),
                "commitTime",
            ),
            (change_item("value", "string", json!("//8=")), "not UTF-8"),
            (
                change_item("value", "utf8", json!(["ts=1"])),
                "holds a list",
            ),
        ];
        for (cdc, why) in cases {
            let (result, logs) = transform_one_capturing_logs(cdc.clone());
            assert_eq!(result["result"], "ProcessingFailed", "{why}");
            assert_eq!(result["cdc"], cdc, "{why}");
            assert!(logs.contains(why), "{why}: {logs}");
        }
    }

    /// Runs one record through `transform` with log capture.
    fn transform_one_capturing_logs(cdc: Value) -> (Value, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (result, logs) =
            runtime.block_on(lambda_stream_kit::telemetry::capture(async { one(cdc) }));
        (result, logs.text())
    }

    #[test]
    fn records_without_a_cdc_object_fail_but_keep_their_place() {
        let records = vec![
            json!(7),
            record("2", Value::Null),
            json!({"eventID": "3", "cdc": "x"}),
        ];
        let v = serde_json::to_value(transform(records, &enrichment())).unwrap();
        let results = v["Records"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| r["result"] == "ProcessingFailed"));
        assert_eq!(results[0]["eventID"], "");
        assert_eq!(results[1]["eventID"], "2");
        assert_eq!(results[2]["cdc"], "x");
    }

    #[test]
    fn records_must_be_a_list() {
        assert_eq!(
            take_records(&mut json!({"Records": null})),
            Err(BatchError::NotAList("null"))
        );
        assert_eq!(
            take_records(&mut json!({})),
            Err(BatchError::NotAList("absent"))
        );
        assert_eq!(
            take_records(&mut json!({"Records": {}})),
            Err(BatchError::NotAList("an object"))
        );
        assert_eq!(take_records(&mut json!({"Records": []})), Ok(vec![]));
    }
}
