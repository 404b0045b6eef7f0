//! Logs every record of a Kinesis batch as one structured line.
//!
//! # Per record
//!
//! One INFO line, message `kinesis record`, with the fields `partition_key`,
//! `sequence_number`, `shard_id` (the part of `eventID` before the `:`),
//! `approximate_arrival_time` (RFC 3339, UTC, milliseconds), `size_bytes`
//! (always the full size of the data), `encoding` and `data`:
//!
//! | data | `encoding` | `data` is |
//! |---|---|---|
//! | valid JSON | `json` | the JSON value itself, nested in the line |
//! | other UTF-8 | `text` | a string |
//! | anything else | `base64` | the bytes in standard base64 |
//!
//! Data longer than [`Config::log_data_max_bytes`] is cut to that many bytes
//! (at a character boundary for text) and the line gets `truncated: true` and
//! `logged_bytes`. A cut JSON document is no longer JSON, so it is logged as
//! text. Records the KPL aggregated ([`crate::kpl`]) give one line per user
//! record, with `sub_sequence_number` (its index in the aggregate), its own
//! partition key and, when set, `explicit_hash_key`.
//!
//! # Failures
//!
//! * A corrupt KPL aggregate is not a failure: it is logged raw (base64) at
//!   WARN with `kpl_error` saying what is wrong.
//! * A record that cannot be parsed (not an object, no `kinesis` object, no
//!   `kinesis.data` or `kinesis.sequenceNumber` string, data not base64, or,
//!   having all of those, still not valid: a field given twice, a string
//!   that is not Unicode) is logged at ERROR with the reason. The first such record's sequence number
//!   is returned as the batch item failure, so the mapping's retry limit and
//!   on-failure destination take over. When `kinesis.sequenceNumber` is
//!   missing, the one in `eventID` is reported instead.
//! * If that first unparseable record has no sequence number at all, or the
//!   event has no `Records` array, the whole invocation fails: Lambda retries
//!   (or bisects) the batch, which is all that can be done for a record that
//!   cannot be named.
//!
//! Every parseable record is logged, also those after a failed one; as the
//! mapping redelivers from the failed record, those lines repeat on the retry
//! (at least once, like any Kinesis consumer).
//!
//! Each record is read on its own ([`crate::record`]): a typed parse, and
//! for a record that fails it, a second read of only its coordinates
//! (`eventID`, `kinesis.sequenceNumber`), which name it in the answer.
//!
//! # Bounds
//!
//! A 1 MB KPL aggregate of tiny user records holds some 170,000 of them, and
//! a 6 MB batch about a million: one line each would cost more in CloudWatch
//! ingestion than the function does, and could outlast the invocation. So:
//!
//! * an aggregate logs at most [`Config::max_lines_per_aggregate`] user
//!   records, then one `KPL aggregate partly logged` line with the counts;
//! * an invocation logs at most [`Config::max_lines_per_invocation`] record
//!   lines; the records after that are still parsed (so an unparseable one
//!   is still reported) but not logged, and one `log line cap reached` line
//!   at WARN names how many and the first and last sequence numbers;
//! * before each record the invocation deadline (less a margin) is checked.
//!   Once it has passed, that record and every later one are left alone and
//!   the first of them is reported in `batchItemFailures`, so the mapping
//!   redelivers them to a fresh invocation instead of the function timing
//!   out on the whole batch.

use std::borrow::Cow;

use aws_lambda_events::streams::KinesisEventResponse;
use base64::Engine as _;
use lambda_runtime::LambdaEvent;
use lambda_stream_kit::runtime_api::FunctionError;
use lambda_stream_kit::telemetry::metrics::{self, names};
use serde_json::value::RawValue;
use tracing::Level;

use crate::config::Config;
use crate::kpl::{self, KplError};
use crate::record::{self, Failure, Record};
pub use crate::record::{KinesisBatch, RecordError};

/// Time kept back from the invocation deadline to answer.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(1000);

