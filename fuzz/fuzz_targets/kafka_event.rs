//! The Kafka side of `kafka-tag-handler`: the payload as the runtime reads
//! it (`source::Payload`), the event source mapping batch
//! (`source::partitions` and each record's key, value and signed-byte
//! headers), the connector array (`connector::handle`) and the page-visit
//! tagger (`visit::tag_bytes`) with the built-in rules.
//!
//! The whole input is also tagged as if it were a Kafka message value, so
//! the tagger gets raw bytes the fuzzer can reach directly. Invariants:
//! * reading the payload from the bytes gives what reading it from their
//!   parsed `Value` gives;
//! * `partitions` keeps every record, one list per `<topic>-<partition>`
//!   key, each in offset order, and refuses the event only when a record
//!   cannot be placed (not an object, no integer offset, no topic or
//!   partition from the record or its key) or the shape is wrong;
//! * key, value and header decoding never panic;
//! * a tagged value is valid JSON: the original object plus `tags` (sorted,
//!   unique strings) and `tagged_at`, equal to what tagging the parsed value
//!   gives (the fast path that splices bytes agrees with the slow one);
//!   input that is not JSON is never tagged;
//! * the connector answers one entry per item in `log` and `dlq` modes
//!   (`connector::plan`: dlq sets a dead letter that fits aside where log
//!   answers an error entry); in `fail` mode it answers the same entries or
//!   fails at the first bad one.

#![no_main]

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use kafka_tag_handler::bad_record::BadRecord;
use kafka_tag_handler::config::{Config, OnError};
use kafka_tag_handler::connector::ConnectorError;
use kafka_tag_handler::rules::{RulesSource, Tagger};
use kafka_tag_handler::source::Payload;
use kafka_tag_handler::{connector, source, visit, App};
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use stream_fuzz::is_json;

const TAGGED_AT: &str = "2024-07-28T16:19:52.000Z";

fn apps() -> &'static [App; 3] {
    static APPS: OnceLock<[App; 3]> = OnceLock::new();
    APPS.get_or_init(|| {
        let tagger = Tagger::load(&RulesSource::Embedded).expect("the built-in rules compile");
        [OnError::Fail, OnError::Log, OnError::Dlq].map(|on_error| App {
            config: Config {
                response_topic: Some("tagged".into()),
                error_topic: Some("errors".into()),
                on_error,
                rules: RulesSource::Embedded,
                partial_batch_responses: true,
            },
            tagger: tagger.clone(),
            // For building dead letters; `plan` does no I/O with it.
            sink: KafkaProducer::new(KafkaConfig::plaintext(vec!["127.0.0.1:1".into()])),
        })
    })
}

fuzz_target!(|data: &[u8]| {
    check_tagging(data);
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let payload: Payload =
        serde_json::from_slice(data).expect("what parses as a Value parses as a Payload");
    // A batch keeps its records as raw text, which a Value writes back
    // differently (spacing, repeated keys): compare what is read from them.
    match (&payload, &Payload::from_value(&event)) {
        (Payload::Batch(from_bytes), Payload::Batch(from_value)) => assert_eq!(
            readings(from_bytes),
            readings(from_value),
            "the bytes and their Value read alike"
        ),
        (from_bytes, from_value) => assert_eq!(
            from_bytes, from_value,
            "the bytes and their Value read alike"
        ),
    }
    match (&event, &payload) {
        (Value::Array(items), _) => check_connector(items),
        (Value::Object(_), Payload::Batch(batch)) => check_batch(&event, batch),
        (Value::Object(fields), _) => {
            assert!(!fields.contains_key("records"), "a batch was not read as one")
        }
        _ => {}
    }
});

/// Every record of a batch as the handler reads it: its position, time,
/// key, value and headers (or why they cannot be read).
type Reading = (
    String,
    i64,
    i64,
    Option<i64>,
    Result<Option<Vec<u8>>, BadRecord>,
    Result<Option<Vec<u8>>, BadRecord>,
    Result<Vec<(String, Vec<u8>)>, BadRecord>,
);

fn readings(batch: &source::Batch) -> Result<Vec<Vec<Reading>>, String> {
    source::partitions(batch).map(|partitions| {
        partitions
            .iter()
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        (
                            r.topic.to_string(),
                            r.partition,
                            r.offset,
                            r.timestamp_ms,
                            r.key(),
                            r.value(),
                            r.headers(),
                        )
                    })
                    .collect()
            })
            .collect()
    })
}

fn check_batch(event: &Value, batch: &source::Batch) {
    let placeable = placeable(event);
    let partitions = match source::partitions(batch) {
        Ok(partitions) => partitions,
        Err(reason) => {
            assert!(!placeable, "a placeable batch was refused: {reason}");
            return;
        }
    };
    assert!(placeable, "an unplaceable batch was accepted");
    let groups = event["records"].as_object().expect("records is an object");
    assert_eq!(
        partitions.len(),
        groups.len(),
        "one list per topic-partition"
    );
    let total: usize = groups
        .values()
        .filter_map(Value::as_array)
        .map(Vec::len)
        .sum();
    assert_eq!(
        partitions.iter().map(Vec::len).sum::<usize>(),
        total,
        "every record kept"
    );
    for records in &partitions {
        assert!(
            records.windows(2).all(|w| w[0].offset <= w[1].offset),
            "offset order"
        );
        for record in records {
            let _ = record.key();
            let _ = record.headers();
            let _ = record.timestamp();
            let _ = (record.raw_key(), record.raw_value());
            if let Ok(Some(value)) = record.value() {
                check_tagging(&value);
            }
        }
    }
}

