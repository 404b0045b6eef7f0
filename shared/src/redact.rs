//! Error descriptions that are safe to log, to put in a dead-letter header
//! or to send back to a caller: they never quote the input.
//!
//! serde_json's messages quote what they could not read
//! (`invalid type: string "…"`, `unknown variant "…"`, `invalid value: …`),
//! and the input of these functions is customer data. A bad record's reason
//! ends up in log lines, in Kafka headers and in answers to the caller, all
//! of which are kept and read far more widely than the data itself. So a
//! parse error is described by serde_json's category and position only;
//! the position is enough to find the fault in the original, which the
//! dead letter or the caller still has. A base64 error is described the
//! same way ([`base64_error`]: the problem and its offset, never the
//! offending symbol), and any reason can be bounded in length
//! ([`cap`]), so that a header or log line built from it stays small
//! whatever the record.

use std::fmt;

use serde_json::error::Category;

/// A `serde_json::Error` reduced to its category, line and column.
///
/// Its `Display` reads like `invalid JSON (syntax error at line 1,
/// column 17)`; the error's message text is never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonErrorSummary {
    category: Category,
    line: usize,
    column: usize,
}

impl JsonErrorSummary {
    /// The category's name: `syntax`, `data`, `eof` or `io`.
    pub fn category(&self) -> &'static str {
        match self.category {
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "eof",
            Category::Io => "io",
        }
    }

    /// The 1-based line, or 0 when the parser gave no position.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column, or 0 when the parser gave no position.
    pub fn column(&self) -> usize {
        self.column
    }
}

/// Describes `error` by category and position only; see the module doc.
pub fn json_error(error: &serde_json::Error) -> JsonErrorSummary {
    JsonErrorSummary {
        category: error.classify(),
        line: error.line(),
        column: error.column(),
    }
}

impl From<&serde_json::Error> for JsonErrorSummary {
    fn from(error: &serde_json::Error) -> Self {
        json_error(error)
    }
}

impl fmt::Display for JsonErrorSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A data error is well-formed JSON of the wrong type or shape;
        // calling it invalid would send the reader looking for a typo.
        let lead = match self.category {
            Category::Data => "unexpected JSON",
            Category::Syntax | Category::Eof | Category::Io => "invalid JSON",
        };
        write!(f, "{lead} ({} error", self.category())?;
        // serde_json reports line 0 for errors it raised without a
        // position (a custom error outside any parse, an I/O failure).
        if self.line > 0 {
            write!(f, " at line {}, column {}", self.line, self.column)?;
        }
        f.write_str(")")
    }
}

/// How long a reason may be in a header or a log line, in bytes. Longer
/// reasons are cut by [`cap`].
pub const MAX_REASON_BYTES: usize = 256;

/// `reason` cut to at most `max` bytes, at a character boundary, with `…`
/// at the end when something was cut (the mark counts towards `max`).
///
/// Reasons built by this crate's summaries are short already; the cap is
/// the guarantee for every other one, since a reason is copied into each
/// dead letter and log line of its record.
pub fn cap(mut reason: String, max: usize) -> String {
    if reason.len() <= max {
        return reason;
    }
    const MARK: &str = "…";
    // Too little room for the mark: cut without it.
    let marked = max >= MARK.len();
    let mut end = if marked { max - MARK.len() } else { max };
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.truncate(end);
    if marked {
        reason.push_str(MARK);
    }
    reason
}

/// A `base64::DecodeError` reduced to what went wrong and where.
///
/// Its `Display` reads like `not base64 (invalid symbol at offset 12)`;
/// the offending symbol, which the error would quote, is never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64ErrorSummary {
    /// A byte outside the alphabet (or padding out of place), at an offset.
    InvalidSymbol(usize),
    /// The number of symbols is not a valid base64 length.
    InvalidLength(usize),
    /// The last symbol has bits set that decoding would drop, at an offset.
    InvalidLastSymbol(usize),
    /// Padding absent or present against the engine's rules.
    InvalidPadding,
}

/// Describes `error` by its kind and offset only; see the module doc.
pub fn base64_error(error: &base64::DecodeError) -> Base64ErrorSummary {
    match *error {
        base64::DecodeError::InvalidByte(offset, _) => Base64ErrorSummary::InvalidSymbol(offset),
        base64::DecodeError::InvalidLength(length) => Base64ErrorSummary::InvalidLength(length),
        base64::DecodeError::InvalidLastSymbol { offset, .. } => {
            Base64ErrorSummary::InvalidLastSymbol(offset)
        }
        base64::DecodeError::InvalidPadding => Base64ErrorSummary::InvalidPadding,
    }
}

impl From<&base64::DecodeError> for Base64ErrorSummary {
    fn from(error: &base64::DecodeError) -> Self {
        base64_error(error)
    }
}

