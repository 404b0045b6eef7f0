use std::time::Duration;

use serde_json::json;

use super::answer::{DynamoDbStream, KafkaMapping};
use super::*;

/// A record of the tests: its offset and text. `"poison"` is set aside
/// (how, the handler's policy says), `"skip"` is not forwarded.
#[derive(Debug, Clone)]
struct Line {
    offset: i64,
    text: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Policy {
    DeadLetter,
    Skip,
    Fail,
}

struct Lines {
    policy: Policy,
}

impl Lines {
    fn rejection(&self, why: Rejection) -> Mapped {
        match self.policy {
            Policy::DeadLetter => Mapped::DeadLetter(why),
            Policy::Skip => Mapped::Skip(Some(why)),
            Policy::Fail => Mapped::Fail(why),
        }
    }
}

impl RecordHandler for Lines {
    type Record = Line;

    fn position(&self, line: &Line) -> Position {
        Position::kafka("in", line.offset / 100, line.offset)
    }

    fn map(&self, line: &Line) -> Mapped {
        match line.text {
            "poison" => self.rejection(Rejection::new("poison", "a poison line")),
            "skip" => Mapped::Skip(None),
            text => Mapped::Publish(OutgoingRecord {
                key: Some(line.offset.to_string().into_bytes()),
                value: Some(text.as_bytes().to_vec()),
                ..OutgoingRecord::default()
            }),
        }
    }

    fn refused(&self, _line: &Line, why: Rejection) -> Mapped {
        self.rejection(why)
    }

    fn dead_letter(&self, line: &Line, why: &Rejection) -> OutgoingRecord {
        let mut letter = OutgoingRecord {
            value: Some(line.text.as_bytes().to_vec()),
            ..OutgoingRecord::default()
        };
        letter
            .headers
            .insert("kind".into(), why.kind.as_bytes().to_vec());
        letter
    }
}

fn groups(texts: &[&[&'static str]]) -> Vec<Vec<Line>> {
    texts
        .iter()
        .enumerate()
        .map(|(g, lines)| {
            lines
                .iter()
                .enumerate()
                .map(|(i, text)| Line {
                    offset: (g * 100 + i) as i64,
                    text,
                })
                .collect()
        })
        .collect()
}

const TOPICS: Topics<'static> = Topics {
    publish: "out",
    dead_letters: Some("dlq"),
};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn values(sink: &MemorySink, topic: &str) -> Vec<String> {
    sink.records(topic)
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap_or_default()).unwrap())
        .collect()
}

fn dispositions(report: &Report) -> Vec<&'static str> {
    report
        .entries
        .iter()
        .map(|e| match e.disposition {
            Disposition::Published(_) => "published",
            Disposition::DeadLettered(_) => "dead-lettered",
            Disposition::Skipped => "skipped",
            Disposition::Failed(_) => "failed",
            Disposition::HeldBack => "held back",
        })
        .collect()
}

#[tokio::test]
async fn every_record_ends_up_published_dead_lettered_or_skipped() {
    let sink = MemorySink::new();
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let batch = groups(&[&["a", "poison", "b"], &["skip", "c"]]);
    let report = process(&sink, &handler, TOPICS, &batch, soon()).await;
    assert_eq!(
        dispositions(&report),
        [
            "published",
            "dead-lettered",
            "published",
            "skipped",
            "published"
        ]
    );
    assert_eq!(values(&sink, "out"), ["a", "b", "c"]);
    assert_eq!(values(&sink, "dlq"), ["poison"]);
    assert_eq!(
        report.counts(),
        Counts {
            records: 5,
            published: 3,
            dead_lettered: 1,
            skipped: 1,
            failed: 0,
            held_back: 0
        }
    );
    let answer = KafkaMapping {
        partial_batch_responses: true,
    }
    .answer(&report)
    .unwrap();
    assert!(answer.batch_item_failures.is_empty());
}

#[tokio::test]
async fn a_failed_record_holds_back_the_rest_of_its_group_only() {
    let sink = MemorySink::new();
    let handler = Lines {
        policy: Policy::Fail,
    };
    let batch = groups(&[&["a", "poison", "b"], &["c"]]);
    let report = process(&sink, &handler, TOPICS, &batch, soon()).await;
    assert_eq!(
        dispositions(&report),
        ["published", "failed", "held back", "published"]
    );
    assert_eq!(values(&sink, "out"), ["a", "c"]);
    let answer = KafkaMapping {
        partial_batch_responses: true,
    }
    .answer(&report)
    .unwrap();
    assert_eq!(
        serde_json::to_value(answer).unwrap(),
        json!({"batchItemFailures": [
            {"itemIdentifier": {"partition": "in-0", "offset": 1}},
            {"itemIdentifier": {"partition": "in-0", "offset": 2}},
        ]})
    );
    let error = KafkaMapping {
        partial_batch_responses: false,
    }
    .answer(&report)
    .unwrap_err();
    assert_eq!(error.error_type(), "Kafka.Unpublished");
    assert!(error.message().contains("2 record(s)"), "{error:?}");
}

