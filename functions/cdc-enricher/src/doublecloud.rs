//! The DoubleCloud/Transferia lambda-transformation contract: the batch,
//! the per-record transformation and the response.
//!
//! The batch's `Records` list is kept as raw JSON per record, and each
//! record is read on its own with [`lenient::read`]: a typed record
//! (its envelope fields and its raw `cdc`), or, when it does not parse (not
//! an object, or a repeated `eventID`…`eventSourceARN` or `cdc` key), only
//! its envelope, so it is still answered `ProcessingFailed` in its place
//! (a record whose `cdc` cannot be told is never dead-lettered). The change item is then read into a typed view
//! whose members stay raw until they are needed ([`json`]): no
//! `serde_json::Value` tree is built for a record that transforms.
//! `commitTime` is read as a `u64`, never through `f64`, and a change item
//! sent back unchanged is sent back as its original text.
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
//! * anything unreadable is logged at WARN with its position and reason,
//!   and answered as `ENRICHER_ON_FAILURE` says ([`OnFailure`]): by default
//!   `Ok` with the item in its dead-letter table ([`dead_letter`]), because
//!   Transferia's CDC mode skips a `ProcessingFailed` item without a trace.
//!
//! The answer is priced as it is built ([`Budget`]). Items are kept only
//! while they fit, so memory follows the answer's size, not the number of
//! lines; an answer that cannot fit fails the whole call
//! ([`TransformError::TooLarge`]) rather than being cut short.
//!
//! Output change items leave out zero-valued fields, as the Go engine's own
//! encoder does (no `id`, `nextlsn`, `schema`, `oldkeys`, …).

use std::sync::Arc;

use std::borrow::Cow;

use base64::Engine as _;
use lambda_stream_kit::lenient::{self, Lenient};
use lambda_stream_kit::result::{
    DoubleCloudEnvelope, DoubleCloudRecordResult, Outcome, ResultKind,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::budget::Budget;
use crate::config::OnFailure;
use crate::enrich::{self, EnrichedEvent};
use crate::json::{self, List, Member};

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

/// A change item in a result: an enriched one, a dead letter, or the
/// original sent back.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ChangeItem {
    /// Produced by this function.
    Enriched(EnrichedChangeItem),
    /// The input's `cdc` moved to its dead-letter table, with the reason in
    /// [`REASON_COLUMN`] where its schema can hold it (see [`dead_letter`]).
    DeadLetter(Value),
    /// The input's `cdc`, untouched: its original text.
    Original(Box<RawValue>),
}

/// The column a dead letter carries its failure reason in.
pub const REASON_COLUMN: &str = "__processing_error";

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

/// Why a batch was read but cannot be answered: the call fails, and the
/// engine retries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The answer would pass Lambda's response limit. Nothing is answered
    /// (a shorter answer would mean a count mismatch or lost items), and the
    /// operator is told what to change.
    #[error(
        "the answer would exceed Lambda's {limit}-byte response limit: {fitted} of {records} \
         records fit. {advice}",
        limit = crate::budget::LAMBDA_RESPONSE_LIMIT,
        advice = if *fitted == 0 {
            "The first record alone expands beyond it, which a smaller batch cannot change: \
             split such Kafka messages upstream"
        } else {
            "Lower the transfer's buffer size so that each call carries less input"
        }
    )]
    TooLarge {
        /// How many records fitted before the one that did not.
        fitted: usize,
        /// The records in the call.
        records: usize,
    },
    /// A record cannot be transformed and `ENRICHER_ON_FAILURE=fail-call`.
    #[error(
        "record {index} cannot be transformed: {reason} (ENRICHER_ON_FAILURE=fail-call fails \
         the whole call)"
    )]
    RecordFailed {
        /// Its position in the batch.
        index: usize,
        /// Why, by position only: it never quotes the input.
        reason: String,
    },
}

/// The record list of a batch, each record's raw text. A batch that is not
/// an object has no `Records`.
pub fn take_records(batch: &RawValue) -> Result<Vec<&RawValue>, BatchError> {
    json::list_member(batch, "Records").map_err(BatchError::NotAList)
}