/// Why the whole batch is answered with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The event is not a Kinesis batch at all.
    #[error("the event has no Records array, so it is not a Kinesis batch")]
    NotABatch,
    /// The first unparseable record cannot be reported, having no sequence number.
    #[error("record {index} cannot be parsed ({reason}) and has no sequence number to report; failing the whole batch")]
    Unidentifiable {
        /// Position of the record in the batch.
        index: usize,
        /// Why it could not be parsed.
        reason: RecordError,
    },
}

impl From<BatchError> for FunctionError {
    fn from(error: BatchError) -> Self {
        let error_type = match error {
            BatchError::NotABatch => "Event.NotKinesisBatch",
            BatchError::Unidentifiable { .. } => "Event.UnidentifiableRecord",
        };
        FunctionError::new(error_type, error)
    }
}

/// What one batch came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome<'a> {
    /// Kinesis records in the batch.
    pub records: usize,
    /// Lines logged for data: one per plain record, one per user record of
    /// an aggregate, one per corrupt aggregate.
    pub lines: usize,
    /// Records that could not be parsed.
    pub failed: usize,
    /// Records and user records that were parsed but, over a line cap, not
    /// logged one by one (a summary line counts them).
    pub not_logged: usize,
    /// Records left alone because the deadline came first; they are
    /// redelivered from [`BatchOutcome::first_failed`].
    pub deferred: usize,
    /// The sequence number to report as the batch item failure (borrowed
    /// from the batch unless its JSON escapes it).
    pub first_failed: Option<Cow<'a, str>>,
    /// Records Kinesis delivers again: the reported one and all after it.
    pub reported: usize,
}

impl BatchOutcome<'_> {
    /// Adds the outcome to the invocation's metrics.
    fn record_metrics(&self) {
        metrics::count_each(&[
            (names::RECORDS_RECEIVED, self.records),
            (names::BATCH_SIZE, self.records),
            (names::RECORDS_LOGGED, self.lines),
            (names::RECORDS_SKIPPED, self.not_logged),
            (names::RECORDS_FAILED, self.failed),
            (names::RECORDS_HELD_BACK, self.deferred),
            (names::RECORDS_REPORTED, self.reported),
        ]);
    }
}

/// What every invocation needs, built once per execution environment.
#[derive(Debug)]
pub struct App {
    /// The settings.
    pub config: Config,
}

/// Handles one Kinesis batch: logs it and answers with the partial batch
/// response (empty when every record was parsed).
pub async fn function_handler(
    app: &App,
    event: LambdaEvent<KinesisBatch>,
) -> Result<KinesisEventResponse, FunctionError> {
    let stop_by = lambda_stream_kit::deadline::stop_by(&event.context, ANSWER_MARGIN);
    let outcome = match log_batch_until(&event.payload, &app.config, Some(stop_by.into_std())) {
        Ok(outcome) => outcome,
        Err(error) => {
            let records = event.payload.records.as_deref().map_or(0, <[_]>::len);
            metrics::count(names::RECORDS_RECEIVED, records);
            // A failed invocation hands the whole batch back.
            metrics::count(names::RECORDS_REPORTED, records);
            return Err(error.into());
        }
    };
    outcome.record_metrics();
    Ok(lambda_stream_kit::batch::kinesis_response(
        outcome.first_failed.as_deref(),
    ))
}

/// Logs every record of `batch` with no deadline; see the module docs.
pub fn log_batch<'a>(
    batch: &'a KinesisBatch,
    config: &Config,
) -> Result<BatchOutcome<'a>, BatchError> {
    log_batch_until(batch, config, None)
}

