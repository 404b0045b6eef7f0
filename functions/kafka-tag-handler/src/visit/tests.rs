use serde_json::json;

use super::*;
use crate::rules::Tagger;

const AT: &str = "2024-07-28T16:19:51.238Z";

fn tagger() -> Tagger {
    Tagger::from_text(
        r#"{"rules": [{"tag": "section:blog", "path": "/blog/**"}]}"#,
        "test.json",
    )
    .unwrap()
}

#[test]
fn every_documented_alias_is_recognised() {
    let v = PageVisit::from_json(
        br#"{"pageUrl":"https://a.example/","referer":"https://b.example/","ua":"curl/8","sessionId":42,"ts":1722183591238}"#,
    )
    .unwrap();
    assert_eq!(v.url, "https://a.example/");
    assert_eq!(v.referrer.as_deref(), Some("https://b.example/"));
    assert_eq!(v.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(v.visitor_id.as_deref(), Some("42"));
    assert_eq!(v.timestamp.as_deref(), Some("1722183591238"));

    let v = PageVisit::from_json(
        br#"{"page_url":"/x","userAgent":"u","visitorId":"v","time":"t","referrer":"r"}"#,
    )
    .unwrap();
    assert_eq!(
        (
            v.url.as_ref(),
            v.user_agent.as_deref(),
            v.visitor_id.as_deref(),
            v.timestamp.as_deref()
        ),
        ("/x", Some("u"), Some("v"), Some("t"))
    );
}

#[test]
fn the_first_listed_alias_wins_whatever_the_key_order() {
    let v = PageVisit::from_json(br#"{"pageUrl":"https://late.example/","url":"https://first.example/","session_id":"s","visitor_id":"v"}"#).unwrap();
    assert_eq!(v.url, "https://first.example/");
    assert_eq!(v.visitor_id.as_deref(), Some("v"));
}

#[test]
fn parsed_objects_and_bytes_give_the_same_visit() {
    let raw = br#"{"url":"https://a.example/\u00e9","user_agent":"x","other":{"deep":[1,2]}}"#;
    let value: Value = serde_json::from_slice(raw).unwrap();
    let Value::Object(map) = &value else { panic!() };
    assert_eq!(
        PageVisit::from_json(raw).unwrap(),
        PageVisit::from_object(map).unwrap()
    );
}

#[test]
fn anything_without_a_url_string_is_not_a_page_visit() {
    for (raw, reason) in [
        (&b"[1,2]"[..], "not a JSON object"),
        (b"\"https://a.example/\"", "not a JSON object"),
        (
            b"{\"page\":\"https://a.example/\"}",
            "no url field (one of url, page_url, pageUrl)",
        ),
        (b"{\"url\":{\"href\":\"x\"}}", "the url is not a string"),
        (b"{\"url\":null}", "the url is not a string"),
        (b"{\"url\":\"  \"}", "the url is empty"),
    ] {
        let err = PageVisit::from_json(raw).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::NotAPageVisit,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert!(
            err.message.contains(reason),
            "{} -> {}",
            String::from_utf8_lossy(raw),
            err.message
        );
    }
}

#[test]
fn text_that_is_not_json_is_reported_as_such() {
    for raw in [
        &b"url=https://a.example/"[..],
        b"{\"url\":\"x\"",
        b"{\"url\":\"x\"} trailing",
        b"\xff\xfe",
        // Found by fuzzing: invalid UTF-8 inside a field the scan skips.
        b"{\"url\":\"/\",\"x\":\"\xff\"}",
    ] {
        let err = PageVisit::from_json(raw).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::NotJson,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn tagging_keeps_the_original_bytes_and_appends_the_tags() {
    let raw = br#" {"z":1.50,"url":"https://a.example/blog/x","a":[true]} "#;
    let out = tag_bytes(raw, &tagger(), AT).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        r#"{"z":1.50,"url":"https://a.example/blog/x","a":[true],"tags":["channel:direct","section:blog"],"tagged_at":"2024-07-28T16:19:51.238Z"}"#
    );
}

#[test]
fn existing_tags_are_merged_not_duplicated() {
    let raw =
        br#"{"url":"https://a.example/blog/x","tags":["vip","section:blog"],"tagged_at":"old"}"#;
    let out: Value = serde_json::from_slice(&tag_bytes(raw, &tagger(), AT).unwrap()).unwrap();
    assert_eq!(
        out["tags"],
        json!(["channel:direct", "section:blog", "vip"])
    );
    assert_eq!(out["tagged_at"], AT);
    let again: Value = serde_json::from_slice(
        &tag_bytes(&serde_json::to_vec(&out).unwrap(), &tagger(), AT).unwrap(),
    )
    .unwrap();
    assert_eq!(again, out);
}

#[test]
fn connector_values_may_be_objects_or_json_text() {
    let from_object = tag_value(
        json!({"url": "https://a.example/blog/1", "n": 1}),
        &tagger(),
        AT,
    )
    .unwrap();
    let from_text = tag_text(
        r#"{"url": "https://a.example/blog/1", "n": 1}"#,
        &tagger(),
        AT,
    )
    .unwrap();
    assert_eq!(from_object, from_text);
    assert_eq!(from_object["n"], 1);
    assert_eq!(
        tag_text("nope", &tagger(), AT).unwrap_err().kind,
        ErrorKind::NotJson
    );
    assert_eq!(
        tag_value(json!([1]), &tagger(), AT).unwrap_err().kind,
        ErrorKind::NotAPageVisit
    );
}

#[test]
fn the_field_lookup_agrees_with_the_documented_names() {
    for (field, names) in FIELDS.iter().enumerate() {
        for (rank, name) in names.iter().enumerate() {
            assert_eq!(Found::wants(name), Some((field, rank)), "{name}");
        }
    }
    for other in ["URL", "tags", "tagged_at", "", "user-agent", "urls"] {
        assert_eq!(Found::wants(other), None, "{other}");
    }
}
