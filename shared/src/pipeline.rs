//! One batch of source records, published to Kafka, answered for record by
//! record.
//!
//! A function that writes to Kafka supplies two things:
//!
//! * a [`RecordHandler`]: for one source record, what becomes of it
//!   ([`Mapped`]: publish this record, dead-letter it with a reason, skip
//!   it, or fail it), and the dead letter it becomes when it is set aside;
//! * an [`Answer`]: the source's way of answering
//!   ([`answer::DynamoDbStream`], [`answer::KinesisStream`],
//!   [`answer::KafkaMapping`]).
//!
//! [`process_partial_response`] does the rest, the same way for every
//! function:
//!
//! 1. maps every record; a record the [`Sink`] could never take (over
//!    `KAFKA_MAX_MESSAGE_BYTES`) goes back to the handler
//!    ([`RecordHandler::refused`]), as one the broker refuses does later;
//! 2. after a record fails, the later records of its group (a shard, a
//!    Kafka partition) are held back, not sent: the source delivers them
//!    again behind it, in order, and sending them now would only publish
//!    them twice;
//! 3. publishes and dead-letters with one produce call per topic, both at
//!    once, bounded by the caller's deadline;
//! 4. gives each record its [`Disposition`] and logs one summary line
//!    (`batch done`), a WARN line per record set aside (`record set aside`,
//!    with its position, `kind`, `reason` and `action`: `dead-letter`,
//!    `skip` or `report`), one per dead letter sent or not, and one per
//!    group whose publishing failed;
//! 5. answers: the first record not done for a stream, every record not
//!    done for a Kafka mapping that honours partial batch responses, a
//!    failed invocation for one that does not.
//!
//! Nothing is answered as done before the broker acknowledged it, on the
//! topic or on the dead-letter topic.
//!
//! ```
//! use lambda_stream_kit::kafka::OutgoingRecord;
//! use lambda_stream_kit::pipeline::{
//!     answer, process_partial_response, Mapped, MemorySink, Position, RecordHandler, Rejection,
//!     Topics,
//! };
//!
//! /// Publishes each line of text, upper-cased; an empty one is poison.
//! struct Shout;
//!
//! impl RecordHandler for Shout {
//!     type Record = (String, String); // (sequence number, text)
//!
//!     fn position(&self, (sequence_number, _): &Self::Record) -> Position {
//!         Position::stream(Some(sequence_number.clone()), None)
//!     }
//!
//!     fn map(&self, (_, text): &Self::Record) -> Mapped {
//!         if text.is_empty() {
//!             return Mapped::DeadLetter(Rejection::new("empty", "the line is empty"));
//!         }
//!         Mapped::Publish(OutgoingRecord {
//!             value: Some(text.to_uppercase().into_bytes()),
//!             ..OutgoingRecord::default()
//!         })
//!     }
//!
//!     fn dead_letter(&self, (_, text): &Self::Record, why: &Rejection) -> OutgoingRecord {
//!         let mut letter = OutgoingRecord {
//!             value: Some(text.clone().into_bytes()),
//!             ..OutgoingRecord::default()
//!         };
//!         letter.headers.insert("reason".into(), why.message.clone().into_bytes());
//!         letter
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let sink = MemorySink::new();
//! let records = vec![("1".to_owned(), "hello".to_owned()), ("2".to_owned(), String::new())];
//! let topics = Topics { publish: "shouts", dead_letters: Some("shouts-dlq"), traceparent: None };
//! let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
//! let response = process_partial_response(
//!     &sink, &Shout, topics, &[records], deadline, &answer::DynamoDbStream,
//! )
//! .await
//! .unwrap();
//! assert!(response.batch_item_failures.is_empty());
//! assert_eq!(sink.records("shouts")[0].value.as_deref(), Some(&b"HELLO"[..]));
//! assert_eq!(sink.records("shouts-dlq").len(), 1);
//! # });
//! ```

pub mod answer;
pub mod dead_letter;
pub mod sink;

use std::fmt;

use futures::future::join;
use tokio::time::Instant;

use crate::kafka::{Delivery, OutgoingRecord, ProduceError, ProduceOutcome};
use crate::redact;
use crate::runtime_api::FunctionError;
use crate::telemetry::error_chain;
use crate::telemetry::metrics::{self, names, Unit};
use crate::telemetry::trace;

pub use answer::Answer;
pub use sink::{MemorySink, Sink};

