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
    traceparent: None,
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
        traceparent: None,
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

#[tokio::test]
async fn the_invocation_metrics_count_where_every_record_went() {
    let sink = MemorySink::new();
    sink.fail_topic("dlq", ProduceError::Timeout { step: "produce" });
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let batch = groups(&[&["a", "b"], &["poison", "c"], &["skip"]]);
    let answer = KafkaMapping {
        partial_batch_responses: true,
    };
    let (answered, metrics) = crate::telemetry::metrics::collect(process_partial_response(
        &sink,
        &handler,
        TOPICS,
        &batch,
        soon(),
        &answer,
    ))
    .await;
    let answered = answered.unwrap();
    let total = |name| metrics.total(name).unwrap_or(-1.0);
    use crate::telemetry::metrics::names::*;
    assert_eq!(total(RECORDS_RECEIVED), 5.0);
    assert_eq!(total(BATCH_SIZE), 5.0);
    assert_eq!(total(RECORDS_PUBLISHED), 3.0);
    // The poison line's dead letter failed, so the line failed; it is the
    // one record the answer names.
    assert_eq!(total(RECORDS_DEAD_LETTERED), 0.0);
    assert_eq!(total(RECORDS_FAILED), 1.0);
    assert_eq!(total(RECORDS_HELD_BACK), 0.0);
    assert_eq!(total(RECORDS_SKIPPED), 1.0);
    assert_eq!(total(RECORDS_REPORTED), 1.0);
    assert_eq!(answered.batch_item_failures.len(), 1);
    let published: usize = sink.records("out").iter().map(OutgoingRecord::size).sum();
    assert_eq!(total(BYTES_PUBLISHED), published as f64);
    // One produce call per topic that had records.
    assert_eq!(metrics.values(PRODUCE_LATENCY).len(), 2);
}

#[tokio::test]
async fn a_failed_invocation_reports_the_whole_batch() {
    let sink = MemorySink::new();
    let handler = Lines {
        policy: Policy::Fail,
    };
    let batch = groups(&[&["a", "poison", "b"]]);
    let answer = KafkaMapping {
        partial_batch_responses: false,
    };
    let (answered, metrics) = crate::telemetry::metrics::collect(process_partial_response(
        &sink,
        &handler,
        TOPICS,
        &batch,
        soon(),
        &answer,
    ))
    .await;
    assert!(answered.is_err());
    let reported = crate::telemetry::metrics::names::RECORDS_REPORTED;
    assert_eq!(metrics.total(reported), Some(3.0));
}

/// The README's Logs Insights query ("Operating it"), with `REQUEST_ID`
/// standing for the request.
fn readme_query() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("<!-- logs-insights: errors by reason -->")
        .expect("the README marks its query");
    let block = &readme[start..];
    let open = block.find("```\n").expect("the query is a code block") + 4;
    let close = block[open..].find("```").expect("the code block ends") + open;
    block[open..close].to_owned()
}

/// Runs the README's query on captured lines, as Logs Insights would for
/// its three commands: `fields` (ignored: it only picks columns), `filter`
/// with `=` and `in [...]` joined by `and`, and `stats count(*) by`.
fn run_query(
    query: &str,
    request_id: &str,
    lines: &[serde_json::Value],
) -> Vec<(Vec<String>, usize)> {
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    let mut by: Vec<String> = Vec::new();
    for command in query.split('|').map(str::trim) {
        if let Some(conditions) = command.strip_prefix("filter ") {
            for condition in conditions.split(" and ") {
                let condition = condition.replace("REQUEST_ID", request_id);
                let (field, values) = match condition.split_once(" in ") {
                    Some((field, list)) => (field, list.trim_matches(['[', ']', ' ']).to_owned()),
                    None => condition
                        .split_once(" = ")
                        .map(|(f, v)| (f, v.to_owned()))
                        .unwrap(),
                };
                let values = values
                    .split(',')
                    .map(|v| v.trim().trim_matches('"').to_owned())
                    .collect();
                filters.push((field.trim().to_owned(), values));
            }
        } else if let Some(stats) = command.strip_prefix("stats ") {
            let (_, fields) = stats.split_once(" by ").expect("stats ... by");
            by = fields.split(',').map(|f| f.trim().to_owned()).collect();
        }
    }
    assert!(
        !filters.is_empty() && !by.is_empty(),
        "the query filters and groups: {query}"
    );
    let mut groups: Vec<(Vec<String>, usize)> = Vec::new();
    for line in lines {
        let text = |field: &str| {
            line.get(field)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        if !filters
            .iter()
            .all(|(field, values)| values.contains(&text(field)))
        {
            continue;
        }
        let key: Vec<String> = by.iter().map(|f| text(f)).collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => groups.push((key, 1)),
        }
    }
    groups
}

#[tokio::test]
async fn the_readme_query_finds_one_requests_errors_by_reason() {
    let telemetry = crate::telemetry::Telemetry::from_env(&crate::config::Env::from_pairs(&[(
        "AWS_LAMBDA_FUNCTION_NAME",
        "tagger",
    )]))
    .unwrap();
    let sink = MemorySink::new();
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let mut context = lambda_runtime::Context::default();
    let mut other = lambda_runtime::Context::default();
    context.request_id = "req-with-poison".into();
    other.request_id = "req-other".into();
    let ((), logs) = crate::telemetry::capture(async {
        for (context, texts) in [(&context, ["a", "poison"]), (&other, ["poison", "b"])] {
            let batch = groups(&[&texts]);
            telemetry
                .observe(context, process(&sink, &handler, TOPICS, &batch, soon()))
                .await;
        }
    })
    .await;
    let lines = logs.lines();
    let groups = run_query(&readme_query(), "req-with-poison", &lines);
    assert_eq!(
        groups,
        [
            (
                vec!["record set aside".to_owned(), "a poison line".to_owned()],
                1
            ),
            (
                vec![
                    "record dead-lettered".to_owned(),
                    "a poison line".to_owned()
                ],
                1
            ),
        ],
        "{lines:#?}"
    );
    // Every line of an invocation carries its fields.
    for line in &lines {
        assert_eq!(line["function_name"], "tagger", "{line}");
        assert_eq!(line["service"], "tagger", "{line}");
        assert!(line["cold_start"].is_boolean(), "{line}");
        assert!(line["function_request_id"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn every_record_sent_carries_the_invocations_trace_unless_it_has_one() {
    let ours = crate::telemetry::trace::traceparent(
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    .unwrap();
    let sink = MemorySink::new();
    let handler = Lines {
        policy: Policy::DeadLetter,
    };
    let topics = Topics {
        traceparent: Some(&ours),
        ..TOPICS
    };
    let batch = groups(&[&["a", "poison"]]);
    process(&sink, &handler, topics, &batch, soon()).await;
    let header = |record: &OutgoingRecord| record.headers.get("traceparent").cloned();
    let expected = Some(b"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01".to_vec());
    assert_eq!(header(&sink.records("out")[0]), expected);
    assert_eq!(header(&sink.records("dlq")[0]), expected);

    // Without a trace, nothing is added.
    let sink = MemorySink::new();
    process(&sink, &handler, TOPICS, &batch, soon()).await;
    assert_eq!(header(&sink.records("out")[0]), None);
}