/// Logs the records of `batch` until `stop_by`; see the module docs for the
/// outcomes and the bounds.
pub fn log_batch_until<'a>(
    batch: &'a KinesisBatch,
    config: &Config,
    stop_by: Option<std::time::Instant>,
) -> Result<BatchOutcome<'a>, BatchError> {
    let Some(records) = batch.records.as_deref() else {
        tracing::error!(reason = %BatchError::NotABatch, "event rejected");
        return Err(BatchError::NotABatch);
    };
    let mut outcome = BatchOutcome {
        records: records.len(),
        ..BatchOutcome::default()
    };
    let mut unidentifiable = None;
    // One buffer for every record's decoded data, so a batch allocates it once.
    let mut buffer = Vec::new();
    let mut unlogged = Unlogged::default();
    for (index, record) in records.iter().enumerate() {
        if stop_by.is_some_and(|stop| std::time::Instant::now() >= stop) {
            defer_rest(&records[index..], index, &mut outcome, &mut unidentifiable);
            break;
        }
        let budget = Budget {
            lines: config
                .max_lines_per_invocation
                .saturating_sub(outcome.lines),
            per_aggregate: config.max_lines_per_aggregate,
        };
        match log_record(record, config, budget, &mut buffer) {
            Ok(Logged {
                written,
                sequence_number,
            }) => {
                outcome.lines += written.lines;
                if written.not_logged > 0 && written.over_invocation_cap {
                    unlogged.add(sequence_number, written.not_logged);
                }
                outcome.not_logged += written.not_logged;
            }
            Err(failure) => {
                tracing::error!(
                    index,
                    sequence_number = failure.sequence_number.as_deref(),
                    event_id = failure.event_id.as_deref(),
                    reason = %failure.reason,
                    "kinesis record cannot be parsed"
                );
                outcome.failed += 1;
                // Redelivery starts at the first failure, which covers every
                // later one, so only the first decides the answer.
                if outcome.failed == 1 {
                    outcome.reported = records.len() - index;
                    match failure.sequence_number {
                        Some(sequence_number) => outcome.first_failed = Some(sequence_number),
                        None => unidentifiable = Some((index, failure.reason)),
                    }
                }
            }
        }
    }
    if unlogged.count > 0 {
        tracing::warn!(
            cap = config.max_lines_per_invocation,
            not_logged = unlogged.count,
            first_sequence_number = unlogged.first.as_deref(),
            last_sequence_number = unlogged.last.as_deref(),
            "log line cap reached; the rest of the batch was parsed but not logged"
        );
    }
    tracing::debug!(
        records = outcome.records,
        lines = outcome.lines,
        failed = outcome.failed,
        not_logged = outcome.not_logged,
        deferred = outcome.deferred,
        first_failed = outcome.first_failed.as_deref(),
        "kinesis batch logged"
    );
    match unidentifiable {
        Some((index, reason)) => {
            let error = BatchError::Unidentifiable { index, reason };
            tracing::error!(reason = %error, "batch failed");
            Err(error)
        }
        None => Ok(outcome),
    }
}

/// Leaves `rest` (starting at batch position `index`) for redelivery: the
/// deadline has come. The first of them is reported unless an earlier
/// failure already covers it.
fn defer_rest<'a>(
    rest: &'a [Box<RawValue>],
    index: usize,
    outcome: &mut BatchOutcome<'a>,
    unidentifiable: &mut Option<(usize, RecordError)>,
) {
    outcome.deferred = rest.len();
    let sequence_number = rest.first().and_then(|raw| record::sequence_number(raw));
    tracing::warn!(
        deferred = rest.len(),
        from_index = index,
        from_sequence_number = sequence_number.as_deref(),
        "the invocation deadline is near; the rest of the batch is reported for redelivery"
    );
    if outcome.first_failed.is_none() && unidentifiable.is_none() {
        outcome.reported = rest.len();
        match sequence_number {
            Some(seq) => outcome.first_failed = Some(seq),
            None => *unidentifiable = Some((index, RecordError::MissingField("sequenceNumber"))),
        }
    }
}

/// How many lines one record may still write.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// What is left of the invocation's cap.
    lines: usize,
    /// The cap for one aggregate.
    per_aggregate: usize,
}

/// What logging one record came to.
struct Logged<'a> {
    written: Written,
    sequence_number: Cow<'a, str>,
}

/// The lines one record's data took.
struct Written {
    lines: usize,
    not_logged: usize,
    /// Whether the invocation's cap (not only the aggregate's) held lines back.
    over_invocation_cap: bool,
}

impl Written {
    /// One line, or none when the cap has been reached.
    fn single(logged: bool) -> Self {
        Self {
            lines: usize::from(logged),
            not_logged: usize::from(!logged),
            over_invocation_cap: !logged,
        }
    }
}

/// The records held back by the invocation's line cap.
#[derive(Default)]
struct Unlogged<'a> {
    count: usize,
    first: Option<Cow<'a, str>>,
    last: Option<Cow<'a, str>>,
}

