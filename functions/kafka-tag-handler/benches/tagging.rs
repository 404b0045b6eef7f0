//! Per-record cost of decoding and tagging, next to a bare serde_json
//! parse + serialize of the same event.
//!
//! `cargo bench -p kafka-tag-handler` measures (optimised build);
//! `cargo test -p kafka-tag-handler --benches` only runs a few rounds to
//! check it still works.

// Printing the result is the point of a benchmark.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use kafka_tag_handler::rules::{RulesSource, Tagger};
use kafka_tag_handler::visit;

const EVENTS: &[&str] = &[
    r#"{"url":"https://shop.example/blog/launch?utm_campaign=spring&utm_source=newsletter&utm_medium=email","referrer":"https://mail.google.com/","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1","visitor_id":"v-1001","timestamp":"2024-07-28T16:19:51.238Z","screen":{"w":390,"h":844},"experiments":["a","b"]}"#,
    r#"{"page_url":"https://shop.example/de/products/sneaker-42?gclid=Cj0KCQ","referer":"https://www.google.de/","userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36","sessionId":"s-77","ts":1722183592000,"cart_value":89.9}"#,
    r#"{"url":"https://shop.example/","referrer":"https://news.ycombinator.com/item?id=1","user_agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)","visitor_id":"crawler"}"#,
];

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds = if measuring { 200_000 } else { 50 };
    let tagger = match Tagger::load(&RulesSource::Embedded) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("default rules do not compile: {e}");
            std::process::exit(1);
        }
    };
    let encoded: Vec<String> = EVENTS
        .iter()
        .map(|e| base64::engine::general_purpose::STANDARD.encode(e))
        .collect();
    let tagged_at = "2024-07-28T16:19:51.238Z";

    let baseline = time(rounds, || {
        for event in EVENTS {
            let value: serde_json::Value = serde_json::from_str(event).unwrap_or_default();
            black_box(serde_json::to_vec(&value).unwrap_or_default());
        }
    });
    let tagging = time(rounds, || {
        for text in &encoded {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(black_box(text))
                .unwrap_or_default();
            black_box(visit::tag_bytes(&bytes, &tagger, tagged_at).ok());
        }
    });
    let per = |d: Duration| d.as_nanos() as f64 / (rounds * EVENTS.len()) as f64;
    println!(
        "serde_json parse+serialize: {:>8.0} ns/record\nbase64 decode + tag:        {:>8.0} ns/record ({:.1}x){}",
        per(baseline),
        per(tagging),
        per(tagging) / per(baseline),
        if measuring { "" } else { "  [smoke run, not a measurement]" }
    );
}

fn time(rounds: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..rounds / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..rounds {
        f();
    }
    started.elapsed()
}