/// The kind the pipeline gives a record too large to be sent at all.
pub const TOO_LARGE: &str = "too-large";
/// The kind the pipeline gives a record the broker refused outright.
pub const REJECTED_BY_BROKER: &str = "rejected-by-broker";

/// Why a record is set aside: a stable kind for headers, answers and
/// alerts (`not-json`, `too-large`, …), and a reason that never quotes the
/// record (see [`crate::redact`]), capped at
/// [`redact::MAX_REASON_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// A machine-readable word.
    pub kind: &'static str,
    /// A human-readable reason.
    pub message: String,
}

impl Rejection {
    /// A rejection of `kind`; `message` is cut to
    /// [`redact::MAX_REASON_BYTES`].
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: redact::cap(message.into(), redact::MAX_REASON_BYTES),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a source record is, as its source's answer names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Position {
    /// A DynamoDB Streams or Kinesis record.
    Stream {
        /// Its sequence number; `None` when the record did not say.
        sequence_number: Option<String>,
        /// Its event id, for the log lines.
        event_id: Option<String>,
    },
    /// A Kafka record.
    Kafka {
        /// The source topic.
        topic: String,
        /// The source partition.
        partition: i64,
        /// The record's offset.
        offset: i64,
    },
}

impl Position {
    /// A stream record's position.
    pub fn stream(sequence_number: Option<String>, event_id: Option<String>) -> Self {
        Self::Stream {
            sequence_number,
            event_id,
        }
    }

    /// A Kafka record's position.
    pub fn kafka(topic: impl Into<String>, partition: i64, offset: i64) -> Self {
        Self::Kafka {
            topic: topic.into(),
            partition,
            offset,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream {
                sequence_number, ..
            } => write!(
                f,
                "sequence number {}",
                sequence_number.as_deref().unwrap_or("(none)")
            ),
            Self::Kafka {
                topic,
                partition,
                offset,
            } => write!(f, "{topic}-{partition}@{offset}"),
        }
    }
}

/// A WARN line with a record's position as fields: `sequence_number` and
/// `event_id` for a stream record, `topic`, `partition` and `offset` for a
/// Kafka record.
macro_rules! warn_at {
    ($position:expr, $($rest:tt)*) => {
        match $position {
            Position::Stream { sequence_number, event_id } => tracing::warn!(
                sequence_number = sequence_number.as_deref().unwrap_or(""),
                event_id = event_id.as_deref().unwrap_or(""),
                $($rest)*
            ),
            Position::Kafka { topic, partition, offset } => tracing::warn!(
                topic = topic.as_str(),
                partition,
                offset,
                $($rest)*
            ),
        }
    };
}
pub(crate) use warn_at;

/// What is to become of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Publish this record to [`Topics::publish`].
    Publish(OutgoingRecord),
    /// Send the record's dead letter ([`RecordHandler::dead_letter`]) to
    /// [`Topics::dead_letters`]. Without a dead-letter topic it fails.
    DeadLetter(Rejection),
    /// Nothing to do: the record is not forwarded (`None`), or it is let go
    /// with a WARN line as its only trace (`Some`).
    Skip(Option<Rejection>),
    /// Report it to the source, which delivers it again.
    Fail(Rejection),
}

/// The function's part: one source record in, what becomes of it out.
pub trait RecordHandler {
    /// A source record as the handler reads it.
    type Record;

    /// Where `record` is, as the source's answer names it.
    fn position(&self, record: &Self::Record) -> Position;

    /// What becomes of `record`. Does no I/O.
    fn map(&self, record: &Self::Record) -> Mapped;

    /// What becomes of a record whose mapped record the sink cannot take:
    /// too large to send ([`TOO_LARGE`]) or refused by the broker
    /// ([`REJECTED_BY_BROKER`]). Not [`Mapped::Publish`]: that is taken as
    /// a failure. Dead-lettered unless the handler says otherwise.
    fn refused(&self, record: &Self::Record, rejection: Rejection) -> Mapped {
        let _ = record;
        Mapped::DeadLetter(rejection)
    }

    /// The dead letter for `record`, set aside for `why`. The pipeline cuts
    /// it down to fit ([`Sink::fit_dead_letter`]) only when the handler
    /// does not: handlers that know which headers are essential do it
    /// themselves.
    fn dead_letter(&self, record: &Self::Record, why: &Rejection) -> OutgoingRecord;

    /// Called for each record the broker acknowledged on
    /// [`Topics::publish`], for a per-record log line. Does nothing unless
    /// the handler says otherwise.
    fn published(&self, record: &Self::Record, topic: &str, delivery: Delivery) {
        let _ = (record, topic, delivery);
    }
}