impl<'a> Unlogged<'a> {
    fn add(&mut self, sequence_number: Cow<'a, str>, count: usize) {
        self.count += count;
        if self.first.is_none() {
            self.first = Some(sequence_number.clone());
        }
        self.last = Some(sequence_number);
    }
}

/// Logs one record within `budget` and says how many lines it took.
fn log_record<'a>(
    raw: &'a RawValue,
    config: &Config,
    budget: Budget,
    buffer: &mut Vec<u8>,
) -> Result<Logged<'a>, Failure<'a>> {
    let record = record::read(raw)?;
    buffer.clear();
    if let Err(e) =
        base64::engine::general_purpose::STANDARD.decode_vec(&*record.kinesis.data, buffer)
    {
        return Err(record.failed(RecordError::InvalidBase64(e)));
    }
    let written = log_data(
        &record,
        buffer.as_slice(),
        config.log_data_max_bytes,
        budget,
    );
    Ok(Logged {
        written,
        sequence_number: record.kinesis.sequence_number,
    })
}

/// Logs a parsed record's decoded `data` within `budget`.
fn log_data(record: &Record<'_>, data: &[u8], max: usize, budget: Budget) -> Written {
    let sequence_number = &*record.kinesis.sequence_number;
    let shard_id = record.shard_id();
    let line = Line {
        partition_key: record.partition_key(),
        explicit_hash_key: None,
        sequence_number,
        sub_sequence_number: None,
        shard_id,
        arrival: record
            .kinesis
            .approximate_arrival_timestamp
            .and_then(Rfc3339Millis::from_epoch_seconds),
        data,
    };
    if !kpl::is_aggregated(data) {
        if budget.lines > 0 {
            line.emit(max, None);
        }
        return Written::single(budget.lines > 0);
    }
    match kpl::decode(data) {
        Ok(user_records) => {
            let allowed = budget.lines.min(budget.per_aggregate);
            for (sub, user) in (0u64..).zip(user_records.iter().take(allowed)) {
                Line {
                    partition_key: Some(user.partition_key),
                    explicit_hash_key: user.explicit_hash_key,
                    sub_sequence_number: Some(sub),
                    data: user.data,
                    ..line
                }
                .emit(max, None);
            }
            let logged = user_records.len().min(allowed);
            let not_logged = user_records.len() - logged;
            if not_logged > 0 {
                tracing::info!(
                    sequence_number,
                    shard_id,
                    user_records = user_records.len(),
                    logged,
                    not_logged,
                    cap = budget.per_aggregate,
                    "KPL aggregate partly logged"
                );
            }
            Written {
                lines: logged,
                not_logged,
                over_invocation_cap: budget.lines < budget.per_aggregate
                    && user_records.len() > budget.lines,
            }
        }
        Err(error) => {
            if budget.lines > 0 {
                line.emit(max, Some(&error));
            }
            Written::single(budget.lines > 0)
        }
    }
}

/// Everything one log line says about a record or user record.
#[derive(Clone, Copy)]
struct Line<'a> {
    partition_key: Option<&'a str>,
    explicit_hash_key: Option<&'a str>,
    sequence_number: &'a str,
    sub_sequence_number: Option<u64>,
    shard_id: Option<&'a str>,
    arrival: Option<Rfc3339Millis>,
    data: &'a [u8],
}

