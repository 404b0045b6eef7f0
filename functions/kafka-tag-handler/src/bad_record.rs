//! Why a record could not be tagged, and the dead letter it becomes.
//!
//! The kind is a stable, machine-readable word: it goes into the
//! `error-kind` header of dead letters, the `kind` field of connector error
//! entries and the log lines, so alerts and replays can key on it.
//!
//! The message is copied into every log line, `error-message` header and
//! connector answer about the record, which are kept and read more widely
//! than the data. So it never quotes the input (parse errors give their
//! kind and position, see [`lambda_stream_kit::redact`], other reasons name
//! a field or a length), and [`BadRecord::new`] caps it at
//! [`MAX_MESSAGE_BYTES`] whatever its origin.
//!
//! [`dead_letter`] builds the record for `ERROR_TOPIC` in both trigger
//! modes, so the batch and the connector write the same headers; one too
//! large to send becomes a stub (see
//! [`lambda_stream_kit::pipeline::dead_letter`]).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use lambda_stream_kit::kafka::OutgoingRecord;
use lambda_stream_kit::pipeline::{Rejection, Sink};
use lambda_stream_kit::redact;

/// Header naming the topic a record was read from.
pub const SOURCE_TOPIC_HEADER: &str = "source-topic";
/// Header naming the partition a record was read from (decimal text).
pub const SOURCE_PARTITION_HEADER: &str = "source-partition";
/// Header naming the offset a record was read from (decimal text).
pub const SOURCE_OFFSET_HEADER: &str = "source-offset";
/// Dead-letter header with the [`ErrorKind`] (`not-json`, …).
pub const ERROR_KIND_HEADER: &str = "error-kind";
/// Dead-letter header with the human-readable reason.
pub const ERROR_MESSAGE_HEADER: &str = "error-message";

/// The longest message a [`BadRecord`] keeps, in bytes.
pub const MAX_MESSAGE_BYTES: usize = redact::MAX_REASON_BYTES;

/// The headers a dead letter keeps even as a stub: where the record came
/// from and why it failed.
const ESSENTIAL_HEADERS: [&str; 5] = [
    SOURCE_TOPIC_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_OFFSET_HEADER,
    ERROR_KIND_HEADER,
    ERROR_MESSAGE_HEADER,
];

/// The class of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The record's key or value is not valid base64.
    InvalidBase64,
    /// The value is absent or is not JSON.
    NotJson,
    /// The value is JSON but not a page visit (not an object, or no URL).
    NotAPageVisit,
    /// The record itself lacks fields (topic, partition, headers shape).
    MalformedRecord,
    /// The tagged record is larger than the producer may send.
    TooLarge,
    /// The broker refused the tagged record itself (for example
    /// `MESSAGE_TOO_LARGE` or `INVALID_RECORD`), so no retry can help.
    RejectedByBroker,
}

impl ErrorKind {
    /// The kebab-case name used in headers, results and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidBase64 => "invalid-base64",
            Self::NotJson => "not-json",
            Self::NotAPageVisit => "not-a-page-visit",
            Self::MalformedRecord => "malformed-record",
            Self::TooLarge => "too-large",
            Self::RejectedByBroker => "rejected-by-broker",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that could not be tagged, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct BadRecord {
    /// The class of problem.
    pub kind: ErrorKind,
    /// A human-readable reason.
    pub message: String,
}

impl From<BadRecord> for Rejection {
    fn from(bad: BadRecord) -> Self {
        Rejection::new(bad.kind.as_str(), bad.message)
    }
}

impl BadRecord {
    /// A bad record of `kind`; `message` is cut to [`MAX_MESSAGE_BYTES`].
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: redact::cap(message.into(), MAX_MESSAGE_BYTES),
        }
    }
}

/// Where a record came from, as far as it says: a batch record always
/// knows all three, a connector record may not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coordinates<'a> {
    /// The source topic.
    pub topic: Option<&'a str>,
    /// The source partition.
    pub partition: Option<i64>,
    /// The source offset.
    pub offset: Option<i64>,
}

/// Sets the `source-*` headers that are known (they replace headers of the
/// same name the record brought).
pub fn add_source_headers(headers: &mut BTreeMap<String, Vec<u8>>, at: Coordinates<'_>) {
    if let Some(topic) = at.topic {
        headers.insert(SOURCE_TOPIC_HEADER.into(), topic.as_bytes().to_vec());
    }
    if let Some(partition) = at.partition {
        headers.insert(
            SOURCE_PARTITION_HEADER.into(),
            partition.to_string().into_bytes(),
        );
    }
    if let Some(offset) = at.offset {
        headers.insert(SOURCE_OFFSET_HEADER.into(), offset.to_string().into_bytes());
    }
}

/// The parts of a bad record the caller could read, as they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRecord {
    /// The key as it came (decoded when it was base64).
    pub key: Option<Vec<u8>>,
    /// The value as it came.
    pub value: Option<Vec<u8>>,
    /// The record's own headers, when readable.
    pub headers: BTreeMap<String, Vec<u8>>,
    /// The record's timestamp.
    pub timestamp: Option<DateTime<Utc>>,
}

