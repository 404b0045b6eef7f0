//! Why a record could not be tagged.
//!
//! The kind is a stable, machine-readable word: it goes into the
//! `error-kind` header of dead letters, the `kind` field of connector error
//! entries and the log lines, so alerts and replays can key on it.

use std::fmt;

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

impl BadRecord {
    /// A bad record of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
