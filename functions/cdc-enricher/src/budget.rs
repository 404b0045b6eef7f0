//! The answer's size budget: Lambda refuses a synchronous response larger
//! than [`LAMBDA_RESPONSE_LIMIT`] bytes, so the answer is measured while it
//! is built, not after.
//!
//! The limit applies to the whole invocation response as Lambda receives it:
//! * a direct invocation or a Firehose call answers with the JSON itself;
//! * a Function-URL call answers with an envelope whose `body` is that JSON
//!   as a JSON string, so every `"` and `\` in it costs two bytes and every
//!   control character two or six (serde_json's escapes), on top of the
//!   envelope's own fields. The body is never base64-encoded (the envelope
//!   says `isBase64Encoded: false`), so there is no 4/3 factor.
//!
//! Costs are counted by serializing into a writer that keeps no bytes, so a
//! piece is measured exactly, without holding a copy of it.

use std::io;

use serde::Serialize;

/// Lambda's limit for a synchronous invocation's response: 6 MB, counted
/// in bytes of the response payload.
pub const LAMBDA_RESPONSE_LIMIT: usize = 6_291_456;

/// How the bytes of the answer are framed in the invocation response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The answer is the response payload itself.
    Bare,
    /// The answer is the `body` string of a Function-URL envelope.
    JsonString,
}

/// A running count of what the answer may still take.
#[derive(Debug, Clone)]
pub struct Budget {
    remaining: usize,
    framing: Framing,
}

impl Budget {
    /// A budget of `limit` bytes, of which `fixed` are already taken by the
    /// parts around the answer (`None` when they alone exceed the limit).
    pub fn new(limit: usize, fixed: usize, framing: Framing) -> Option<Self> {
        Some(Self {
            remaining: limit.checked_sub(fixed)?,
            framing,
        })
    }

    /// The bytes still available.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// What `value`, serialized compactly, costs under this framing.
    pub fn cost_of<T: Serialize + ?Sized>(&self, value: &T) -> usize {
        let mut counter = Counter {
            framing: self.framing,
            bytes: 0,
        };
        // Writing to the counter cannot fail; a value whose own Serialize
        // fails (a map with non-string keys) would fail the final
        // serialization too, so it is priced as unaffordable here.
        match serde_json::to_writer(&mut counter, value) {
            Ok(()) => counter.bytes,
            Err(_) => usize::MAX,
        }
    }

    /// What literal JSON text (punctuation between pieces) costs.
    pub fn cost_of_text(&self, text: &str) -> usize {
        text.bytes().map(|b| byte_cost(self.framing, b)).sum()
    }

    /// Takes `cost` from the budget if it fits; `false` leaves it untouched.
    pub fn try_spend(&mut self, cost: usize) -> bool {
        match self.remaining.checked_sub(cost) {
            Some(left) => {
                self.remaining = left;
                true
            }
            None => false,
        }
    }

    /// Gives back what a reservation held, before spending the real cost.
    pub fn refund(&mut self, cost: usize) {
        self.remaining = self.remaining.saturating_add(cost);
    }
}

/// Bytes one byte of JSON text becomes under `framing`: serde_json's
/// string escapes (`\"`, `\\`, `\b \t \n \f \r`, `\u00XX` for the other
/// control characters; everything else, UTF-8 included, as is).
fn byte_cost(framing: Framing, byte: u8) -> usize {
    match framing {
        Framing::Bare => 1,
        Framing::JsonString => match byte {
            b'"' | b'\\' | 0x08 | b'\t' | b'\n' | 0x0C | b'\r' => 2,
            0x00..=0x1F => 6,
            _ => 1,
        },
    }
}

/// An `io::Write` that only counts.
struct Counter {
    framing: Framing,
    bytes: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let cost: usize = match self.framing {
            Framing::Bare => buf.len(),
            Framing::JsonString => buf.iter().map(|b| byte_cost(self.framing, *b)).sum(),
        };
        self.bytes = self.bytes.saturating_add(cost);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bare_cost_is_the_compact_length() {
        let budget = Budget::new(100, 0, Framing::Bare).unwrap();
        let value = json!({"a": "x\"y\n", "b": [1, null]});
        assert_eq!(
            budget.cost_of(&value),
            serde_json::to_vec(&value).unwrap().len()
        );
    }

    #[test]
    fn a_json_string_cost_is_the_length_once_embedded_in_an_envelope() {
        let budget = Budget::new(100, 0, Framing::JsonString).unwrap();
        let value = json!({"a": "x\"y\n\u{1}é\\", "t": "\t\r\u{8}\u{c}\u{7f}"});
        let body = serde_json::to_string(&value).unwrap();
        // The body as a JSON string, without its two quotes.
        let embedded = serde_json::to_string(&body).unwrap().len() - 2;
        assert_eq!(budget.cost_of(&value), embedded);
        assert_eq!(budget.cost_of_text(&body), embedded);
    }

    #[test]
    fn spending_stops_at_the_limit_and_leaves_the_budget_untouched() {
        assert!(Budget::new(10, 11, Framing::Bare).is_none());
        let mut budget = Budget::new(10, 4, Framing::Bare).unwrap();
        assert!(budget.try_spend(6));
        assert!(!budget.try_spend(1));
        assert_eq!(budget.remaining(), 0);
        budget.refund(3);
        assert!(budget.try_spend(3));
    }
}
