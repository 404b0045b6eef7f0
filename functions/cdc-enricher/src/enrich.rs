//! The message format and its enrichment, shared by the DoubleCloud and the
//! Firehose paths.
//!
//! A message holds one event per line (`\n`-separated; a trailing `\r` is
//! tolerated; blank lines are skipped). Each line is
//! `application/x-www-form-urlencoded` (WHATWG rules, as JavaScript's
//! `URLSearchParams`: `+` is a space, `%XX` is decoded, invalid UTF-8 after
//! decoding becomes U+FFFD) and the first occurrence of a key wins. Only two
//! keys matter:
//!
//! * `ts`: copied as text. It is the output's required key column, so a
//!   line without it (or with it empty) fails the whole message rather than
//!   sending a `null` key downstream (the reference sent `null`).
//! * `data`: a JSON object whose `payload`, `appid` and `identity` become
//!   the `data`, `appid` and `identity` outputs, each `null` when missing
//!   and copied as-is otherwise. When the parameter is absent or empty,
//!   `data` is `""` and the other two are `null`, as in the reference. When
//!   it is present but not a JSON object, the message fails.
//!
//! Everything else on the line (the reference's `ip=FILL_ME`, `useragent`)
//! is ignored: the IP comes from the function's configuration.

use std::fmt;

use lambda_stream_kit::redact::{json_error, JsonErrorSummary};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// One parsed event, before the IP is added.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichedEvent {
    /// The `ts` parameter, as text.
    pub ts: String,
    /// `data.payload`, or `""` when there was no `data` parameter.
    pub data: Value,
    /// `data.appid`.
    pub appid: Value,
    /// `data.identity`.
    pub identity: Value,
}

/// Why a message could not be enriched. The line number is 1-based and
/// counts every line, blank ones included, so it can be found in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line has no `ts` parameter, or an empty one.
    #[error("line {line}: no ts parameter (ts is the required key column)")]
    MissingTs {
        /// The line number.
        line: usize,
    },
    /// The `data` parameter is not a JSON object.
    #[error("line {line}: data parameter is not a JSON object: {reason}")]
    BadData {
        /// The line number.
        line: usize,
        /// The JSON parser's complaint, by category and position only:
        /// serde_json's own message would quote the data.
        reason: JsonErrorSummary,
    },
}

/// Parses every non-blank line of `message`. Any bad line fails the whole
/// message, so a record is either fully enriched or sent back untouched.
pub fn parse_message(message: &str) -> Result<Vec<EnrichedEvent>, LineError> {
    events(message).collect()
}

/// The events of `message`, parsed one line at a time as they are asked
/// for: a message of a million short lines is never a million events in
/// memory at once.
pub fn events(message: &str) -> impl Iterator<Item = Result<EnrichedEvent, LineError>> + '_ {
    message
        .split('\n')
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| parse_line(line.strip_suffix('\r').unwrap_or(line), index + 1))
}

/// Parses one non-blank line; `line_number` is only used in errors.
pub fn parse_line(line: &str, line_number: usize) -> Result<EnrichedEvent, LineError> {
    let mut ts = None;
    let mut data = None;
    for (key, value) in form_urlencoded::parse(line.as_bytes()) {
        match &*key {
            "ts" if ts.is_none() => ts = Some(value),
            "data" if data.is_none() => data = Some(value),
            _ => {}
        }
        if ts.is_some() && data.is_some() {
            break;
        }
    }
    let ts = match ts {
        Some(ts) if !ts.is_empty() => ts.into_owned(),
        _ => return Err(LineError::MissingTs { line: line_number }),
    };
    let fields = match data {
        Some(text) if !text.is_empty() => {
            serde_json::from_str::<DataFields>(&text).map_err(|e| LineError::BadData {
                line: line_number,
                reason: json_error(&e),
            })?
        }
        _ => DataFields {
            payload: Value::String(String::new()),
            ..DataFields::default()
        },
    };
    Ok(EnrichedEvent {
        ts,
        data: fields.payload,
        appid: fields.appid,
        identity: fields.identity,
    })
}

/// The three fields taken from the `data` JSON. Deserialized by hand so
/// that other keys are skipped without being built, and a repeated key
/// keeps its last value (as `JSON.parse` does) instead of being an error.
#[derive(Debug, Default)]
struct DataFields {
    payload: Value,
    appid: Value,
    identity: Value,
}

impl<'de> Deserialize<'de> for DataFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = DataFields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataFields, A::Error> {
                let mut fields = DataFields::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*key {
                        "payload" => fields.payload = map.next_value()?,
                        "appid" => fields.appid = map.next_value()?,
                        "identity" => fields.identity = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// An event with its IP, serialized as the enriched JSON object
/// `{"appid","data","identity","ip","ts"}` (the Firehose output line).
#[derive(Debug, Serialize)]
pub struct EnrichedJson<'a> {
    /// `data.appid`.
    pub appid: &'a Value,
    /// `data.payload`.
    pub data: &'a Value,
    /// `data.identity`.
    pub identity: &'a Value,
    /// The enrichment IP.
    pub ip: &'a str,
    /// The `ts` parameter.
    pub ts: &'a str,
}

impl EnrichedEvent {
    /// This event with `ip`, ready to serialize as one JSON object.
    pub fn as_json<'a>(&'a self, ip: &'a str) -> EnrichedJson<'a> {
        EnrichedJson {
            appid: &self.appid,
            data: &self.data,
            identity: &self.identity,
            ip,
            ts: &self.ts,
        }
    }

