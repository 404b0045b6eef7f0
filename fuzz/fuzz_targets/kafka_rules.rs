//! The tag rules of `kafka-tag-handler`: `Tagger::from_text` on arbitrary
//! JSON rules files, then tagging a fixed set of page visits with whatever
//! compiled.
//!
//! Invariants:
//! * loading never panics and never hangs: a bad file is a `RulesError`;
//! * the built-in rules compile;
//! * compiled rules tag every visit with sorted, unique, non-empty tags
//!   (a placeholder that comes out empty drops its tag), and tagging is
//!   deterministic.

#![no_main]

use std::borrow::Cow;
use std::sync::Once;

use kafka_tag_handler::rules::{RulesSource, Tagger};
use kafka_tag_handler::visit::PageVisit;
use libfuzzer_sys::fuzz_target;

const PAGES: [&str; 6] = [
    "https://shop.example.com/blog/2024/spring-sale?utm_campaign=spring&utm_source=newsletter&q=x",
    "https://m.staging-eu.example.com/de/products/42?preview=true&gclid=abc&utm_medium=cpc",
    "/en/docs/getting-started?utm_campaign=&utm_campaign=b%20c",
    "http://localhost:8080/checkout/pay",
    "not a url at all",
    "https://[::1]/%E2%82%AC/%ZZ?%FF=%FE",
];

const REFERRERS: [Option<&str>; 4] = [
    None,
    Some("https://www.google.com/search?q=shoes"),
    Some("https://shop.example.com/cart"),
    Some("android-app://com.facebook.katana/"),
];

const USER_AGENTS: [Option<&str>; 4] = [
    None,
    Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"),
    Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    Some("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"),
];

fuzz_target!(|data: &[u8]| {
    static BUILT_IN: Once = Once::new();
    BUILT_IN.call_once(|| {
        check(&Tagger::load(&RulesSource::Embedded).expect("the built-in rules compile"));
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tagger) = Tagger::from_text(text, "fuzz input") {
        check(&tagger);
    }
});

fn check(tagger: &Tagger) {
    for (i, page) in PAGES.iter().enumerate() {
        let visit = PageVisit {
            url: Cow::Borrowed(page),
            referrer: REFERRERS[i % REFERRERS.len()].map(Cow::Borrowed),
            user_agent: USER_AGENTS[i % USER_AGENTS.len()].map(Cow::Borrowed),
            visitor_id: None,
            timestamp: None,
        };
        let tags = tagger.tags(&visit);
        assert!(
            tags.windows(2).all(|w| w[0] < w[1]),
            "tags not sorted and unique: {tags:?}"
        );
        assert!(tags.iter().all(|t| !t.is_empty()), "an empty tag: {tags:?}");
        assert_eq!(tagger.tags(&visit), tags, "tagging is not deterministic");
    }
}
