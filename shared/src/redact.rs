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
//! dead letter or the caller still has.

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

#[cfg(test)]
mod tests {
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
}
