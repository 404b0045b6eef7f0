//! Partial batch responses.
//!
//! * DynamoDB Streams and Kinesis checkpoint at the lowest sequence number
//!   reported and redeliver everything from there, so a handler reports only
//!   the first record it did not durably handle.
//! * Kafka event source mappings take one `{partition, offset}` per
//!   topic-partition and redeliver from that offset.
//!
//! In both cases an empty list means the whole batch succeeded.

use std::collections::BTreeMap;

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
    /// One entry per topic-partition that has a failure.
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
    /// The first offset that was not handled.
    pub offset: i64,
}

/// Collects failed Kafka records and keeps the lowest offset per
/// topic-partition, which is all the mapping needs.
#[derive(Debug, Clone, Default)]
pub struct KafkaFailures {
    first_offsets: BTreeMap<(String, i64), i64>,
}

impl KafkaFailures {
    /// Records that `offset` in `topic`/`partition` was not handled.
    pub fn add(&mut self, topic: &str, partition: i64, offset: i64) {
        self.first_offsets
            .entry((topic.to_owned(), partition))
            .and_modify(|o| *o = (*o).min(offset))
            .or_insert(offset);
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.first_offsets.is_empty()
    }

    /// The response to return.
    pub fn into_response(self) -> KafkaEventResponse {
        KafkaEventResponse {
            batch_item_failures: self
                .first_offsets
                .into_iter()
                .map(|((topic, partition), offset)| KafkaBatchItemFailure {
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
    fn kafka_failures_keep_the_lowest_offset_per_partition() {
        let mut failures = KafkaFailures::default();
        failures.add("clicks", 0, 17);
        failures.add("clicks", 0, 12);
        failures.add("clicks", 1, 40);
        failures.add("clicks-v2", 0, 3);
        assert_eq!(
            serde_json::to_value(failures.into_response()).unwrap(),
            json!({"batchItemFailures": [
                {"itemIdentifier": {"partition": "clicks-0", "offset": 12}},
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
