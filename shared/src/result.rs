//! The transformation result model: `Ok`, `Dropped`, `ProcessingFailed` and
//! `Split`, with its two wire forms.
//!
//! * DoubleCloud/Transferia lambda transformations answer one
//!   [`DoubleCloudRecordResult`] per input record, matched by position.
//! * Amazon Data Firehose transformations answer one
//!   [`KinesisFirehoseResponseRecord`] per `recordId`.

use std::collections::HashMap;

use aws_lambda_events::firehose::{
    KinesisFirehoseResponseRecord, KinesisFirehoseResponseRecordMetadata,
};
use serde::{Deserialize, Serialize};

/// What became of one input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// Transformed into exactly one output.
    Ok(T),
    /// Transformed into any number of outputs (possibly none).
    Split(Vec<T>),
    /// Deliberately discarded.
    Dropped,
    /// Could not be processed; `reason` is for the log, never for the wire.
    ProcessingFailed {
        /// Why, in words an operator can act on.
        reason: String,
    },
}

impl<T> Outcome<T> {
    /// Shorthand for a failure with a reason.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::ProcessingFailed {
            reason: reason.into(),
        }
    }

    /// The wire name of this outcome.
    pub fn kind(&self) -> ResultKind {
        match self {
            Self::Ok(_) => ResultKind::Ok,
            Self::Split(_) => ResultKind::Split,
            Self::Dropped => ResultKind::Dropped,
            Self::ProcessingFailed { .. } => ResultKind::ProcessingFailed,
        }
    }
}

/// The `result` field of a transformation response, spelled exactly as both
/// DoubleCloud and Firehose expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultKind {
    /// `"Ok"`.
    Ok,
    /// `"Dropped"`.
    Dropped,
    /// `"ProcessingFailed"`.
    ProcessingFailed,
    /// `"Split"` (DoubleCloud only).
    Split,
}

impl ResultKind {
    /// The exact wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "Ok",
            Self::Dropped => "Dropped",
            Self::ProcessingFailed => "ProcessingFailed",
            Self::Split => "Split",
        }
    }
}

/// The fields a DoubleCloud result copies from its input record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoubleCloudEnvelope {
    /// `eventID`, e.g. `"5.0"`.
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    /// `invokeIdentityArn`.
    #[serde(rename = "invokeIdentityArn", default)]
    pub invoke_identity_arn: String,
    /// `eventVersion`.
    #[serde(rename = "eventVersion", default)]
    pub event_version: String,
    /// `eventName`, e.g. `"dt:cdc:change_item"`.
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    /// `eventSourceARN`.
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: String,
}

/// One result in a DoubleCloud transformation response. `C` is the change
/// item type. `cdc` is present for `Ok` and `ProcessingFailed` (the original
/// item), `cdc_split` for `Split`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoubleCloudRecordResult<C> {
    /// Copied from the input record.
    #[serde(flatten)]
    pub envelope: DoubleCloudEnvelope,
    /// The single output item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cdc: Option<C>,
    /// The split output items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cdc_split: Option<Vec<C>>,
    /// The outcome's wire name.
    pub result: ResultKind,
}

impl<C> DoubleCloudRecordResult<C> {
    /// Builds the result for `outcome`; `original` is sent back with
    /// `ProcessingFailed`, as the engine expects.
    pub fn new(envelope: DoubleCloudEnvelope, outcome: Outcome<C>, original: Option<C>) -> Self {
        let result = outcome.kind();
        let (cdc, cdc_split) = match outcome {
            Outcome::Ok(item) => (Some(item), None),
            Outcome::Split(items) => (None, Some(items)),
            Outcome::Dropped => (None, None),
            Outcome::ProcessingFailed { .. } => (original, None),
        };
        Self {
            envelope,
            cdc,
            cdc_split,
            result,
        }
    }
}

