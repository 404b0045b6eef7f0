//! The event dispatch of `cdc-enricher`: `handler::handle` on any JSON
//! event (Function URL envelope, bare DoubleCloud batch, Firehose event,
//! anything else), with a fixed enrichment IP so nothing is fetched.
//!
//! Two enrichers run on every input: one with the token check turned off
//! (`ENRICHER_AUTH=none`, what `TokenSource::None` stands for) and one that
//! requires `Bearer local-dev-token` (the token of the Function-URL
//! fixture). Invariants:
//! * the event's shape picks the answer's kind, as the module doc's table
//!   says, and anything else is `UnrecognisedEvent`;
//! * a Function-URL call is always answered over HTTP (never a Lambda
//!   error) with 200, 401 (only when a token is required) or 500, and a
//!   JSON body; a 200 body has one result per record of the request body
//!   (counted where a `Value` can hold the body);
//! * a DoubleCloud or Firehose answer has one result per input record;
//! * every answer serializes to valid JSON.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use cdc_enricher::auth::SecretReader;
use cdc_enricher::config::{Config, OnFailure, TokenSource};
use cdc_enricher::handler::{handle, App, CallError, Response};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::config::Secret;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::Value;
use stream_fuzz::is_json;

fn enrichers() -> &'static [(bool, App); 2] {
    static ENRICHERS: OnceLock<[(bool, App); 2]> = OnceLock::new();
    ENRICHERS.get_or_init(|| {
        let enricher = |token: TokenSource| {
            let config = Config {
                output_table: None,
                enrich_ip: Some("203.0.113.9".parse().expect("an IP")),
                enrich_ip_url: "http://127.0.0.1:1/ip".into(),
                token,
                ip_timeout: Duration::from_millis(1),
                on_failure: OnFailure::DeadLetterTable,
            };
            let no_secrets: SecretReader =
                Box::new(|_, _| Box::pin(async { Err("no secrets while fuzzing".to_owned()) }));
            App::new(config, no_secrets).expect("an enricher")
        };
        [
            (false, enricher(TokenSource::None)),
            (
                true,
                enricher(TokenSource::Inline(Secret::new("local-dev-token"))),
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let (Ok(event), Ok(raw)) = (
        serde_json::from_slice::<Value>(data),
        serde_json::from_slice::<Box<RawValue>>(data),
    ) else {
        return;
    };
    for (token_required, enricher) in enrichers() {
        check(&event, &raw, *token_required, enricher);
    }
});

fn check(event: &Value, raw: &RawValue, token_required: bool, enricher: &App) {
    let answer = stream_fuzz::block_on(handle(
        enricher,
        LambdaEvent::new(raw.to_owned(), Context::default()),
    ));
    if let Ok(response) = &answer {
        let text = serde_json::to_vec(response).expect("the answer serializes");
        assert!(is_json(&text));
    }
    let Some(fields) = event.as_object() else {
        assert!(matches!(answer, Err(CallError::UnrecognisedEvent)));
        return;
    };
    let list_len = |value: Option<&Value>| value.and_then(Value::as_array).map(Vec::len);

    if fields.contains_key("requestContext") || fields.contains_key("rawPath") {
        let Ok(Response::FunctionUrl(response)) = answer else {
            panic!("a Function-URL call must get an HTTP answer, got {answer:?}");
        };
        let status = response.status_code;
        assert!(matches!(status, 200 | 401 | 500), "status {status}");
        assert!(
            token_required || status != 401,
            "refused without a token configured"
        );
        let body = response.body.expect("every HTTP answer has a body");
        assert!(is_json(body.as_bytes()), "the body is not JSON: {body}");
        // A body only a raw read takes (a number past f64, deep nesting)
        // is answered, but cannot be counted here.
        if let (200, Some(sent)) = (status, request_batch(event)) {
            let answered: Value = serde_json::from_str(&body).expect("a 200 body parses");
            assert_eq!(
                list_len(answered.get("Records")),
                list_len(sent.get("Records")),
                "one result per record"
            );
        }
    } else if fields.contains_key("Records") {
        match answer {
            Ok(Response::DoubleCloud(response)) => {
                assert_eq!(
                    Some(response.records.len()),
                    list_len(fields.get("Records"))
                );
            }
            Err(CallError::Batch(_)) => assert_eq!(list_len(fields.get("Records")), None),
            other => panic!("a DoubleCloud batch got {other:?}"),
        }
    } else if fields.contains_key("records")
        && (fields.contains_key("deliveryStreamArn") || fields.contains_key("invocationId"))
    {
        match answer {
            Ok(Response::Firehose(response)) => {
                assert_eq!(
                    Some(response.records.len()),
                    list_len(fields.get("records"))
                );
            }
            Err(CallError::Firehose(_)) => {}
            other => panic!("a Firehose event got {other:?}"),
        }
    } else {
        assert!(matches!(answer, Err(CallError::UnrecognisedEvent)));
    }
}

/// The DoubleCloud batch inside a Function-URL request, decoded the way the
/// envelope says.
fn request_batch(request: &Value) -> Option<Value> {
    let body = request.get("body")?.as_str()?;
    if request.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    } else {
        serde_json::from_str(body).ok()
    }
}