/// Where records go.
#[derive(Debug, Clone, Copy)]
pub struct Topics<'a> {
    /// The topic published records go to.
    pub publish: &'a str,
    /// The dead-letter topic, if there is one.
    pub dead_letters: Option<&'a str>,
    /// The invocation's W3C `traceparent` ([`trace::traceparent`]), given
    /// to every record sent that does not carry a valid one: published
    /// records before their size check, dead letters when it still fits.
    pub traceparent: Option<&'a str>,
}

/// Where one record ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// On the topic.
    Published(Delivery),
    /// On the dead-letter topic.
    DeadLettered(Delivery),
    /// Not forwarded, or let go with a WARN line.
    Skipped,
    /// Not handled; the source must deliver it again.
    Failed(String),
    /// Not attempted: an earlier record of its group failed.
    HeldBack,
}

impl Disposition {
    /// Whether the record is handled for good.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Self::Published(_) | Self::DeadLettered(_) | Self::Skipped
        )
    }

    /// Why the record is not done; `None` when it is.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Failed(reason) => Some(reason),
            Self::HeldBack => Some("held back behind an earlier failure"),
            _ => None,
        }
    }
}

/// One record of a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it came from.
    pub position: Position,
    /// Where it ended up.
    pub disposition: Disposition,
}

/// Every record's disposition, in input order (group by group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The records.
    pub entries: Vec<Entry>,
}

/// How many records ended up where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records in the batch.
    pub records: usize,
    /// On the topic.
    pub published: usize,
    /// On the dead-letter topic.
    pub dead_lettered: usize,
    /// Not forwarded, or let go.
    pub skipped: usize,
    /// Failed, and to be delivered again.
    pub failed: usize,
    /// Held back behind a failure, and to be delivered again.
    pub held_back: usize,
}

impl Counts {
    /// Adds the counts to the invocation's metrics.
    fn record(&self) {
        metrics::count_each(&[
            (names::RECORDS_RECEIVED, self.records),
            (names::BATCH_SIZE, self.records),
            (names::RECORDS_PUBLISHED, self.published),
            (names::RECORDS_DEAD_LETTERED, self.dead_lettered),
            (names::RECORDS_SKIPPED, self.skipped),
            (names::RECORDS_FAILED, self.failed),
            (names::RECORDS_HELD_BACK, self.held_back),
        ]);
    }
}

impl Report {
    /// The counts by disposition.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            records: self.entries.len(),
            ..Counts::default()
        };
        for entry in &self.entries {
            match entry.disposition {
                Disposition::Published(_) => counts.published += 1,
                Disposition::DeadLettered(_) => counts.dead_lettered += 1,
                Disposition::Skipped => counts.skipped += 1,
                Disposition::Failed(_) => counts.failed += 1,
                Disposition::HeldBack => counts.held_back += 1,
            }
        }
        counts
    }

    /// The records not done, in order.
    pub fn not_done(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.disposition.is_done())
    }
}

/// Maps, publishes and answers one batch; see the module doc.
///
/// `groups` are the batch's records by shard or partition, each in source
/// order. Producing is bounded by `deadline`.
pub async fn process_partial_response<H, A>(
    sink: &(impl Sink + ?Sized),
    handler: &H,
    topics: Topics<'_>,
    groups: &[Vec<H::Record>],
    deadline: Instant,
    answer: &A,
) -> Result<A::Response, FunctionError>
where
    H: RecordHandler,
    A: Answer + ?Sized,
{
    let report = process(sink, handler, topics, groups, deadline).await;
    let answered = answer.answer(&report);
    let reported = match &answered {
        Ok(_) => report.not_done().count(),
        // A failed invocation hands the whole batch back.
        Err(_) => report.entries.len(),
    };
    metrics::count(names::RECORDS_REPORTED, reported);
    answered
}