/// Declares a record type with the envelope fields (`eventID`, …), a
/// missing or non-text one left empty (the engine's zero value), and
/// `extra` fields; and its `envelope()`, for the record's result.
macro_rules! with_envelope {
    ($(#[$doc:meta])* $name:ident $(<$lt:lifetime>)? { $($extra:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        struct $name $(<$lt>)? {
            #[serde(rename = "eventID", default, deserialize_with = "lenient::text")]
            event_id: Option<String>,
            #[serde(rename = "invokeIdentityArn", default, deserialize_with = "lenient::text")]
            invoke_identity_arn: Option<String>,
            #[serde(rename = "eventVersion", default, deserialize_with = "lenient::text")]
            event_version: Option<String>,
            #[serde(rename = "eventName", default, deserialize_with = "lenient::text")]
            event_name: Option<String>,
            #[serde(rename = "eventSourceARN", default, deserialize_with = "lenient::text")]
            event_source_arn: Option<String>,
            $($extra)*
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            fn envelope(self) -> DoubleCloudEnvelope {
                DoubleCloudEnvelope {
                    event_id: self.event_id.unwrap_or_default(),
                    invoke_identity_arn: self.invoke_identity_arn.unwrap_or_default(),
                    event_version: self.event_version.unwrap_or_default(),
                    event_name: self.event_name.unwrap_or_default(),
                    event_source_arn: self.event_source_arn.unwrap_or_default(),
                }
            }
        }
    };
}

with_envelope!(
    /// One record, typed: its envelope, and its `cdc` as raw text.
    Record<'a> {
        #[serde(default, borrow)]
        cdc: Member<'a>,
    }
);

with_envelope!(
    /// A record's coordinates, read when it does not parse as a [`Record`]
    /// (not an object, or a repeated key): its envelope alone.
    Coordinates {}
);

/// The members of a change item this function reads, each raw until it is
/// needed; every other member is only kept in the original text.
#[derive(Debug, Deserialize)]
struct ChangeItemView<'a> {
    #[serde(rename = "commitTime", default, borrow)]
    commit_time: Option<&'a RawValue>,
    #[serde(default, borrow)]
    table: Option<&'a RawValue>,
    #[serde(default, borrow)]
    columnnames: List<'a>,
    #[serde(default, borrow)]
    columnvalues: List<'a>,
    #[serde(default, borrow)]
    table_schema: List<'a>,
}

/// The members of a `table_schema` entry this function reads.
#[derive(Debug, Deserialize)]
struct ColumnView<'a> {
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
}

/// What the records of one call are transformed with.
#[derive(Debug, Clone)]
pub struct Enrichment<'a> {
    /// The enrichment IP, as text.
    pub ip: SharedStr,
    /// `OUTPUT_TABLE`, when configured.
    pub output_table: Option<&'a str>,
    /// `ENRICHER_ON_FAILURE`.
    pub on_failure: OnFailure,
}