/// Whether every record of a batch can be placed, judged from the event.
fn placeable(event: &Value) -> bool {
    let Some(groups) = event.get("records").and_then(Value::as_object) else {
        return false;
    };
    groups.iter().all(|(group, list)| {
        let fallback = group
            .rsplit_once('-')
            .and_then(|(topic, partition)| Some((topic, partition.parse::<i64>().ok()?)));
        let Some(list) = list.as_array() else {
            return false;
        };
        list.iter().all(|record| {
            record.is_object()
                && record.get("offset").and_then(Value::as_i64).is_some()
                && (record.get("topic").and_then(Value::as_str).is_some() || fallback.is_some())
                && (record.get("partition").and_then(Value::as_i64).is_some() || fallback.is_some())
        })
    })
}

fn check_tagging(raw: &[u8]) {
    let tagger = &apps()[0].tagger;
    let fast = visit::tag_bytes(raw, tagger, TAGGED_AT);
    if !is_json(raw) {
        assert!(fast.is_err(), "input that is not JSON was tagged");
        return;
    }
    if let Ok(bytes) = &fast {
        assert!(is_json(bytes), "tagged output is not JSON");
    }
    // The slow path needs a `Value`, which cannot hold numbers beyond f64,
    // and keeps the last of repeated keys where the scan keeps the first.
    let Ok(value) = serde_json::from_slice::<Value>(raw) else {
        return;
    };
    if has_repeated_keys(raw) {
        return;
    }
    let slow = visit::tag_value(value, tagger, TAGGED_AT);
    match (fast, slow) {
        (Ok(bytes), Ok(expected)) => {
            let tagged: Value = serde_json::from_slice(&bytes).expect("tagged output parses");
            assert_eq!(
                tagged, expected,
                "the spliced event differs from the rebuilt one"
            );
            check_tags(&tagged);
        }
        (Err(_), Err(_)) => {}
        (fast, slow) => panic!("fast path {fast:?} but slow path {slow:?}"),
    }
}

fn check_tags(tagged: &Value) {
    assert_eq!(tagged["tagged_at"], TAGGED_AT);
    let tags: Vec<&str> = tagged["tags"]
        .as_array()
        .expect("tags is an array")
        .iter()
        .map(|t| t.as_str().expect("every tag is a string"))
        .collect();
    assert!(
        tags.windows(2).all(|w| w[0] < w[1]),
        "tags sorted and unique: {tags:?}"
    );
}

fn check_connector(items: &[Value]) {
    let [fail, log, dlq] = apps();
    let plan = |app: &App| {
        connector::plan(items.to_vec(), &app.config, &app.tagger, TAGGED_AT, &app.sink)
    };
    let logged = plan(log).expect("log mode answers").entries;
    let dead_lettered = plan(dlq).expect("dlq answers");
    assert_eq!(logged.len(), items.len(), "one entry per item");
    let is_error = |entry: &Value| {
        entry
            .as_object()
            .is_some_and(|o| o.len() == 1 && o.contains_key("error"))
    };
    // dlq answers like log, but sets a dead letter aside (its entry null
    // until published) where log answers an error entry.
    let errors: Vec<usize> = (0..logged.len())
        .filter(|&i| is_error(&logged[i]))
        .collect();
    let letters: Vec<usize> = dead_lettered.dead_letters.iter().map(|d| d.index).collect();
    assert_eq!(letters, errors, "dlq sets aside exactly the bad items");
    for (index, (entry, planned)) in logged.iter().zip(&dead_lettered.entries).enumerate() {
        if errors.contains(&index) {
            assert_eq!(planned, &Value::Null);
        } else {
            assert_eq!(planned, entry, "log and dlq tag alike");
        }
    }
    for letter in &dead_lettered.dead_letters {
        assert!(
            dlq.sink.fits(&letter.record),
            "a dead letter too large to send"
        );
    }
    for entry in logged.iter().filter(|e| !is_error(e)) {
        check_tags(entry);
    }
    match plan(fail).map(|p| p.entries) {
        Ok(entries) => {
            assert_eq!(entries, logged);
            assert!(
                !entries.iter().any(is_error),
                "fail mode answered an error entry"
            );
        }
        Err(ConnectorError::Record { index, .. }) => {
            assert!(is_error(&logged[index]), "fail mode failed on a good item");
            assert!(
                !logged[..index].iter().any(is_error),
                "fail mode skipped a bad item"
            );
        }
        Err(other) => panic!("undocumented error {other}"),
    }
}

/// Whether the top-level object of `raw` repeats a key.
fn has_repeated_keys(raw: &[u8]) -> bool {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut seen = HashSet::new();
            let mut repeated = false;
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                repeated |= !seen.insert(key);
            }
            Ok(repeated)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    serde_json::Deserializer::from_slice(raw)
        .deserialize_any(Keys)
        .unwrap_or(false)
}