/// Maps and publishes one batch, and reports where each record ended up;
/// [`process_partial_response`] without the answer.
pub async fn process<H: RecordHandler>(
    sink: &(impl Sink + ?Sized),
    handler: &H,
    topics: Topics<'_>,
    groups: &[Vec<H::Record>],
    deadline: Instant,
) -> Report {
    let started = Instant::now();
    let mut run = Run {
        handler,
        sink,
        topics,
        records: Vec::new(),
        entries: Vec::new(),
        letters: Vec::new(),
    };
    let mut to_publish = Vec::new();
    for group in groups {
        let mut failed = false;
        for record in group {
            let index = run.records.len();
            run.records.push(record);
            run.entries.push(Entry {
                position: handler.position(record),
                disposition: Disposition::HeldBack,
            });
            if failed {
                continue;
            }
            let mapped = match handler.map(record) {
                Mapped::Publish(mut out) => {
                    trace::stamp(&mut out.headers, topics.traceparent);
                    Mapped::Publish(out)
                }
                mapped => mapped,
            };
            let mapped = match mapped {
                Mapped::Publish(out) if !sink.fits(&out) => {
                    let rejection = Rejection::new(
                        TOO_LARGE,
                        ProduceError::TooLarge {
                            size: out.size(),
                            limit: sink.max_message_bytes(),
                        }
                        .to_string(),
                    );
                    handler.refused(record, rejection)
                }
                mapped => mapped,
            };
            match mapped {
                Mapped::Publish(out) => to_publish.push((index, out)),
                set_aside => failed = !run.set_aside(index, set_aside),
            }
        }
    }

    let (indices, records): (Vec<usize>, Vec<OutgoingRecord>) = to_publish.into_iter().unzip();
    let sizes: Vec<usize> = records.iter().map(OutgoingRecord::size).collect();
    let letters = std::mem::take(&mut run.letters);
    let (published, dead_lettered) = join(
        send(sink, topics.publish, records, deadline),
        run.send_letters(letters, deadline),
    )
    .await;
    let mut logged_groups = Vec::new();
    let mut bytes_published = 0;
    for ((index, outcome), size) in indices.into_iter().zip(published).zip(sizes) {
        match outcome {
            Ok(delivery) => {
                bytes_published += size;
                handler.published(run.records[index], topics.publish, delivery);
                run.entries[index].disposition = Disposition::Published(delivery);
            }
            Err(error) if error.is_permanent() => {
                let rejection = Rejection::new(REJECTED_BY_BROKER, error_chain(&error));
                let mapped = match handler.refused(run.records[index], rejection) {
                    Mapped::Publish(_) => Mapped::Fail(Rejection::new(
                        REJECTED_BY_BROKER,
                        format!("the broker refused the record: {}", error_chain(&error)),
                    )),
                    mapped => mapped,
                };
                run.set_aside(index, mapped);
            }
            Err(error) => {
                let group = group_of(groups, index);
                if !logged_groups.contains(&group) {
                    logged_groups.push(group);
                    warn_at!(
                        &run.entries[index].position,
                        destination = topics.publish,
                        error = %error_chain(&error),
                        "publishing failed; the source delivers the record again from here"
                    );
                }
                run.entries[index].disposition = Disposition::Failed(error_chain(&error));
            }
        }
    }
    metrics::record(names::BYTES_PUBLISHED, Unit::Bytes, bytes_published as f64);
    run.record_letters(dead_lettered);
    let refused = std::mem::take(&mut run.letters);
    let outcomes = run.send_letters(refused, deadline).await;
    run.record_letters(outcomes);

    let report = Report {
        entries: run.entries,
    };
    let counts = report.counts();
    counts.record();
    tracing::info!(
        records = counts.records,
        published = counts.published,
        dead_lettered = counts.dead_lettered,
        skipped = counts.skipped,
        failed = counts.failed,
        held_back = counts.held_back,
        duration_ms = started.elapsed().as_millis() as u64,
        "batch done"
    );
    report
}

/// One batch in progress.
struct Run<'r, H: RecordHandler, S: ?Sized> {
    handler: &'r H,
    sink: &'r S,
    topics: Topics<'r>,
    records: Vec<&'r H::Record>,
    entries: Vec<Entry>,
    /// Dead letters to send: the record's index, why, and the letter.
    letters: Vec<(usize, Rejection, OutgoingRecord)>,
}