/// Transforms every record: exactly one result per record, in order, or an
/// error for the whole call. `budget` is what the answer may take once
/// serialized; it must not already count the `{"Records":[]}` around the
/// results.
pub fn transform(
    records: &[&RawValue],
    enrichment: &Enrichment<'_>,
    budget: &mut Budget,
) -> Result<DoubleCloudResponse, TransformError> {
    let total = records.len();
    let too_large = |fitted| TransformError::TooLarge {
        fitted,
        records: total,
    };
    if !budget.try_spend(budget.cost_of_text(r#"{"Records":[]}"#)) {
        return Err(too_large(0));
    }
    let mut results = Vec::with_capacity(total);
    for (index, record) in records.iter().enumerate() {
        let separator = if index == 0 {
            0
        } else {
            budget.cost_of_text(",")
        };
        if !budget.try_spend(separator) {
            return Err(too_large(index));
        }
        let result = transform_record(index, record, enrichment, budget)?;
        results.push(result.ok_or_else(|| too_large(index))?);
    }
    Ok(DoubleCloudResponse { records: results })
}

/// One record's result, its cost taken from `budget`; `None` when it does
/// not fit.
fn transform_record(
    index: usize,
    record: &RawValue,
    enrichment: &Enrichment<'_>,
    budget: &mut Budget,
) -> Result<Option<DoubleCloudRecordResult<ChangeItem>>, TransformError> {
    let (envelope, cdc, step) = match lenient::read::<Record<'_>, Coordinates>(record, "record") {
        Lenient::Parsed(record) => {
            let cdc = record.cdc.0;
            (record.envelope(), cdc, None)
        }
        // Not an object, so it has no cdc; or an object with a repeated
        // key, which the reason places. Either way it is failed in its place.
        Lenient::Unparsed {
            coordinates,
            reason,
        } => {
            let reason = match json::kind(record) {
                "an object" => reason,
                _ => "record has no cdc change item".into(),
            };
            (coordinates.envelope(), None, Some(Step::Failed(reason)))
        }
    };
    // Priced once with no items, so each item only adds its own cost.
    let empty_split =
        DoubleCloudRecordResult::new(envelope.clone(), Outcome::<ChangeItem>::Split(vec![]), None);
    let split_cost = budget.cost_of(&empty_split);
    let allowance = budget.remaining().saturating_sub(split_cost);
    let step = step.unwrap_or_else(|| match cdc.map(|cdc| (cdc, json::kind(cdc))) {
        Some((cdc, "an object")) => enrich_change_item(cdc, enrichment, budget, allowance),
        Some((_, "null")) | None => Step::Failed("record has no cdc change item".into()),
        Some((_, kind)) => Step::Failed(format!("cdc is {kind}, expected a change item object")),
    });
    let result = match step {
        Step::Split { items, cost } => {
            let fits = budget.try_spend(split_cost.saturating_add(cost));
            return Ok(
                fits.then(|| DoubleCloudRecordResult::new(envelope, Outcome::Split(items), None))
            );
        }
        Step::DoesNotFit => return Ok(None),
        Step::Dropped => {
            tracing::info!(index, event_id = %envelope.event_id, "record has a null message: dropped");
            DoubleCloudRecordResult::new(envelope, Outcome::Dropped, None)
        }
        Step::Failed(reason) => {
            // A change item that a `Value` cannot hold (a number past
            // `f64`) is sent back as it came instead.
            let item = cdc
                .filter(|cdc| {
                    matches!(enrichment.on_failure, OnFailure::DeadLetterTable)
                        && json::kind(cdc) == "an object"
                })
                .and_then(|cdc| serde_json::from_str::<Value>(cdc.get()).ok());
            let answer = match enrichment.on_failure {
                OnFailure::FailCall => "the whole call fails",
                OnFailure::DeadLetterTable if item.is_some() => "Ok in the dead-letter table",
                OnFailure::DeadLetterTable | OnFailure::ProcessingFailed => "ProcessingFailed",
            };
            tracing::warn!(index, event_id = %envelope.event_id, reason = %reason, answer, "record failed");
            match (enrichment.on_failure, item) {
                (OnFailure::FailCall, _) => {
                    return Err(TransformError::RecordFailed { index, reason })
                }
                (OnFailure::DeadLetterTable, Some(item)) => {
                    let item = ChangeItem::DeadLetter(dead_letter(item, &reason));
                    DoubleCloudRecordResult::new(envelope, Outcome::Ok(item), None)
                }
                // Without a change item there is nothing to keep: the
                // engine never sends such a record in CDC mode.
                _ => DoubleCloudRecordResult::new(
                    envelope,
                    Outcome::failed(reason),
                    cdc.map(|cdc| ChangeItem::Original(cdc.to_owned())),
                ),
            }
        }
    };
    let fits = budget.try_spend(budget.cost_of(&result));
    Ok(fits.then_some(result))
}

/// What became of one change item, before it is priced as a result.
enum Step {
    /// Every line enriched; `cost` is what the items and the commas
    /// between them take.
    Split { items: Vec<ChangeItem>, cost: usize },
    /// Every line is good, but the items do not fit the answer.
    DoesNotFit,
    /// A `null` message.
    Dropped,
    /// Unreadable; the reason never quotes the input.
    Failed(String),
}

