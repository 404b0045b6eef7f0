//! The CDC message format of `cdc-enricher`: `enrich::parse_message` and
//! `enrich::parse_line` (form-urlencoded lines, the `data` JSON).
//!
//! Invariants:
//! * `parse_message` gives exactly one event per non-blank line, each equal
//!   to what `parse_line` gives for that line, or the error of the first
//!   bad line (1-based, counting blank lines);
//! * every event has a non-empty `ts`;
//! * every event serializes to the documented enriched JSON object (keys
//!   `appid`, `data`, `identity`, `ip`, `ts`, with the IP and `ts` given)
//!   and to a five-column value array.

#![no_main]

use cdc_enricher::enrich::{parse_line, parse_message, EnrichedEvent, LineError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const IP: &str = "192.0.2.7";

fuzz_target!(|data: &[u8]| {
    let message = String::from_utf8_lossy(data);
    let lines: Vec<&str> = message.split('\n').collect();
    let non_blank: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
        .collect();

    match parse_message(&message) {
        Ok(events) => {
            assert_eq!(
                events.len(),
                non_blank.len(),
                "one event per non-blank line"
            );
            for (event, (number, line)) in events.iter().zip(&non_blank) {
                assert_eq!(parse_line(line, *number).as_ref(), Ok(event));
                check_event(event);
            }
        }
        Err(error) => {
            let number = match &error {
                LineError::MissingTs { line } | LineError::BadData { line, .. } => *line,
                other => panic!("undocumented error {other}"),
            };
            let position = non_blank
                .iter()
                .position(|(n, _)| *n == number)
                .expect("the error names a non-blank line");
            for (n, line) in &non_blank[..position] {
                assert!(
                    parse_line(line, *n).is_ok(),
                    "line {n} before the first bad one failed"
                );
            }
            let (_, line) = non_blank[position];
            assert_eq!(parse_line(line, number), Err(error));
        }
    }
});

fn check_event(event: &EnrichedEvent) {
    assert!(!event.ts.is_empty(), "an event without ts");
    let json = serde_json::to_value(event.as_json(IP)).expect("an enriched event serializes");
    let object = json.as_object().expect("the enriched event is an object");
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, ["appid", "data", "identity", "ip", "ts"]);
    assert_eq!(object["ip"], IP);
    assert_eq!(object["ts"], event.ts.as_str());
    assert_eq!(object["data"], event.data);

    let columns = serde_json::to_value(event.as_columns(IP)).expect("columns serialize");
    let Value::Array(columns) = columns else {
        panic!("columns are not an array");
    };
    assert_eq!(columns.len(), 5);
    assert_eq!(columns[0], event.ts.as_str());
    assert_eq!(columns[1], IP);
}