impl<H: RecordHandler, S: Sink + ?Sized> Run<'_, H, S> {
    /// Records a set-aside decision for record `index`. Returns whether
    /// the record is done or on its way to being done (dead-lettered).
    fn set_aside(&mut self, index: usize, mapped: Mapped) -> bool {
        let record = self.records[index];
        let (why, action, disposition, done) = match mapped {
            Mapped::Publish(_) => return unreachable_publish(&mut self.entries[index]),
            Mapped::Skip(None) => {
                self.entries[index].disposition = Disposition::Skipped;
                return true;
            }
            Mapped::DeadLetter(why) if self.topics.dead_letters.is_some() => {
                let mut letter = self
                    .sink
                    .fit_dead_letter(self.handler.dead_letter(record, &why), &[]);
                stamp_if_it_fits(self.sink, &mut letter, self.topics.traceparent);
                self.letters.push((index, why.clone(), letter));
                (why, "dead-letter", Disposition::HeldBack, true)
            }
            Mapped::DeadLetter(why) => {
                let failed = Disposition::Failed(why.message.clone());
                (why, "report (no dead-letter topic is set)", failed, false)
            }
            Mapped::Skip(Some(why)) => (why, "skip", Disposition::Skipped, true),
            Mapped::Fail(why) => {
                let failed = Disposition::Failed(why.message.clone());
                (why, "report", failed, false)
            }
        };
        // For a skipped record this line is its only trace.
        warn_at!(
            &self.entries[index].position,
            kind = why.kind,
            reason = %why.message,
            action,
            "record set aside"
        );
        self.entries[index].disposition = disposition;
        done
    }

    async fn send_letters(
        &self,
        letters: Vec<(usize, Rejection, OutgoingRecord)>,
        deadline: Instant,
    ) -> Vec<(usize, Rejection, ProduceOutcome)> {
        let Some(topic) = self.topics.dead_letters else {
            return Vec::new();
        };
        let (meta, records): (Vec<_>, Vec<_>) = letters
            .into_iter()
            .map(|(index, why, letter)| ((index, why), letter))
            .unzip();
        let outcomes = send(self.sink, topic, records, deadline).await;
        meta.into_iter()
            .zip(outcomes)
            .map(|((index, why), outcome)| (index, why, outcome))
            .collect()
    }

    fn record_letters(&mut self, outcomes: Vec<(usize, Rejection, ProduceOutcome)>) {
        let topic = self.topics.dead_letters.unwrap_or_default();
        for (index, why, outcome) in outcomes {
            let position = &self.entries[index].position;
            self.entries[index].disposition = match outcome {
                Ok(delivery) => {
                    warn_at!(
                        position,
                        kind = why.kind,
                        reason = %why.message,
                        dead_letter_topic = topic,
                        dead_letter_partition = delivery.partition,
                        dead_letter_offset = delivery.offset,
                        "record dead-lettered"
                    );
                    Disposition::DeadLettered(delivery)
                }
                Err(error) => {
                    warn_at!(
                        position,
                        kind = why.kind,
                        reason = %why.message,
                        dead_letter_topic = topic,
                        error = %error_chain(&error),
                        "dead-lettering failed; the source delivers the record again"
                    );
                    Disposition::Failed(format!(
                        "{}; dead-lettering failed too: {}",
                        why.message,
                        error_chain(&error)
                    ))
                }
            };
        }
    }
}

/// [`Run::set_aside`] never sees a record to publish: `process` sends
/// those and turns a refusal answered with `Publish` into `Fail`.
fn unreachable_publish(entry: &mut Entry) -> bool {
    entry.disposition = Disposition::Failed("the handler asked to publish a refused record".into());
    false
}

/// Gives `record` the `traceparent` ([`trace::stamp`]) unless that would
/// make it too large for `sink`: a dead letter already cut to fit stays
/// sendable, without the trace.
pub fn stamp_if_it_fits(
    sink: &(impl Sink + ?Sized),
    record: &mut OutgoingRecord,
    traceparent: Option<&str>,
) {
    if trace::stamp(&mut record.headers, traceparent) && !sink.fits(record) {
        record.headers.remove(trace::TRACEPARENT_HEADER);
    }
}

/// Sends one topic's records; nothing at all when there are none.
async fn send(
    sink: &(impl Sink + ?Sized),
    topic: &str,
    records: Vec<OutgoingRecord>,
    deadline: Instant,
) -> Vec<ProduceOutcome> {
    if records.is_empty() {
        return Vec::new();
    }
    let started = Instant::now();
    let outcomes = sink.produce(topic, records, deadline).await;
    metrics::record(
        names::PRODUCE_LATENCY,
        Unit::Milliseconds,
        started.elapsed().as_secs_f64() * 1000.0,
    );
    outcomes
}

/// Which group the record at flat `index` belongs to.
fn group_of<R>(groups: &[Vec<R>], mut index: usize) -> usize {
    for (group, records) in groups.iter().enumerate() {
        if index < records.len() {
            return group;
        }
        index -= records.len();
    }
    groups.len()
}

#[cfg(test)]
mod tests;
