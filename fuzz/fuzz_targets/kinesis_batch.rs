//! The Kinesis batch path of `kinesis-event-logger`: the lenient per-record
//! parse, base64, KPL de-aggregation, data classification and truncation,
//! and the JSON log line formatter that nests JSON data in the line.
//!
//! The input is the Lambda event as JSON, read into `KinesisBatch` as the
//! runtime reads it (a `Value` of it is the oracle). `log_batch` runs under the
//! function's own `JsonLines` formatter writing to memory, once with the
//! default data cap and once with a tiny one (to exercise truncation).
//! Invariants:
//! * `NotABatch` exactly when `Records` is not a list;
//! * every log line is one valid JSON object;
//! * the outcome's counts match the lines written: one data line per
//!   `lines`, one error line per `failed`, and a reported sequence number
//!   exactly when a record failed;
//! * each data line's `data` agrees with its `encoding` (`json`: any JSON
//!   value; `text`: a string of `size_bytes` bytes unless truncated;
//!   `base64`: base64 of `size_bytes` bytes unless truncated), and a
//!   truncated line logs no more than the cap.

#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use kinesis_event_logger::config::Config;
use kinesis_event_logger::handler::{log_batch, BatchError, KinesisBatch};
use lambda_runtime::tracing::subscriber::{self, fmt::format::JsonFields};
use lambda_stream_kit::telemetry::JsonLines;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use stream_fuzz::{is_json, LogBuffer};

const SMALL_CAP: usize = 16;

fn install_subscriber() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines { target: false })
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(LogBuffer::global().clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    });
}

/// The fields of a log line this target checks.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    encoding: Option<String>,
    data: Option<&'a RawValue>,
    size_bytes: Option<u64>,
    truncated: Option<bool>,
    logged_bytes: Option<u64>,
}

fuzz_target!(|data: &[u8]| {
    // Only inputs that read both ways are checked: `Records` given twice
    // reads as a `Value` (the last wins) but not as the batch type (the
    // runtime rejects that event), and a lone surrogate escape inside a
    // record is skipped by the batch type but refused by `Value`.
    let (Ok(event), Ok(batch)) = (
        serde_json::from_slice::<Value>(data),
        serde_json::from_slice::<KinesisBatch>(data),
    ) else {
        return;
    };
    install_subscriber();
    for cap in [Config::DEFAULT_LOG_DATA_MAX_BYTES, SMALL_CAP] {
        check(&event, &batch, cap);
    }
});

fn check(event: &Value, batch: &KinesisBatch, cap: usize) {
    let config = Config {
        log_data_max_bytes: cap,
        ..Config::default()
    };
    LogBuffer::global().take();
    let result = log_batch(batch, &config);
    let logs = LogBuffer::global().take();

    let mut data_lines = 0usize;
    let mut error_lines = 0usize;
    for line in logs.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!(
            is_json(line),
            "not a JSON line: {}",
            String::from_utf8_lossy(line)
        );
        let parsed: Line<'_> = serde_json::from_slice(line).expect("a JSON object line");
        let message: Option<String> = parsed
            .message
            .and_then(|m| serde_json::from_str(m.get()).ok());
        match message.as_deref() {
            Some("kinesis record" | "KPL aggregate is corrupt; logged raw") => {
                data_lines += 1;
                check_data_line(&parsed, cap);
            }
            Some("kinesis record cannot be parsed") => error_lines += 1,
            _ => {}
        }
    }

    let is_batch = event.get("Records").is_some_and(Value::is_array);
    match result {
        Ok(outcome) => {
            assert!(is_batch);
            let records = event["Records"].as_array().map_or(0, Vec::len);
            assert_eq!(outcome.records, records);
            assert_eq!(outcome.lines, data_lines, "lines counted vs written");
            assert!(outcome.lines <= config.max_lines_per_invocation, "the line cap holds");
            assert_eq!(outcome.failed, error_lines, "failures counted vs logged");
            assert_eq!(outcome.first_failed.is_some(), outcome.failed > 0);
            assert!(outcome.failed <= outcome.records);
        }
        Err(BatchError::NotABatch) => assert!(!is_batch, "a Records list was refused"),
        Err(BatchError::Unidentifiable { .. }) => {
            assert!(is_batch);
            assert!(error_lines >= 1, "an unidentifiable record was not logged");
        }
        Err(other) => panic!("undocumented error {other}"),
    }
}

fn check_data_line(line: &Line<'_>, cap: usize) {
    let size = line.size_bytes.expect("size_bytes on every data line") as usize;
    let truncated = line.truncated == Some(true);
    if truncated {
        let logged = line.logged_bytes.expect("logged_bytes on a truncated line") as usize;
        assert!(
            logged <= cap && logged < size,
            "logged {logged} of {size} with cap {cap}"
        );
    } else {
        assert!(line.logged_bytes.is_none());
        assert!(size <= cap, "{size} bytes logged whole with cap {cap}");
    }
    let data = line.data.map(|d| d.get());
    match line.encoding.as_deref() {
        Some("json") => {
            assert!(!truncated, "cut JSON is logged as JSON");
            assert!(data.is_some_and(|d| is_json(d.as_bytes())));
        }
        Some("text") => {
            // With a cap of 0 nothing is logged, so `data` may be absent.
            let text: String = match data {
                Some(d) => serde_json::from_str(d).expect("text data is a string"),
                None => String::new(),
            };
            if !truncated {
                assert_eq!(text.len(), size, "text data length");
            }
        }
        Some("base64") => {
            let text: String = serde_json::from_str(data.expect("base64 data")).expect("a string");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64 data decodes");
            if !truncated {
                assert_eq!(bytes.len(), size, "base64 data length");
            }
        }
        other => panic!("unknown encoding {other:?}"),
    }
}
