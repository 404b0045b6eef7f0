//! One event source mapping record through the shared pipeline: tagged and
//! published, or set aside as `ON_ERROR` says and turned into its dead
//! letter.
//!
//! A record that cannot be tagged (and a tagged event the sink cannot take:
//! too large, or refused by the broker) is dead-lettered under
//! `ON_ERROR=dlq`, let go with a WARN line under `log`, and reported under
//! `fail`, in which case the pipeline holds back the rest of its partition.

use std::collections::BTreeMap;

use lambda_stream_kit::kafka::OutgoingRecord;
use lambda_stream_kit::pipeline::{Mapped, Position, RecordHandler, Rejection, Sink};

use crate::bad_record::{self, add_source_headers, BadRecord, Coordinates, ErrorKind, RawRecord};
use crate::config::{Config, OnError};
use crate::rules::Tagger;
use crate::source::SourceRecord;
use crate::visit;

/// The function's [`RecordHandler`] for one batch.
#[derive(Debug)]
pub struct Tagging<'a, S: ?Sized> {
    /// The settings.
    pub config: &'a Config,
    /// The compiled tag rules.
    pub tagger: &'a Tagger,
    /// Where dead letters go, for their size limit.
    pub sink: &'a S,
    /// The batch's `tagged_at` time (RFC 3339).
    pub tagged_at: &'a str,
}

impl<'a, S: Sink + ?Sized> Tagging<'a, S> {
    /// What `ON_ERROR` makes of a record set aside.
    fn set_aside(&self, why: Rejection) -> Mapped {
        match (self.config.on_error, self.config.error_topic.as_deref()) {
            (OnError::Dlq, Some(_)) => Mapped::DeadLetter(why),
            (OnError::Log, _) => Mapped::Skip(Some(why)),
            // `Dlq` always has a topic (the config checks it); without one,
            // failing is the only choice that loses nothing.
            (OnError::Fail | OnError::Dlq, _) => Mapped::Fail(why),
        }
    }
}

impl<'a, S: Sink + ?Sized> RecordHandler for Tagging<'a, S> {
    type Record = SourceRecord<'a>;

    fn position(&self, record: &SourceRecord<'a>) -> Position {
        Position::kafka(record.topic.as_ref(), record.partition, record.offset)
    }

    fn map(&self, record: &SourceRecord<'a>) -> Mapped {
        match tagged_record(record, self.tagger, self.tagged_at) {
            Ok(out) => Mapped::Publish(out),
            Err(bad) => self.set_aside(bad.into()),
        }
    }

    fn refused(&self, _record: &SourceRecord<'a>, why: Rejection) -> Mapped {
        self.set_aside(why)
    }

    fn dead_letter(&self, record: &SourceRecord<'a>, why: &Rejection) -> OutgoingRecord {
        let raw = RawRecord {
            key: record.raw_key(),
            value: record.raw_value(),
            headers: record
                .headers()
                .map(|h| h.into_iter().collect())
                .unwrap_or_default(),
            timestamp: record.timestamp(),
        };
        bad_record::dead_letter(raw, coordinates(record), why, self.sink)
    }
}

/// The tagged event as a record for the response topic: the original key,
/// the original headers plus the source position, the original timestamp.
pub fn tagged_record(
    record: &SourceRecord<'_>,
    tagger: &Tagger,
    tagged_at: &str,
) -> Result<OutgoingRecord, BadRecord> {
    let key = record.key()?;
    let value = record
        .value()?
        .ok_or_else(|| BadRecord::new(ErrorKind::NotJson, "the record has no value"))?;
    let mut headers: BTreeMap<String, Vec<u8>> = record.headers()?.into_iter().collect();
    let tagged = visit::tag_bytes(&value, tagger, tagged_at)?;
    add_source_headers(&mut headers, coordinates(record));
    Ok(OutgoingRecord {
        key,
        value: Some(tagged),
        headers,
        timestamp: record.timestamp(),
    })
}

fn coordinates<'r>(record: &'r SourceRecord<'_>) -> Coordinates<'r> {
    Coordinates {
        topic: Some(&record.topic),
        partition: Some(record.partition),
        offset: Some(record.offset),
    }
}