impl fmt::Display for Base64ErrorSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSymbol(offset) => {
                write!(f, "not base64 (invalid symbol at offset {offset})")
            }
            Self::InvalidLength(length) => {
                write!(f, "not base64 (invalid length: {length} symbols)")
            }
            Self::InvalidLastSymbol(offset) => {
                write!(f, "not base64 (invalid last symbol at offset {offset})")
            }
            Self::InvalidPadding => f.write_str("not base64 (invalid padding)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    const SECRET: &str = "hunter2-SECRET";

    /// serde_json's own message and the summary of parsing `text` as `T`.
    fn both<T: serde::de::DeserializeOwned + fmt::Debug>(text: &str) -> (String, String) {
        let error = serde_json::from_str::<T>(text).unwrap_err();
        (error.to_string(), json_error(&error).to_string())
    }

    #[test]
    fn a_syntax_error_gives_its_position_only() {
        let (_, summary) = both::<serde_json::Value>("{\"a\": [1, 2}");
        assert_eq!(summary, "invalid JSON (syntax error at line 1, column 12)");
    }

    #[test]
    fn a_type_error_that_serde_json_would_quote_is_not_quoted() {
        let (message, summary) = both::<Vec<u32>>(&format!(r#"[1, "{SECRET}"]"#));
        assert!(message.contains(SECRET), "serde_json quotes it: {message}");
        assert_eq!(summary, "unexpected JSON (data error at line 1, column 20)");
    }

    #[test]
    fn an_unknown_variant_is_not_quoted() {
        #[derive(Debug, serde::Deserialize)]
        enum Kind {
            #[allow(dead_code)]
            Known,
        }
        let (message, summary) = both::<Kind>(&format!("\"{SECRET}\""));
        assert!(message.contains(SECRET), "serde_json quotes it: {message}");
        assert!(!summary.contains(SECRET), "{summary}");
        assert!(summary.starts_with("unexpected JSON (data error at line 1, column "));
    }

    #[test]
    fn truncated_input_is_an_eof_error() {
        let (_, summary) = both::<serde_json::Value>("{\"a\":\n[1,");
        assert_eq!(summary, "invalid JSON (eof error at line 2, column 3)");
    }

    #[test]
    fn an_error_without_a_position_leaves_the_position_out() {
        let error = <serde_json::Error as serde::de::Error>::custom(SECRET);
        let summary = json_error(&error);
        assert_eq!(summary.to_string(), "unexpected JSON (data error)");
        assert_eq!((summary.line(), summary.column()), (0, 0));
        assert_eq!(summary.category(), "data");
    }

    fn base64_summary(text: &str) -> (String, String) {
        let error = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_err();
        (error.to_string(), base64_error(&error).to_string())
    }

    #[test]
    fn a_base64_error_gives_its_offset_and_never_the_symbol() {
        let (message, summary) = base64_summary("QUJD*EVG");
        assert!(message.contains("42"), "base64 names the byte: {message}");
        assert_eq!(summary, "not base64 (invalid symbol at offset 4)");
        let (message, summary) = base64_summary("QW==QUJD");
        assert!(!message.is_empty());
        assert_eq!(summary, "not base64 (invalid symbol at offset 2)");
    }

    #[test]
    fn a_bad_last_symbol_is_not_quoted() {
        // `W` is in the alphabet but leaves bits that decoding would drop.
        let (message, summary) = base64_summary("QW==");
        assert!(message.contains("'W'"), "base64 quotes it: {message}");
        assert_eq!(summary, "not base64 (invalid last symbol at offset 1)");
    }

    #[test]
    fn a_bad_length_gives_the_length() {
        let (_, summary) = base64_summary("QUJDR");
        assert_eq!(summary, "not base64 (invalid length: 5 symbols)");
    }

    #[test]
    fn a_short_reason_is_kept_and_a_long_one_is_cut_at_a_character_boundary() {
        assert_eq!(cap("short".into(), MAX_REASON_BYTES), "short");
        let exact = "x".repeat(MAX_REASON_BYTES);
        assert_eq!(cap(exact.clone(), MAX_REASON_BYTES), exact);
        // Two-byte characters, so the cut falls inside one unless it moves.
        let long = "é".repeat(MAX_REASON_BYTES);
        let capped = cap(long, MAX_REASON_BYTES);
        assert!(capped.len() <= MAX_REASON_BYTES, "{}", capped.len());
        assert!(capped.len() > MAX_REASON_BYTES - 6, "{}", capped.len());
        assert!(capped.ends_with('…'));
        assert_eq!(cap("abcdef".into(), 2), "ab");
        assert_eq!(cap("abcdef".into(), 4), "a…");
    }
}