#[tokio::test]
async fn skipped_with_a_reason_leaves_a_warn_line_as_its_trace() {
    let sink = MemorySink::new();
    let handler = Lines {
        policy: Policy::Skip,
    };
    let batch = groups(&[&["poison", "a"]]);
    let (report, logs) =
        crate::telemetry::capture(process(&sink, &handler, TOPICS, &batch, soon())).await;
    assert_eq!(dispositions(&report), ["skipped", "published"]);
    let text = logs.text();
    assert!(
        text.contains("record set aside") && text.contains("a poison line"),
        "{text}"
    );
}

#[tokio::test]
async fn too_large_and_refused_records_go_back_to_the_handler() {
    let sink = MemorySink::new().with_max_message_bytes(300);
    sink.refuse_values_containing("out", b"refuse me");
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let big: &'static str = Box::leak("x".repeat(400).into_boxed_str());
    let batch = groups(&[&["a", big, "refuse me", "b"]]);
    let report = process(&sink, &handler, TOPICS, &batch, soon()).await;
    assert_eq!(
        dispositions(&report),
        ["published", "dead-lettered", "dead-lettered", "published"]
    );
    let kinds: Vec<Vec<u8>> = sink
        .records("dlq")
        .into_iter()
        .map(|r| r.headers["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [TOO_LARGE.as_bytes(), REJECTED_BY_BROKER.as_bytes()],
        "the too-large letter is sent with the first round, the refused one after"
    );
    // The too-large dead letter was cut down to fit.
    assert!(sink.records("dlq")[0].value.is_none());
}

#[tokio::test]
async fn a_broker_outage_fails_every_record_and_the_stream_resumes_at_the_first() {
    struct Stream;
    impl RecordHandler for Stream {
        type Record = (&'static str, &'static str);
        fn position(&self, (sequence_number, _): &Self::Record) -> Position {
            Position::stream(Some((*sequence_number).to_owned()), None)
        }
        fn map(&self, (_, text): &Self::Record) -> Mapped {
            match *text {
                "skip" => Mapped::Skip(None),
                text => Mapped::Publish(OutgoingRecord {
                    value: Some(text.as_bytes().to_vec()),
                    ..OutgoingRecord::default()
                }),
            }
        }
        fn dead_letter(&self, _: &Self::Record, _: &Rejection) -> OutgoingRecord {
            OutgoingRecord::default()
        }
    }
    let sink = MemorySink::new();
    sink.fail_topic("out", ProduceError::Timeout { step: "produce" });
    let batch = vec![vec![("10", "skip"), ("20", "a"), ("30", "b")]];
    let (response, logs) = crate::telemetry::capture(process_partial_response(
        &sink,
        &Stream,
        TOPICS,
        &batch,
        soon(),
        &DynamoDbStream,
    ))
    .await;
    let reported: Vec<_> = response
        .unwrap()
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(reported, [Some("20".to_owned())]);
    assert_eq!(
        logs.text().matches("publishing failed").count(),
        1,
        "one line per group, not per record: {}",
        logs.text()
    );
}

#[tokio::test]
async fn a_failed_dead_letter_fails_its_record_and_says_both_reasons() {
    let sink = MemorySink::new();
    sink.fail_topic("dlq", ProduceError::Timeout { step: "produce" });
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let batch = groups(&[&["poison", "a"]]);
    let report = process(&sink, &handler, TOPICS, &batch, soon()).await;
    assert_eq!(dispositions(&report), ["failed", "published"]);
    assert_eq!(
        report.entries[0].disposition.reason(),
        Some(
            "a poison line; dead-lettering failed too: produce did not finish before the deadline"
        )
    );
}

#[tokio::test]
async fn without_a_dead_letter_topic_a_dead_letter_is_a_failure() {
    let sink = MemorySink::new();
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let topics = Topics {
        publish: "out",
        dead_letters: None,
    };
    let batch = groups(&[&["a", "poison", "b"]]);
    let report = process(&sink, &handler, topics, &batch, soon()).await;
    assert_eq!(dispositions(&report), ["published", "failed", "held back"]);
}

#[tokio::test]
async fn a_stream_record_without_a_sequence_number_fails_the_whole_batch() {
    let report = Report {
        entries: vec![Entry {
            position: Position::stream(None, Some("e1".into())),
            disposition: Disposition::Failed("no SequenceNumber".into()),
        }],
    };
    let error = DynamoDbStream.answer(&report).unwrap_err();
    assert_eq!(error.error_type(), "Record.Unidentifiable");
    assert!(error.message().contains("no SequenceNumber"), "{error:?}");
}

#[tokio::test]
async fn a_failure_keeps_its_whole_cause_chain_in_the_reason() {
    let sink = MemorySink::new();
    let cause = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer reset");
    sink.fail_topic(
        "out",
        ProduceError::Broker {
            partition: 0,
            reason: "the request failed".into(),
            source: Some(std::sync::Arc::new(cause)),
        },
    );
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let report = process(&sink, &handler, TOPICS, &groups(&[&["a"]]), soon()).await;
    assert_eq!(
        report.entries[0].disposition.reason(),
        Some("produce to partition 0 failed: the request failed: peer reset")
    );
}
