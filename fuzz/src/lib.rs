//! Shared checks for the fuzz targets in `fuzz_targets/`.
//!
//! Each target feeds arbitrary bytes to one parser of the project and
//! asserts what the parser promises (valid JSON out, one result per record,
//! the first failure reported), not only that it does not panic. The
//! helpers here are the checks more than one target needs.
//!
//! Run them with `make fuzz` (`scripts/fuzz.sh`); see that script for the
//! corpus seeding and the time limits.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use serde_dynamo::AttributeValue;
use serde_json::Value;

/// Whether `bytes` are one JSON value by the grammar. Unlike parsing into a
/// `Value`, this accepts numbers outside the `f64` range, which are valid
/// JSON (DynamoDB's own numbers go up to 38 digits and 10^125).
pub fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<&serde_json::value::RawValue>(bytes).is_ok()
}

/// Runs `future` to completion on one current-thread runtime per thread,
/// with time and I/O enabled, as the Lambda runtime would.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
    }
    RUNTIME.with(|slot| {
        let mut slot = slot.borrow_mut();
        let runtime = slot.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime")
        });
        runtime.block_on(future)
    })
}

/// Whether DynamoDB number text is a decimal number, judged independently
/// of the unmarshaller: only sign, digits, point and exponent characters,
/// and Rust's own float parser accepts it.
pub fn is_decimal(text: &str) -> bool {
    let text = text.trim();
    text.bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'+' | b'-' | b'.' | b'e' | b'E'))
        && text.parse::<f64>().is_ok()
}

/// Asserts that `json` (the output of `item_to_json`, parsed) has exactly
/// the shape the attribute map documents: same keys, every type mapped as
/// the `dynamodb` module's table says, strings and bytes exact, numbers
/// equal in value.
pub fn assert_item_matches(item: &HashMap<String, AttributeValue>, json: &Value) {
    let Value::Object(object) = json else {
        panic!("an item must give a JSON object, got {json}");
    };
    assert_eq!(object.len(), item.len(), "key count differs");
    for (key, value) in item {
        let Some(found) = object.get(key) else {
            panic!("key {key:?} is missing from the output");
        };
        assert_attribute_matches(value, found, key);
    }
}

fn assert_attribute_matches(attribute: &AttributeValue, json: &Value, path: &str) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match (attribute, json) {
        (AttributeValue::S(s), Value::String(out)) => assert_eq!(s, out, "{path}"),
        (AttributeValue::N(n), Value::Number(out)) => assert_same_number(n, out, path),
        (AttributeValue::B(b), Value::String(out)) => assert_eq!(&b64(b), out, "{path}"),
        (AttributeValue::Bool(b), Value::Bool(out)) => assert_eq!(b, out, "{path}"),
        (AttributeValue::Null(_), Value::Null) => {}
        (AttributeValue::M(map), out @ Value::Object(_)) => assert_item_matches(map, out),
        (AttributeValue::L(list), Value::Array(out)) => {
            assert_eq!(list.len(), out.len(), "{path}: list length");
            for (i, (a, v)) in list.iter().zip(out).enumerate() {
                assert_attribute_matches(a, v, &format!("{path}[{i}]"));
            }
        }
        (AttributeValue::Ss(list), Value::Array(out)) => {
            let out: Vec<&str> = out.iter().filter_map(Value::as_str).collect();
            assert_eq!(list, &out, "{path}: string set");
        }
        (AttributeValue::Ns(list), Value::Array(out)) => {
            assert_eq!(list.len(), out.len(), "{path}: number set length");
            for (n, v) in list.iter().zip(out) {
                let Value::Number(v) = v else {
                    panic!("{path}: number set member {n:?} became {v}");
                };
                assert_same_number(n, v, path);
            }
        }
        (AttributeValue::Bs(list), Value::Array(out)) => {
            let expected: Vec<String> = list.iter().map(|b| b64(b)).collect();
            let out: Vec<&str> = out.iter().filter_map(Value::as_str).collect();
            assert_eq!(expected, out, "{path}: binary set");
        }
        (attribute, json) => panic!("{path}: {attribute:?} became {json}"),
    }
}

/// DynamoDB number text and the JSON number written for it have the same
/// value (up to the last bit serde_json's fast float parser may lose).
fn assert_same_number(text: &str, out: &serde_json::Number, path: &str) {
    assert!(
        is_decimal(text),
        "{path}: {text:?} is not a decimal, yet it was written as {out}"
    );
    let (Ok(expected), Some(got)) = (text.trim().parse::<f64>(), out.as_f64()) else {
        return;
    };
    if expected.is_finite() && got.is_finite() {
        let tolerance = expected.abs().max(got.abs()) * 1e-12;
        assert!(
            (expected - got).abs() <= tolerance,
            "{path}: {text:?} was written as {out}"
        );
    }
}

/// Every `N` and `NS` member in `attribute`, recursively.
pub fn numbers_in<'a>(attribute: &'a AttributeValue, out: &mut Vec<&'a str>) {
    match attribute {
        AttributeValue::N(n) => out.push(n),
        AttributeValue::Ns(list) => out.extend(list.iter().map(String::as_str)),
        AttributeValue::M(map) => map.values().for_each(|v| numbers_in(v, out)),
        AttributeValue::L(list) => list.iter().for_each(|v| numbers_in(v, out)),
        _ => {}
    }
}

/// How many levels of `M`/`L` lie below an attribute: 0 for a scalar or an
/// empty container, one more than its deepest member otherwise.
pub fn height_of(attribute: &AttributeValue) -> usize {
    let below = |children: &mut dyn Iterator<Item = &AttributeValue>| {
        children.map(|c| 1 + height_of(c)).max().unwrap_or(0)
    };
    match attribute {
        AttributeValue::M(map) => below(&mut map.values()),
        AttributeValue::L(list) => below(&mut list.iter()),
        _ => 0,
    }
}

/// Log lines written by a `tracing` subscriber, kept in memory so a target
/// can check every line it produced.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// The buffer every target in this process writes to.
    pub fn global() -> &'static LogBuffer {
        static BUFFER: OnceLock<LogBuffer> = OnceLock::new();
        BUFFER.get_or_init(LogBuffer::default)
    }

    /// Takes the text written so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> lambda_runtime::tracing::subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