impl Line<'_> {
    /// Writes the line: INFO, or WARN for an aggregate that could not be
    /// de-aggregated.
    fn emit(&self, max: usize, kpl_error: Option<&KplError>) {
        let shown = Shown::of(self.data, max);
        let base64_text;
        let (text, json) = match shown.content {
            Content::Text(text) => (Some(text), None),
            Content::Json(json) => (None, Some(json)),
            Content::Binary(bytes) => {
                base64_text = base64::engine::general_purpose::STANDARD.encode(bytes);
                (Some(base64_text.as_str()), None)
            }
        };
        // One field list for both levels; `tracing` fixes a line's level and
        // field names at compile time.
        macro_rules! record_line {
            ($level:expr, $($rest:tt)*) => {
                tracing::event!(
                    $level,
                    partition_key = self.partition_key,
                    explicit_hash_key = self.explicit_hash_key,
                    sequence_number = self.sequence_number,
                    sub_sequence_number = self.sub_sequence_number,
                    shard_id = self.shard_id,
                    approximate_arrival_time = self.arrival.map(tracing::field::display),
                    size_bytes = self.data.len(),
                    encoding = shown.content.encoding(),
                    truncated = shown.truncated.then_some(true),
                    logged_bytes = shown.truncated.then_some(shown.logged_bytes),
                    data = text,
                    json.data = json,
                    $($rest)*
                )
            };
        }
        match kpl_error {
            None => record_line!(Level::INFO, "kinesis record"),
            Some(error) => {
                record_line!(Level::WARN, kpl_error = %error, "KPL aggregate is corrupt; logged raw")
            }
        }
    }
}

/// The part of a record's data that gets logged, and how.
struct Shown<'a> {
    content: Content<'a>,
    truncated: bool,
    logged_bytes: usize,
}

/// Logged data by kind.
#[derive(Debug, PartialEq, Eq)]
enum Content<'a> {
    Text(&'a str),
    Json(&'a str),
    Binary(&'a [u8]),
}

impl Content<'_> {
    fn encoding(&self) -> &'static str {
        match self {
            Content::Text(_) => "text",
            Content::Json(_) => "json",
            Content::Binary(_) => "base64",
        }
    }
}

impl<'a> Shown<'a> {
    /// Classifies at most `max` bytes of `data`. Only the logged part is
    /// inspected, so a large record costs no more than a small one.
    fn of(data: &'a [u8], max: usize) -> Self {
        let Some(prefix) = data.get(..max).filter(|_| data.len() > max) else {
            let content = match std::str::from_utf8(data) {
                Ok(text) if is_json(text) => Content::Json(text),
                Ok(text) => Content::Text(text),
                Err(_) => Content::Binary(data),
            };
            return Self {
                content,
                truncated: false,
                logged_bytes: data.len(),
            };
        };
        let content = match std::str::from_utf8(prefix) {
            Ok(text) => Content::Text(text),
            // The cut fell inside a character: drop its first bytes.
            Err(e) if e.error_len().is_none() => prefix
                .get(..e.valid_up_to())
                .and_then(|p| std::str::from_utf8(p).ok())
                .map_or(Content::Binary(prefix), Content::Text),
            Err(_) => Content::Binary(prefix),
        };
        let logged_bytes = match content {
            Content::Text(t) | Content::Json(t) => t.len(),
            Content::Binary(b) => b.len(),
        };
        Self {
            content,
            truncated: true,
            logged_bytes,
        }
    }
}

/// Whether `text` is one JSON value. The first byte rules out most plain
/// text before the parser runs.
fn is_json(text: &str) -> bool {
    let starts_like_json = text.trim_start().bytes().next().is_some_and(|b| {
        matches!(
            b,
            b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
        )
    });
    starts_like_json && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// A UTC instant with millisecond precision, shown as RFC 3339
/// (`2015-04-09T00:00:00.000Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rfc3339Millis(i64);

impl Rfc3339Millis {
    /// Latest instant with a four-digit year: 9999-12-31T23:59:59.999Z.
    const MAX_MILLIS: f64 = 253_402_300_799_999.0;

    /// From Kinesis's `approximateArrivalTimestamp` (fractional epoch
    /// seconds); `None` when it is not a plausible instant.
    fn from_epoch_seconds(seconds: f64) -> Option<Self> {
        let millis = (seconds * 1000.0).round();
        // The range check makes the cast exact.
        (0.0..=Self::MAX_MILLIS)
            .contains(&millis)
            .then_some(Self(millis as i64))
    }
}

impl std::fmt::Display for Rfc3339Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const DAY_MS: i64 = 86_400_000;
        let (days, ms) = (self.0.div_euclid(DAY_MS), self.0.rem_euclid(DAY_MS));
        // Days to a proleptic Gregorian date (H. Hinnant's civil_from_days).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1_000 % 60,
            ms % 1_000
        )
    }
}

#[cfg(test)]
mod tests;
