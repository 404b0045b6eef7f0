//! The DynamoDB unmarshaller, `lambda_stream_kit::dynamodb`.
//!
//! The input is JSON. Every object in it that deserializes as a
//! `serde_dynamo::Item` (the input itself, and any `Keys`, `NewImage` or
//! `OldImage` inside it, so whole stream events work as seeds) goes through
//! `item_to_json`. Invariants:
//! * `Ok` output is valid JSON, has the item's keys and maps every type as
//!   documented (strings and bytes exact, numbers equal in value);
//! * it is `Err` exactly when a number is not a decimal or the item is
//!   nested deeper than `MAX_DEPTH`;
//! * `attribute_text` accepts exactly the numbers `item_to_json` accepts.

#![no_main]

use std::collections::HashMap;

use lambda_stream_kit::dynamodb::{attribute_text, item_to_json, UnmarshalError, MAX_DEPTH};
use libfuzzer_sys::fuzz_target;
use serde_dynamo::AttributeValue;
use serde_json::Value;
use stream_fuzz::{assert_item_matches, height_of, is_decimal, is_json, numbers_in};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut candidates = Vec::new();
    collect_images(&value, &mut candidates, 0);
    for candidate in candidates {
        if let Ok(item) = serde_json::from_value::<serde_dynamo::Item>(candidate.clone()) {
            check(&item.into());
        }
    }
});

/// The input and every image-like object inside it.
fn collect_images<'a>(value: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    if depth == 0 && value.is_object() {
        out.push(value);
    }
    if depth > 8 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if matches!(key.as_str(), "Keys" | "NewImage" | "OldImage") && inner.is_object() {
                    out.push(inner);
                }
                collect_images(inner, out, depth + 1);
            }
        }
        Value::Array(list) => list.iter().for_each(|v| collect_images(v, out, depth + 1)),
        _ => {}
    }
}

fn check(item: &HashMap<String, AttributeValue>) {
    let mut numbers = Vec::new();
    item.values().for_each(|v| numbers_in(v, &mut numbers));
    for n in &numbers {
        let single = attribute_text(&AttributeValue::N((*n).to_owned()));
        assert_eq!(
            single.is_ok(),
            is_decimal(n),
            "attribute_text({n:?}) = {single:?} disagrees with a float parse"
        );
        if let Ok(text) = single {
            assert!(
                is_json(text.as_bytes()),
                "{n:?} became {text:?}, not a JSON number"
            );
        }
    }
    let all_decimal = numbers.iter().all(|n| is_decimal(n));
    // An item's attributes sit at depth 1, so the limit is crossed when an
    // attribute has MAX_DEPTH levels below it.
    let height = item.values().map(height_of).max().unwrap_or(0);

    match item_to_json(item) {
        Ok(bytes) => {
            assert!(all_decimal, "a non-decimal number was accepted");
            assert!(height < MAX_DEPTH, "height {height} was accepted");
            assert!(
                is_json(&bytes),
                "output is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            );
            // Numbers beyond the f64 range are valid JSON but do not parse
            // into a `Value`; the grammar check above covers them.
            if let Ok(parsed) = serde_json::from_slice::<Value>(&bytes) {
                assert_item_matches(item, &parsed);
            }
            assert_eq!(item_to_json(item).ok(), Some(bytes), "output is not stable");
        }
        Err(UnmarshalError::InvalidNumber { value, .. }) => {
            assert!(!is_decimal(&value), "{value:?} was rejected");
        }
        Err(UnmarshalError::TooDeep { .. }) => {
            assert!(
                height >= MAX_DEPTH,
                "height {height} was rejected as too deep"
            );
        }
        Err(other) => panic!("undocumented error {other}"),
    }
}