/// Builds a Firehose response record. `Split` outputs are joined with `\n`
/// into one `Ok` record, since Firehose has no split result. A failed record
/// carries its original data back, so Firehose can deliver it to the error
/// output unchanged.
pub fn firehose_record(
    record_id: String,
    outcome: Outcome<Vec<u8>>,
    original: Vec<u8>,
    partition_keys: HashMap<String, String>,
) -> KinesisFirehoseResponseRecord {
    let (kind, data) = match outcome {
        Outcome::Ok(data) => (ResultKind::Ok, data),
        Outcome::Split(parts) => (ResultKind::Ok, parts.join(&b'\n')),
        Outcome::Dropped => (ResultKind::Dropped, Vec::new()),
        Outcome::ProcessingFailed { .. } => (ResultKind::ProcessingFailed, original),
    };
    let mut metadata = KinesisFirehoseResponseRecordMetadata::default();
    metadata.partition_keys = partition_keys;
    let mut record = KinesisFirehoseResponseRecord::default();
    record.record_id = Some(record_id);
    record.result = Some(kind.as_str().to_owned());
    *record.data = data;
    record.metadata = metadata;
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> DoubleCloudEnvelope {
        DoubleCloudEnvelope {
            event_id: "5.0".into(),
            invoke_identity_arn: "tm".into(),
            event_version: "1.0".into(),
            event_name: "dt:cdc:change_item".into(),
            event_source_arn: String::new(),
        }
    }

    #[test]
    fn result_kinds_use_the_exact_wire_spelling() {
        for (kind, text) in [
            (ResultKind::Ok, "Ok"),
            (ResultKind::Dropped, "Dropped"),
            (ResultKind::ProcessingFailed, "ProcessingFailed"),
            (ResultKind::Split, "Split"),
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(text));
            assert_eq!(kind.as_str(), text);
        }
    }

    #[test]
    fn split_results_carry_cdc_split_and_no_cdc() {
        let r =
            DoubleCloudRecordResult::new(envelope(), Outcome::Split(vec![json!({"a": 1})]), None);
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            json!({"eventID":"5.0","invokeIdentityArn":"tm","eventVersion":"1.0",
                   "eventName":"dt:cdc:change_item","eventSourceARN":"",
                   "cdc_split":[{"a":1}],"result":"Split"})
        );
    }

    #[test]
    fn an_empty_split_is_still_a_split() {
        let r = DoubleCloudRecordResult::<serde_json::Value>::new(
            envelope(),
            Outcome::Split(vec![]),
            None,
        );
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["cdc_split"], json!([]));
        assert_eq!(v["result"], json!("Split"));
    }

    #[test]
    fn failures_send_back_the_original_item() {
        let original = json!({"id": 7});
        let r = DoubleCloudRecordResult::new(
            envelope(),
            Outcome::failed("bad data"),
            Some(original.clone()),
        );
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["cdc"], original);
        assert_eq!(v["result"], json!("ProcessingFailed"));
        assert!(v.get("cdc_split").is_none());
        assert!(
            !v.to_string().contains("bad data"),
            "the reason stays in the log"
        );
    }

    #[test]
    fn ok_and_dropped_have_their_own_shapes() {
        let ok = serde_json::to_value(DoubleCloudRecordResult::new(
            envelope(),
            Outcome::Ok(json!(1)),
            None,
        ))
        .unwrap();
        assert_eq!(
            (ok["cdc"].clone(), ok["result"].clone()),
            (json!(1), json!("Ok"))
        );
        let dropped = serde_json::to_value(DoubleCloudRecordResult::<serde_json::Value>::new(
            envelope(),
            Outcome::Dropped,
            Some(json!(1)),
        ))
        .unwrap();
        assert!(dropped.get("cdc").is_none());
        assert_eq!(dropped["result"], json!("Dropped"));
    }

    #[test]
    fn firehose_records_follow_the_documented_json() {
        let ok = firehose_record(
            "r1".into(),
            Outcome::Split(vec![b"a".to_vec(), b"b".to_vec()]),
            b"x".to_vec(),
            HashMap::new(),
        );
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v["recordId"], json!("r1"));
        assert_eq!(v["result"], json!("Ok"));
        assert_eq!(v["data"], json!("YQpi")); // base64 of "a\nb"

        let failed = firehose_record(
            "r2".into(),
            Outcome::failed("nope"),
            b"raw".to_vec(),
            HashMap::new(),
        );
        let v = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            (v["result"].clone(), v["data"].clone()),
            (json!("ProcessingFailed"), json!("cmF3"))
        );

        let dropped = firehose_record(
            "r3".into(),
            Outcome::Dropped,
            b"raw".to_vec(),
            HashMap::new(),
        );
        assert_eq!(
            serde_json::to_value(&dropped).unwrap()["result"],
            json!("Dropped")
        );
    }
}