    /// This event with `ip`, serialized in the output column order
    /// `[ts, ip, data, appid, identity]`.
    pub fn as_columns<'a>(&'a self, ip: &'a str) -> ColumnValues<'a> {
        ColumnValues { event: self, ip }
    }
}

/// The output column values, serialized as a JSON array.
#[derive(Debug)]
pub struct ColumnValues<'a> {
    event: &'a EnrichedEvent,
    ip: &'a str,
}

impl Serialize for ColumnValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            &self.event.ts,
            self.ip,
            &self.event.data,
            &self.event.appid,
            &self.event.identity,
        )
            .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SAMPLE: &str = r#"ts=1722183591238&ip=FILL_ME&useragent=Mozilla/5.0 (X11; Linux x86_64)&data={"appid":"rand_id_27212","payload":{"EMAIL":"Laisha28@yahoo.com","MOBILE":"366-380-1466"},"identity":"Lucas_Dickinson@example.com"}"#;

    #[test]
    fn the_design_example_enriches_to_the_documented_json() {
        let event = parse_line(SAMPLE, 1).unwrap();
        assert_eq!(
            serde_json::to_string(&event.as_json("44.201.33.239")).unwrap(),
            r#"{"appid":"rand_id_27212","data":{"EMAIL":"Laisha28@yahoo.com","MOBILE":"366-380-1466"},"identity":"Lucas_Dickinson@example.com","ip":"44.201.33.239","ts":"1722183591238"}"#
        );
        assert_eq!(
            serde_json::to_value(event.as_columns("1.2.3.4")).unwrap(),
            json!(["1722183591238", "1.2.3.4",
                   {"EMAIL":"Laisha28@yahoo.com","MOBILE":"366-380-1466"},
                   "rand_id_27212", "Lucas_Dickinson@example.com"])
        );
    }

    #[test]
    fn plus_is_a_space_and_percent_escapes_are_decoded() {
        let event = parse_line(r#"ts=1%202&data={"appid":"a+b%26c"}"#, 1).unwrap();
        assert_eq!(event.ts, "1 2");
        assert_eq!(event.appid, json!("a b&c"));
    }

    #[test]
    fn the_first_occurrence_of_a_key_wins() {
        let event = parse_line(r#"ts=1&ts=2&data={"appid":"x"}&data=oops"#, 1).unwrap();
        assert_eq!(event.ts, "1");
        assert_eq!(event.appid, json!("x"));
    }

    #[test]
    fn a_repeated_json_key_keeps_its_last_value_like_json_parse() {
        let event = parse_line(r#"ts=1&data={"appid":"x","appid":"y"}"#, 1).unwrap();
        assert_eq!(event.appid, json!("y"));
    }

    #[test]
    fn missing_fields_become_null_and_a_missing_data_parameter_becomes_empty_text() {
        let event = parse_line(r#"ts=1&data={"appid":7}"#, 1).unwrap();
        assert_eq!(
            (event.data, event.appid, event.identity),
            (Value::Null, json!(7), Value::Null)
        );

        for line in ["ts=1", "ts=1&data="] {
            let event = parse_line(line, 1).unwrap();
            assert_eq!(
                (event.data, event.appid, event.identity),
                (json!(""), Value::Null, Value::Null),
                "{line}"
            );
        }
    }

    #[test]
    fn a_line_without_ts_fails_with_its_line_number() {
        assert_eq!(
            parse_message("ts=1\n\nts=&data={}"),
            Err(LineError::MissingTs { line: 3 })
        );
        assert_eq!(
            parse_line("data={}", 4),
            Err(LineError::MissingTs { line: 4 })
        );
    }

    #[test]
    fn data_that_is_not_a_json_object_fails() {
        for data in ["{oops", "5", "null", "\"text\"", "[1]"] {
            let err = parse_line(&format!("ts=1&data={data}"), 2).unwrap_err();
            assert!(
                matches!(err, LineError::BadData { line: 2, .. }),
                "{data}: {err}"
            );
        }
    }

    #[test]
    fn a_bad_data_parameter_is_described_without_quoting_it() {
        // serde_json would say: invalid type: string "hunter2-SECRET",
        // expected a JSON object.
        let err = parse_line("ts=1&data=\"hunter2-SECRET\"", 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: data parameter is not a JSON object: \
             unexpected JSON (data error at line 1, column 16)"
        );
        let err = parse_line("ts=1&data={\"appid\":hunter2}", 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: data parameter is not a JSON object: \
             invalid JSON (syntax error at line 1, column 10)"
        );
    }

    #[test]
    fn blank_lines_are_skipped_and_crlf_is_tolerated() {
        let events = parse_message("\nts=1\r\n  \r\nts=2\n\n").unwrap();
        assert_eq!(
            events.iter().map(|e| e.ts.as_str()).collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert_eq!(parse_message(""), Ok(vec![]));
    }

    #[test]
    fn big_integers_in_the_payload_stay_exact() {
        let event = parse_line(
            r#"ts=1&data={"payload":{"n":18446744073709551615,"m":-9223372036854775808}}"#,
            1,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&event.data).unwrap(),
            r#"{"m":-9223372036854775808,"n":18446744073709551615}"#
        );
    }
}