/// The change item `cdc` moved to the dead-letter table
/// `<table>_ProcessingFailed` (the engine's own naming for results of its
/// YDS mode), every other field kept. The reason goes in a
/// [`REASON_COLUMN`] column of type `utf8` when the item's columns can hold
/// it: `columnnames` and `columnvalues` are lists of the same length and
/// `table_schema` is a list (the new entry takes `table_schema` and
/// `table_name` from the first one). An existing column of that name gets
/// the new reason.
pub fn dead_letter(mut cdc: Value, reason: &str) -> Value {
    let Some(item) = cdc.as_object_mut() else {
        return cdc;
    };
    let table = item
        .get("table")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let table = format!("{table}_{}", ResultKind::ProcessingFailed.as_str());
    item.insert("table".into(), Value::String(table));

    let names = item
        .get("columnnames")
        .and_then(Value::as_array)
        .map(Vec::len);
    let values = item
        .get("columnvalues")
        .and_then(Value::as_array)
        .map(Vec::len);
    let has_schema = item.get("table_schema").is_some_and(Value::is_array);
    if names.is_none() || names != values || !has_schema {
        return cdc;
    }
    let existing = item
        .get("columnnames")
        .and_then(Value::as_array)
        .and_then(|names| names.iter().position(|n| n.as_str() == Some(REASON_COLUMN)));
    let reason = Value::String(reason.to_owned());
    let list = |item: &mut serde_json::Map<String, Value>, name: &str| {
        item.get_mut(name)
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
            .unwrap_or_default()
    };
    let mut values = list(item, "columnvalues");
    match existing {
        Some(position) => {
            if let Some(slot) = values.get_mut(position) {
                *slot = reason;
            }
        }
        None => {
            values.push(reason);
            let mut names = list(item, "columnnames");
            names.push(Value::from(REASON_COLUMN));
            item.insert("columnnames".into(), Value::Array(names));
            let mut schema = list(item, "table_schema");
            // The column belongs to the same source table as its neighbours.
            let mut column = serde_json::Map::new();
            if let Some(Value::Object(first)) = schema.first() {
                for key in ["table_schema", "table_name"] {
                    if let Some(value) = first.get(key) {
                        column.insert(key.into(), value.clone());
                    }
                }
            }
            column.insert("name".into(), Value::from(REASON_COLUMN));
            column.insert("type".into(), Value::from("utf8"));
            schema.push(Value::Object(column));
            item.insert("table_schema".into(), Value::Array(schema));
        }
    }
    item.insert("columnvalues".into(), Value::Array(values));
    cdc
}

/// Enriches every line of `cdc`'s message, keeping the items only while
/// they fit in `allowance` bytes of the answer. Past that, the remaining
/// lines are still read, one at a time and without keeping them, because a
/// bad line makes the record a (smaller) failure instead.
fn enrich_change_item(
    cdc: &RawValue,
    enrichment: &Enrichment<'_>,
    budget: &Budget,
    allowance: usize,
) -> Step {
    let cdc = match lenient::read::<ChangeItemView<'_>, IgnoredAny>(cdc, "cdc") {
        Lenient::Parsed(cdc) => cdc,
        Lenient::Unparsed { reason, .. } => return Step::Failed(reason),
    };
    let commit_time = match cdc.commit_time {
        None => 0,
        Some(value) => match serde_json::from_str::<u64>(value.get()) {
            Ok(n) => n,
            Err(_) => return Step::Failed("commitTime is not an unsigned 64-bit integer".into()),
        },
    };
    let table = SharedStr(match enrichment.output_table {
        Some(table) => Arc::from(table),
        None => Arc::from(cdc.table.and_then(json::text).unwrap_or_default().as_ref()),
    });
    let message = match message_text(cdc) {
        Ok(Some(text)) => text,
        Ok(None) => return Step::Dropped,
        Err(reason) => return Step::Failed(reason),
    };
    let comma = budget.cost_of_text(",");
    let mut items = Vec::new();
    let mut cost = 0usize;
    let mut fits = true;
    for event in enrich::events(&message) {
        let event = match event {
            Ok(event) => event,
            Err(e) => return Step::Failed(e.to_string()),
        };
        if !fits {
            continue;
        }
        let item = ChangeItem::Enriched(EnrichedChangeItem {
            commit_time,
            table: table.clone(),
            ip: enrichment.ip.clone(),
            event,
        });
        let separator = if items.is_empty() { 0 } else { comma };
        cost = cost
            .saturating_add(separator)
            .saturating_add(budget.cost_of(&item));
        if cost <= allowance {
            items.push(item);
        } else {
            fits = false;
            items = Vec::new();
        }
    }
    if fits {
        Step::Split { items, cost }
    } else {
        Step::DoesNotFit
    }
}