/// The dead letter for `raw`: its key, value, timestamp and headers, plus
/// the known `source-*` headers, `error-kind` and `error-message`. When that
/// is too large to send it is a stub with no value (and, if need be, no key
/// and only those headers), `dlq-original-bytes` and `dlq-left-out`.
pub fn dead_letter(
    raw: RawRecord,
    at: Coordinates<'_>,
    why: &Rejection,
    sink: &(impl Sink + ?Sized),
) -> OutgoingRecord {
    let RawRecord {
        key,
        value,
        mut headers,
        timestamp,
    } = raw;
    add_source_headers(&mut headers, at);
    headers.insert(ERROR_KIND_HEADER.into(), why.kind.as_bytes().to_vec());
    headers.insert(ERROR_MESSAGE_HEADER.into(), why.message.as_bytes().to_vec());
    let letter = OutgoingRecord {
        key,
        value,
        headers,
        timestamp,
    };
    sink.fit_dead_letter(letter, &ESSENTIAL_HEADERS)
}

#[cfg(test)]
mod tests {
    use lambda_stream_kit::pipeline::dead_letter::{LEFT_OUT_HEADER, ORIGINAL_BYTES_HEADER};
    use lambda_stream_kit::pipeline::MemorySink;

    use super::*;

    fn producer() -> MemorySink {
        MemorySink::new()
    }

    const AT: Coordinates<'static> = Coordinates {
        topic: Some("page-visits"),
        partition: Some(2),
        offset: Some(40),
    };

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let bad = BadRecord::new(ErrorKind::NotJson, "ü".repeat(1000));
        assert!(bad.message.len() <= MAX_MESSAGE_BYTES);
        assert!(bad.message.len() > MAX_MESSAGE_BYTES - 8);
        assert!(bad.message.starts_with("üü"));
    }

    #[test]
    fn a_dead_letter_keeps_the_record_and_adds_the_source_and_error_headers() {
        let mut headers = BTreeMap::new();
        headers.insert("trace".to_owned(), b"t-1".to_vec());
        headers.insert(SOURCE_OFFSET_HEADER.to_owned(), b"forged".to_vec());
        let raw = RawRecord {
            key: Some(b"v-1".to_vec()),
            value: Some(b"{oops".to_vec()),
            headers,
            timestamp: DateTime::from_timestamp_millis(1_722_183_591_278),
        };
        let bad = BadRecord::new(ErrorKind::NotJson, "invalid JSON");
        let letter = dead_letter(raw.clone(), AT, &bad.into(), &producer());
        assert_eq!(letter.key, raw.key);
        assert_eq!(letter.value, raw.value);
        assert_eq!(letter.timestamp, raw.timestamp);
        assert_eq!(letter.headers["trace"], b"t-1");
        assert_eq!(letter.headers[SOURCE_TOPIC_HEADER], b"page-visits");
        assert_eq!(letter.headers[SOURCE_PARTITION_HEADER], b"2");
        assert_eq!(letter.headers[SOURCE_OFFSET_HEADER], b"40");
        assert_eq!(letter.headers[ERROR_KIND_HEADER], b"not-json");
        assert_eq!(letter.headers[ERROR_MESSAGE_HEADER], b"invalid JSON");
        assert!(!letter.headers.contains_key(ORIGINAL_BYTES_HEADER));
    }

    #[test]
    fn unknown_coordinates_are_left_out_rather_than_guessed() {
        let at = Coordinates {
            topic: Some("page-visits"),
            ..Coordinates::default()
        };
        let bad = BadRecord::new(ErrorKind::MalformedRecord, "no offset");
        let letter = dead_letter(RawRecord::default(), at, &bad.into(), &producer());
        assert_eq!(letter.headers[SOURCE_TOPIC_HEADER], b"page-visits");
        assert!(!letter.headers.contains_key(SOURCE_PARTITION_HEADER));
        assert!(!letter.headers.contains_key(SOURCE_OFFSET_HEADER));
    }

    #[test]
    fn a_record_too_large_to_dead_letter_becomes_a_stub_with_its_coordinates() {
        let producer = producer();
        let mut headers = BTreeMap::new();
        headers.insert("trace".to_owned(), vec![b't'; 1_200_000]);
        let raw = RawRecord {
            key: Some(vec![b'k'; 600_000]),
            value: Some(vec![b'v'; 1_500_000]),
            headers,
            timestamp: None,
        };
        let bad = BadRecord::new(
            ErrorKind::NotJson,
            "invalid JSON (syntax error at line 1, column 2)",
        );
        let letter = dead_letter(raw, AT, &bad.into(), &producer);
        assert!(producer.fits(&letter));
        assert_eq!((letter.key.as_ref(), letter.value.as_ref()), (None, None));
        assert_eq!(letter.headers[SOURCE_OFFSET_HEADER], b"40");
        assert_eq!(letter.headers[ERROR_KIND_HEADER], b"not-json");
        assert_eq!(letter.headers[LEFT_OUT_HEADER], b"value,key,headers");
        let original: usize = String::from_utf8_lossy(&letter.headers[ORIGINAL_BYTES_HEADER])
            .parse()
            .unwrap();
        assert!(original > 3_300_000, "{original}");
        assert!(!letter.headers.contains_key("trace"));
    }
}
