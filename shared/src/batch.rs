//! Partial batch responses.
//!
//! * DynamoDB Streams and Kinesis checkpoint at the lowest sequence number
//!   reported and redeliver everything from there, so a handler reports only
//!   the first record it did not durably handle.
//! * Kafka event source mappings retry exactly the records listed, each as
//!   `{partition: "<topic>-<partition>", offset}`, and commit the rest, so a
//!   handler lists every record it did not handle. They act on the list only
//!   with `ReportBatchItemFailures` (provisioned poller mode); otherwise any
//!   successful answer commits the whole batch.
//!
//! In both cases an empty list means the whole batch succeeded.

use std::collections::BTreeSet;

use aws_lambda_events::streams::{
    DynamoDbBatchItemFailure, DynamoDbEventResponse, KinesisEventResponse,
};
use serde::{Deserialize, Serialize};

/// The DynamoDB Streams response: empty, or the first failed sequence number.
pub fn dynamodb_response(first_failed: Option<&str>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence_number) = first_failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number.to_owned());
        response.batch_item_failures.push(failure);
    }
    response
}

/// The Kinesis response: empty, or the first failed sequence number.
pub fn kinesis_response(first_failed: Option<&str>) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(sequence_number) = first_failed {
        response.add_failure(sequence_number);
    }
    response
}

/// The Kafka event source mapping's partial batch response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaEventResponse {
    /// One entry per record that was not handled.
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<KafkaBatchItemFailure>,
}

/// One failed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaBatchItemFailure {
    /// Where the mapping should resume.
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: KafkaItemIdentifier,
}

/// A topic-partition and offset, e.g. `{"partition": "orders-3", "offset": 42}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaItemIdentifier {
    /// `<topic>-<partition>`, the same form as the keys of the event's `records`.
    pub partition: String,
    /// The offset of a record that was not handled.
    pub offset: i64,
}

/// Collects the Kafka records that were not handled, every one of them.
///
/// Unlike a stream mapping, which restarts a shard at the lowest reported
/// sequence number, the Kafka mapping retries the records it is given
/// ("Lambda can retry only the failed records"), so a record left off the
/// list counts as handled and is committed.
#[derive(Debug, Clone, Default)]
pub struct KafkaFailures {
    records: BTreeSet<(String, i64, i64)>,
}

impl KafkaFailures {
    /// Records that `offset` in `topic`/`partition` was not handled.
    pub fn add(&mut self, topic: &str, partition: i64, offset: i64) {
        self.records.insert((topic.to_owned(), partition, offset));
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// How many records failed.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The first failed record (by topic, partition and offset).
    pub fn first(&self) -> Option<(&str, i64, i64)> {
        self.records
            .iter()
            .next()
            .map(|(topic, partition, offset)| (topic.as_str(), *partition, *offset))
    }

    /// The response to return.
    pub fn into_response(self) -> KafkaEventResponse {
        KafkaEventResponse {
            batch_item_failures: self
                .records
                .into_iter()
                .map(|(topic, partition, offset)| KafkaBatchItemFailure {
                    item_identifier: KafkaItemIdentifier {
                        partition: format!("{topic}-{partition}"),
                        offset,
                    },
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_responses_match_the_documented_json() {
        assert_eq!(
            serde_json::to_value(dynamodb_response(Some("111"))).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "111"}]})
        );
        assert_eq!(
            serde_json::to_value(kinesis_response(Some("4959"))).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "4959"}]})
        );
    }

    #[test]
    fn success_is_an_empty_list() {
        assert_eq!(
            serde_json::to_value(dynamodb_response(None)).unwrap(),
            json!({"batchItemFailures": []})
        );
        assert_eq!(
            serde_json::to_value(kinesis_response(None)).unwrap(),
            json!({"batchItemFailures": []})
        );
        assert_eq!(
            serde_json::to_value(KafkaFailures::default().into_response()).unwrap(),
            json!({"batchItemFailures": []})
        );
    }

    #[test]
    fn kafka_failures_list_every_record_once_in_order() {
        let mut failures = KafkaFailures::default();
        failures.add("clicks", 0, 17);
        failures.add("clicks", 0, 12);
        failures.add("clicks", 0, 17);
        failures.add("clicks", 1, 40);
        failures.add("clicks-v2", 0, 3);
        assert_eq!(failures.len(), 4);
        assert_eq!(failures.first(), Some(("clicks", 0, 12)));
        assert_eq!(
            serde_json::to_value(failures.into_response()).unwrap(),
            json!({"batchItemFailures": [
                {"itemIdentifier": {"partition": "clicks-0", "offset": 12}},
                {"itemIdentifier": {"partition": "clicks-0", "offset": 17}},
                {"itemIdentifier": {"partition": "clicks-1", "offset": 40}},
                {"itemIdentifier": {"partition": "clicks-v2-0", "offset": 3}},
            ]})
        );
    }

    #[test]
    fn kafka_response_round_trips() {
        let text = r#"{"batchItemFailures":[{"itemIdentifier":{"partition":"t-2","offset":9}}]}"#;
        let parsed: KafkaEventResponse = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
    }
}