/// The message text of a change item: `Ok(None)` for a `null` message.
fn message_text<'a>(cdc: ChangeItemView<'a>) -> Result<Option<Cow<'a, str>>, String> {
    let names = cdc.columnnames.items().unwrap_or_default();
    let position = |wanted: &str| {
        names
            .iter()
            .position(|n| json::text(n).as_deref() == Some(wanted))
    };
    let (name, index) = match (position("value"), position("data")) {
        (Some(i), _) => ("value", i),
        (None, Some(i)) => ("data", i),
        (None, None) => return Err("change item has no value or data column".into()),
    };
    let value = cdc
        .columnvalues
        .items()
        .ok()
        .and_then(|values| values.get(index).copied())
        .ok_or_else(|| format!("columnvalues has no entry for the {name} column"))?;
    let text = match json::kind(value) {
        "a string" => json::text(value).unwrap_or_default(),
        "null" => return Ok(None),
        other => return Err(format!("{name} column holds {other}, expected text")),
    };
    if column_type(cdc.table_schema, name).as_deref() != Some("string") {
        return Ok(Some(text));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| {
            format!(
                "{name} column is typed string but is not valid base64: {}",
                base64_error(&e)
            )
        })?;
    String::from_utf8(bytes)
        .map(|text| Some(Cow::Owned(text)))
        .map_err(|_| format!("{name} column decodes from base64 to bytes that are not UTF-8"))
}

/// The YT type `table_schema` gives the column `name`: the first entry of
/// that name decides.
fn column_type<'a>(table_schema: List<'a>, name: &str) -> Option<Cow<'a, str>> {
    table_schema
        .items()
        .ok()?
        .into_iter()
        .filter_map(|column| serde_json::from_str::<ColumnView<'a>>(column.get()).ok())
        .find(|column| column.name.and_then(json::text).as_deref() == Some(name))?
        .kind
        .and_then(json::text)
}

