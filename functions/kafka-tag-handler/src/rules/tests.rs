use std::borrow::Cow;

use super::*;

fn tagger(json: &str) -> Tagger {
    Tagger::from_text(json, "test.json").unwrap()
}

/// Rules without the channel and device tags, to look at URL rules alone:
/// `rules` is the JSON array of URL rules.
fn url_rules(rules: &str) -> Tagger {
    tagger(&format!(
        r#"{{"rules": {rules}, "channel": {{"tag": null}}, "device": {{"tag": null, "bot_tag": null}}}}"#
    ))
}

fn visit(url: &str) -> PageVisit<'_> {
    PageVisit {
        url: Cow::Borrowed(url),
        referrer: None,
        user_agent: None,
        visitor_id: None,
        timestamp: None,
    }
}

fn tags_of(t: &Tagger, url: &str) -> Vec<String> {
    t.tags(&visit(url))
}

fn error(text: &str) -> String {
    Tagger::from_text(text, "my-rules.json")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_host_glob_tags_matching_hosts_case_insensitively() {
    let t = url_rules(r#"[{"tag": "site:shop", "host": "shop.*"}]"#);
    assert_eq!(tags_of(&t, "https://SHOP.example/x"), ["site:shop"]);
    assert!(tags_of(&t, "https://www.shop.example/x").is_empty());
    assert!(tags_of(&t, "/relative/path").is_empty());
}

#[test]
fn a_host_regex_can_fill_the_tag_from_a_named_group() {
    let t = url_rules(
        r#"[{"tag": "tenant:{tenant}", "host_regex": "^(?P<tenant>[a-z]+)\\.app\\.example$"}]"#,
    );
    assert_eq!(tags_of(&t, "https://acme.app.example/"), ["tenant:acme"]);
    assert!(tags_of(&t, "https://app.example/").is_empty());
}

#[test]
fn a_path_glob_tags_matching_paths() {
    let t = url_rules(r#"[{"tag": "section:blog", "path": "/blog{,/**}"}]"#);
    assert_eq!(tags_of(&t, "https://x.example/blog"), ["section:blog"]);
    assert_eq!(
        tags_of(&t, "https://x.example/blog/2024/post?a=1"),
        ["section:blog"]
    );
    assert_eq!(tags_of(&t, "/blog/post"), ["section:blog"]);
    assert!(tags_of(&t, "https://x.example/blogger").is_empty());
}

#[test]
fn a_path_regex_fills_the_tag_from_a_named_group() {
    let t = url_rules(r#"[{"tag": "product:{sku}", "path_regex": "^/p/(?P<sku>[A-Z0-9-]+)$"}]"#);
    assert_eq!(tags_of(&t, "https://x.example/p/AB-12"), ["product:AB-12"]);
    assert!(tags_of(&t, "https://x.example/p/ab-12").is_empty());
}

#[test]
fn a_present_query_parameter_gives_its_tag() {
    let t = url_rules(r#"[{"tag": "search-term", "query": "q"}]"#);
    assert_eq!(tags_of(&t, "https://x.example/s?q=shoes"), ["search-term"]);
    assert_eq!(tags_of(&t, "https://x.example/s?q"), ["search-term"]);
    assert!(tags_of(&t, "https://x.example/s?query=shoes").is_empty());
}

#[test]
fn a_query_parameter_equal_to_a_value_gives_its_tag() {
    let t = url_rules(
        r#"[{"tag": "preview", "query": "preview", "equals": true}, {"tag": "v2", "query": "v", "equals": 2}]"#,
    );
    assert_eq!(
        tags_of(&t, "https://x.example/?preview=true&v=2"),
        ["preview", "v2"]
    );
    assert!(tags_of(&t, "https://x.example/?preview=false&v=3").is_empty());
}

#[test]
fn a_query_value_is_interpolated_decoded_and_once_per_occurrence() {
    let t = url_rules(r#"[{"tag": "campaign:{value}", "query": "utm_campaign"}]"#);
    assert_eq!(
        tags_of(&t, "https://x.example/?utm_campaign=spring%20sale&utm_campaign=b+c&utm_campaign=spring%20sale"),
        ["campaign:b c", "campaign:spring sale"]
    );
    assert!(tags_of(&t, "https://x.example/?utm_campaign=").is_empty());
}

#[test]
fn all_conditions_of_a_rule_must_hold() {
    let t = url_rules(r#"[{"tag": "blog-campaign", "path": "/blog/**", "query": "utm_campaign"}]"#);
    assert_eq!(
        tags_of(&t, "https://x.example/blog/a?utm_campaign=x"),
        ["blog-campaign"]
    );
    assert!(tags_of(&t, "https://x.example/blog/a").is_empty());
    assert!(tags_of(&t, "https://x.example/shop?utm_campaign=x").is_empty());
}

#[test]
fn channel_and_device_tags_are_added_and_sorted_with_the_rest() {
    let t = Tagger::load(&RulesSource::Embedded).unwrap();
    let v = PageVisit {
        url: Cow::Borrowed(
            "https://shop.example/blog/launch?utm_campaign=spring&utm_source=newsletter",
        ),
        referrer: Some(Cow::Borrowed("https://www.google.de/")),
        user_agent: Some(Cow::Borrowed(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148",
        )),
        visitor_id: None,
        timestamp: None,
    };
    assert_eq!(
        t.tags(&v),
        [
            "campaign:spring",
            "channel:search",
            "device:mobile",
            "section:blog",
            "source:newsletter"
        ]
    );
}

#[test]
fn bots_get_the_bot_tag() {
    let t = Tagger::load(&RulesSource::Embedded).unwrap();
    let mut v = visit("https://shop.example/");
    v.user_agent = Some(Cow::Borrowed(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ));
    assert_eq!(
        t.tags(&v),
        ["bot", "channel:direct", "device:desktop", "page:home"]
    );
}

#[test]
fn the_readme_example_gives_the_tags_it_shows() {
    let t = tagger(
        r#"{
  "rules": [
    {"tag": "section:blog", "path": "/blog{,/**}"},
    {"tag": "product:{sku}", "path_regex": "^/p/(?P<sku>[A-Z0-9-]+)$"},
    {"tag": "campaign:{value}", "query": "utm_campaign"},
    {"tag": "from-newsletter", "query": "utm_source", "equals": "newsletter"}
  ],
  "channel": {"internal_hosts": ["shop.example"]}
}"#,
    );
    let v = PageVisit {
        url: Cow::Borrowed(
            "https://shop.example/p/AB-12?utm_campaign=spring&utm_source=newsletter",
        ),
        referrer: Some(Cow::Borrowed("https://www.google.de/")),
        user_agent: Some(Cow::Borrowed(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148",
        )),
        visitor_id: None,
        timestamp: None,
    };
    assert_eq!(
        t.tags(&v),
        [
            "campaign:spring",
            "channel:search",
            "device:mobile",
            "from-newsletter",
            "product:AB-12"
        ]
    );
}

#[test]
fn the_default_rules_compile_and_cover_the_usual_sections() {
    let t = Tagger::load(&RulesSource::Embedded).unwrap();
    let url_tags = |url: &str| -> Vec<String> {
        tags_of(&t, url)
            .into_iter()
            .filter(|tag| !tag.starts_with("channel:"))
            .collect()
    };
    assert_eq!(url_tags("https://shop.example/"), ["page:home"]);
    assert_eq!(url_tags("https://shop.example/de/checkout"), ["lang:de"]);
    assert_eq!(
        url_tags("https://m.shop.example/checkout/pay"),
        ["funnel:checkout", "site:mobile-web"]
    );
    assert_eq!(
        url_tags("http://localhost:3000/docs/a"),
        ["env:local", "section:docs"]
    );
    assert_eq!(
        url_tags("https://shop-staging.example/cart"),
        ["env:staging", "funnel:cart"]
    );
    assert_eq!(
        url_tags("https://shop.example/?preview=true"),
        ["page:home", "preview"]
    );
}

#[test]
fn syntax_errors_name_the_file_line_and_column() {
    let err = Tagger::from_text(
        "{\"rules\": [\n  {\"tag\": \"a\", \"path\": [\"unclosed\"\n",
        "my-rules.json",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("rules file my-rules.json: "), "{text}");
    assert!(text.contains("line "), "{text}");
    assert!(
        matches!(err, RulesError::Parse { line: Some(_), .. }),
        "{err:?}"
    );
}

#[test]
fn unknown_keys_name_the_rule_and_line() {
    let text = error("{\"rules\": [\n  {\"tag\": \"a\", \"path\": \"/a\"},\n  {\"tag\": \"b\", \"pth\": \"/b\"}\n]}");
    assert!(
        text.contains("rules[1]") && text.contains("unknown field `pth`"),
        "{text}"
    );
    assert!(text.contains("line 3"), "{text}");
}

#[test]
fn wrong_types_name_the_place_line_and_column() {
    let text = error("{\"rules\": [\n  {\"tag\": \"a\", \"path\": 3}\n]}");
    assert!(text.contains("rules[0].path"), "{text}");
    assert!(text.contains("line 2 column"), "{text}");
}

#[test]
fn text_after_the_rules_object_is_an_error() {
    let text = error("{\"rules\": []} {}");
    assert!(text.contains("trailing characters"), "{text}");
}

#[test]
fn bad_patterns_name_the_rule_index_and_tag() {
    let text = error(
        r#"{"rules": [{"tag": "ok", "path": "/a"}, {"tag": "broken", "path_regex": "^/(unclosed"}]}"#,
    );
    assert!(text.contains("rules[1] (tag \"broken\")"), "{text}");
    assert!(text.contains("path pattern"), "{text}");
    let text = error(r#"{"rules": [{"tag": "g", "host": "{a,b"}]}"#);
    assert!(text.contains("rules[0] (tag \"g\"): host glob"), "{text}");
}

#[test]
fn rules_that_cannot_work_are_rejected_with_their_index() {
    let cases = [
        (r#"[{"tag": "a"}]"#, "at least one of"),
        (
            r#"[{"tag": "a", "path": "/a", "path_regex": "^/a"}]"#,
            "either `path` or `path_regex`",
        ),
        (
            r#"[{"tag": "a", "equals": "x", "path": "/a"}]"#,
            "`equals` needs `query`",
        ),
        (
            r#"[{"tag": "c:{value}", "path": "/a"}]"#,
            "unknown placeholder {value}",
        ),
        (
            r#"[{"tag": "c:{sku}", "path_regex": "^/p/(?P<id>.+)"}]"#,
            "unknown placeholder {sku}",
        ),
    ];
    for (rules, expected) in cases {
        let message = error(&format!(r#"{{"rules": {rules}}}"#));
        assert!(
            message.contains("rules[0]") && message.contains(expected),
            "{message}"
        );
    }
}

#[test]
fn section_templates_are_checked_too() {
    let text = error(r#"{"channel": {"tag": "ch:{chanel}"}}"#);
    assert!(
        text.contains("channel.tag") && text.contains("{chanel}"),
        "{text}"
    );
    let text = error(r#"{"device": {"bot_tag": "bot:{device}"}}"#);
    assert!(text.contains("device.bot_tag"), "{text}");
}

#[test]
fn a_file_path_is_read_by_extension_and_errors_name_it() {
    let dir = std::env::temp_dir().join(format!("kafka-tag-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("rules.json");
    std::fs::write(&json, r#"{"rules": [{"tag": "x", "path": "/x"}]}"#).unwrap();
    assert!(Tagger::load(&RulesSource::File(json)).is_ok());
    assert!(Tagger::load(&RulesSource::File(dir.join("RULES.JSON")))
        .is_err_and(|e| matches!(e, RulesError::Read { .. })));
    // A YAML file of earlier versions is refused by its name, before its
    // text could give a puzzling JSON syntax error.
    let yaml = dir.join("rules.yaml");
    std::fs::write(&yaml, "rules:\n  - {tag: x, path: /x}\n").unwrap();
    let err = Tagger::load(&RulesSource::File(yaml))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rules.yaml") && err.contains("must be named .json"),
        "{err}"
    );
    let missing = dir.join("missing.json");
    let err = Tagger::load(&RulesSource::File(missing))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read rules file") && err.contains("missing.json"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_bad_rules_fixture_stops_start_up_naming_its_place() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/bad/kafka-rules-invalid.json");
    let err = Tagger::load(&RulesSource::File(path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("kafka-rules-invalid.json"), "{err}");
    assert!(err.contains("rules[2] (tag \"lang:{lang}\")"), "{err}");
    assert!(err.contains("unknown placeholder {lang}"), "{err}");
}