/// A base64 error by kind and offset: the decoder's own message quotes the
/// offending symbol.
pub fn base64_error(error: &base64::DecodeError) -> String {
    match error {
        base64::DecodeError::InvalidByte(offset, _) => format!("invalid symbol at offset {offset}"),
        base64::DecodeError::InvalidLength(length) => {
            format!("invalid length ({length} symbols)")
        }
        base64::DecodeError::InvalidLastSymbol { offset, .. } => {
            format!("invalid last symbol at offset {offset}")
        }
        base64::DecodeError::InvalidPadding => "invalid padding".into(),
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
            on_failure: OnFailure::ProcessingFailed,
        }
    }

    fn budget(limit: usize) -> Budget {
        Budget::new(limit, 0, crate::budget::Framing::Bare).unwrap()
    }

    /// `transform` of `records`, each as raw JSON.
    fn transform(
        records: Vec<Value>,
        enrichment: &Enrichment<'_>,
        budget: &mut Budget,
    ) -> Result<DoubleCloudResponse, TransformError> {
        let raw: Vec<Box<RawValue>> = records
            .iter()
            .map(|record| serde_json::value::to_raw_value(record).unwrap())
            .collect();
        let records: Vec<&RawValue> = raw.iter().map(AsRef::as_ref).collect();
        super::transform(&records, enrichment, budget)
    }

    /// `transform` under Lambda's limit, serialized.
    fn answer(records: Vec<Value>, enrichment: &Enrichment<'_>) -> Value {
        let mut budget = budget(crate::budget::LAMBDA_RESPONSE_LIMIT);
        serde_json::to_value(transform(records, enrichment, &mut budget).unwrap()).unwrap()
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
        answer(vec![record("1.0", cdc)], &enrichment())["Records"][0].take()
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
        let v = answer(
            vec![record("1", change_item("value", "utf8", json!("ts=1")))],
            &with_table,
        );
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
        let v = answer(records, &enrichment());
        let results = v["Records"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| r["result"] == "ProcessingFailed"));
        assert_eq!(results[0]["eventID"], "");
        assert_eq!(results[1]["eventID"], "2");
        assert_eq!(results[2]["cdc"], "x");
    }

    #[test]
    fn a_failed_item_goes_to_its_dead_letter_table_with_the_reason_as_a_column() {
        let mut dead_letters = enrichment();
        dead_letters.on_failure = OnFailure::DeadLetterTable;
        let cdc = change_item("value", "utf8", json!("no ts here"));
        let result = &answer(vec![record("1.0", cdc.clone())], &dead_letters)["Records"][0];
        assert_eq!(result["result"], "Ok");
        let item = &result["cdc"];
        assert_eq!(item["table"], "t_ProcessingFailed");
        assert_eq!(
            item["columnnames"],
            json!(["topic", "value", REASON_COLUMN])
        );
        assert_eq!(
            item["columnvalues"],
            json!([
                "t",
                "no ts here",
                "line 1: no ts parameter (ts is the required key column)"
            ])
        );
        assert_eq!(
            item["table_schema"][2],
            json!({"name": REASON_COLUMN, "type": "utf8"})
        );
        // Everything else is the original's.
        assert_eq!(item["commitTime"], cdc["commitTime"]);
        assert_eq!(item["kind"], "insert");
    }

    #[test]
    fn a_dead_letter_keeps_the_reason_out_of_columns_that_cannot_hold_it() {
        let misaligned = json!({"table": "t", "columnnames": ["value", "key"], "columnvalues": ["x"],
                                "table_schema": []});
        let item = dead_letter(misaligned.clone(), "why");
        assert_eq!(item["table"], "t_ProcessingFailed");
        assert_eq!(item["columnnames"], misaligned["columnnames"]);
        assert_eq!(item["columnvalues"], misaligned["columnvalues"]);

        let no_schema = json!({"columnnames": ["value"], "columnvalues": [1]});
        let item = dead_letter(no_schema, "why");
        assert_eq!(item["table"], "_ProcessingFailed");
        assert_eq!(item["columnnames"], json!(["value"]));

        let again = json!({"table": "t", "columnnames": ["value", REASON_COLUMN],
                           "columnvalues": ["x", "old"], "table_schema": []});
        let item = dead_letter(again, "new");
        assert_eq!(item["columnvalues"], json!(["x", "new"]));
        assert_eq!(item["table_schema"], json!([]));
    }

    #[test]
    fn a_record_without_a_change_item_cannot_be_dead_lettered_and_stays_failed() {
        let mut dead_letters = enrichment();
        dead_letters.on_failure = OnFailure::DeadLetterTable;
        let v = answer(
            vec![json!({"eventID": "1"}), json!({"eventID": "2", "cdc": 5})],
            &dead_letters,
        );
        assert_eq!(v["Records"][0]["result"], "ProcessingFailed");
        assert!(v["Records"][0].get("cdc").is_none(), "no Ok without a cdc");
        assert_eq!(v["Records"][1]["result"], "ProcessingFailed");
        assert_eq!(v["Records"][1]["cdc"], 5);
    }

    #[test]
    fn fail_call_fails_the_whole_batch_on_the_first_bad_item() {
        let mut strict = enrichment();
        strict.on_failure = OnFailure::FailCall;
        let records = vec![
            record("1", change_item("value", "utf8", json!("ts=1"))),
            record("2", change_item("value", "string", json!("%%%"))),
        ];
        let err = transform(records, &strict, &mut budget(1 << 20)).unwrap_err();
        assert_eq!(
            err,
            TransformError::RecordFailed {
                index: 1,
                reason: "value column is typed string but is not valid base64: \
                         invalid symbol at offset 0"
                    .into()
            }
        );
    }

    #[test]
    fn the_answer_fits_its_budget_to_the_byte_or_fails_whole() {
        let records = || {
            vec![
                record("1", change_item("value", "utf8", json!("ts=1\nts=2"))),
                record("2", change_item("value", "utf8", Value::Null)),
                record("3", change_item("value", "utf8", json!("bad"))),
            ]
        };
        let exact =
            serde_json::to_vec(&transform(records(), &enrichment(), &mut budget(1 << 20)).unwrap())
                .unwrap()
                .len();
        let mut fitting = budget(exact);
        assert!(transform(records(), &enrichment(), &mut fitting).is_ok());
        assert_eq!(fitting.remaining(), 0, "every byte was counted");
        // One byte less does not fit, at whichever record it runs out.
        for limit in [exact - 1, exact / 2, 20] {
            let err = transform(records(), &enrichment(), &mut budget(limit)).unwrap_err();
            assert!(
                matches!(err, TransformError::TooLarge { records: 3, .. }),
                "{limit}: {err}"
            );
        }
    }

    #[test]
    fn a_record_too_large_on_its_own_tells_the_operator_that_a_smaller_batch_cannot_help() {
        let lines = "ts=1\n".repeat(100);
        let err = transform(
            vec![record("1", change_item("value", "utf8", json!(lines)))],
            &enrichment(),
            &mut budget(4_000),
        )
        .unwrap_err();
        assert_eq!(
            err,
            TransformError::TooLarge {
                fitted: 0,
                records: 1
            }
        );
        assert!(
            err.to_string()
                .contains("split such Kafka messages upstream"),
            "{err}"
        );
        let with_others = TransformError::TooLarge {
            fitted: 3,
            records: 9,
        };
        assert!(
            with_others
                .to_string()
                .ends_with("Lower the transfer's buffer size so that each call carries less input"),
            "{with_others}"
        );
    }

    #[test]
    fn an_item_that_does_not_fit_but_has_a_bad_line_later_is_a_failure_not_too_large() {
        let mut lines = "ts=1\n".repeat(100);
        lines.push_str("no ts");
        let response = transform(
            vec![record("1", change_item("value", "utf8", json!(lines)))],
            &enrichment(),
            &mut budget(4_000),
        )
        .unwrap();
        assert_eq!(response.records[0].result, ResultKind::ProcessingFailed);
    }

    #[test]
    fn base64_errors_are_described_without_the_offending_symbol() {
        for (text, want) in [
            ("ab\u{7}d", "invalid symbol at offset 2"),
            ("abcde", "invalid length (5 symbols)"),
            ("YR==", "invalid last symbol at offset 1"),
        ] {
            let err = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_err();
            assert_eq!(base64_error(&err), want, "{text}");
        }
    }

    #[test]
    fn records_must_be_a_list() {
        let take = |batch: Value| {
            take_records(&serde_json::value::to_raw_value(&batch).unwrap()).map(|r| r.len())
        };
        assert_eq!(
            take(json!({"Records": null})),
            Err(BatchError::NotAList("null"))
        );
        assert_eq!(take(json!({})), Err(BatchError::NotAList("absent")));
        assert_eq!(take(json!([1])), Err(BatchError::NotAList("absent")));
        assert_eq!(
            take(json!({"Records": {}})),
            Err(BatchError::NotAList("an object"))
        );
        assert_eq!(take(json!({"Records": []})), Ok(0));
        assert_eq!(take(json!({"Records": [1, {}]})), Ok(2));
    }

    #[test]
    fn a_record_with_a_repeated_key_fails_in_its_place_with_what_can_be_read() {
        let raw = RawValue::from_string(
            r#"{"eventID":"1","cdc":{"columnnames":["value"],"columnvalues":["ts=1"]},"cdc":5}"#
                .into(),
        )
        .unwrap();
        let mut budget = budget(1 << 20);
        let response = super::transform(&[&raw], &enrichment(), &mut budget).unwrap();
        let result = &response.records[0];
        assert_eq!(result.result, ResultKind::ProcessingFailed);
        assert_eq!(result.envelope.event_id, "1");
    }

    #[test]
    fn a_change_item_sent_back_keeps_its_numbers_exactly() {
        let text = r#"{"eventID":"1","cdc":{"commitTime":1.5,"n":123456789012345678901234567890}}"#;
        let raw = RawValue::from_string(text.into()).unwrap();
        let mut budget = budget(1 << 20);
        let response = super::transform(&[&raw], &enrichment(), &mut budget).unwrap();
        let answer = serde_json::to_string(&response).unwrap();
        assert!(
            answer.contains(r#""n":123456789012345678901234567890"#),
            "{answer}"
        );
    }
}
