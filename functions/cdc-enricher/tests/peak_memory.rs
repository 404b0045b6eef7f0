//! Peak memory of the worst inputs Lambda can deliver: 6 MB requests of the
//! shortest lines, through the Function URL, directly and from Firehose.
//!
//! Its own test binary, with a single test, so the process's high-water
//! mark (`VmHWM` in `/proc/self/status`) is this test's alone. The limit is
//! the smallest Lambda memory size the function should survive at, 128 MB.

// Helpers outside the test function panic only as failed assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use cdc_enricher::config::Config;
use cdc_enricher::handler::{handle, App, Response};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::config::Env;
use serde_json::{json, Value};

/// Lambda's limit for a synchronous request, as for the response.
const REQUEST_LIMIT: usize = 6_291_456;

/// The smallest Lambda memory size, in bytes.
const MEMORY_LIMIT: u64 = 128 * 1024 * 1024;

fn enricher() -> App {
    let env = Env::from_pairs(&[("ENRICH_IP", "44.201.33.239"), ("ENRICHER_AUTH", "none")]);
    let no_secrets: cdc_enricher::auth::SecretReader =
        Box::new(|_, _| Box::pin(async { Err("no secrets here".to_owned()) }));
    App::new(Config::from_env(&env).unwrap(), no_secrets).unwrap()
}

/// Builds a request around a message.
type Shape = fn(&str) -> Value;

fn batch(message: &str) -> Value {
    json!({"Records": [{
        "cdc": {"commitTime": 1, "kind": "insert", "table": "t",
                "columnnames": ["topic", "value"], "columnvalues": ["t", message],
                "table_schema": [{"name": "topic", "type": "utf8"}, {"name": "value", "type": "utf8"}]},
        "cdc_split": null, "kinesis": null, "result": "", "eventSource": "CDC",
        "eventID": "1.0", "invokeIdentityArn": "tm", "eventVersion": "1.0",
        "eventName": "dt:cdc:change_item", "eventSourceARN": "", "awsRegion": ""}]})
}

fn function_url(message: &str) -> Value {
    json!({"version": "2.0", "rawPath": "/", "headers": {"content-type": "application/json"},
           "requestContext": {"http": {"method": "POST"}},
           "isBase64Encoded": false, "body": batch(message).to_string()})
}

fn firehose(message: &str) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(message);
    json!({"invocationId": "i", "deliveryStreamArn": "arn",
           "records": [{"recordId": "r", "approximateArrivalTimestamp": 1, "data": data}]})
}

/// The largest request of `line` repeated that stays within Lambda's
/// request limit, as the bytes the runtime receives.
fn request(line: &str, shape: Shape) -> Vec<u8> {
    let probe = serde_json::to_vec(&shape(&line.repeat(1000)))
        .unwrap()
        .len();
    let per_thousand = serde_json::to_vec(&shape(&line.repeat(2000)))
        .unwrap()
        .len()
        - probe;
    let lines = (REQUEST_LIMIT - (probe - per_thousand)) * 1000 / per_thousand;
    let bytes = serde_json::to_vec(&shape(&line.repeat(lines))).unwrap();
    assert!(bytes.len() <= REQUEST_LIMIT && bytes.len() > REQUEST_LIMIT - 10_000);
    bytes
}

fn high_water_mark() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test]
async fn six_megabytes_of_the_shortest_lines_fit_in_128_mb() {
    let enricher = enricher();
    let shapes: [(&str, Shape); 3] = [
        ("function-url", function_url),
        ("direct", batch),
        ("firehose", firehose),
    ];
    for line in ["1\n", "ts=1\n"] {
        for (name, shape) in shapes {
            let bytes = request(line, shape);
            // Parsed from bytes, kept alive during the call, as the runtime does.
            let payload: Box<serde_json::value::RawValue> = serde_json::from_slice(&bytes).unwrap();
            let answer = handle(&enricher, LambdaEvent::new(payload, Context::default())).await;
            let size = answer
                .as_ref()
                .map(|a| serde_json::to_vec(a).unwrap().len())
                .unwrap_or(0);
            assert!(size <= REQUEST_LIMIT, "{name} {line:?}: {size}-byte answer");
            eprintln!(
                "{name} {line:?}: {} request bytes, answer {}",
                bytes.len(),
                match &answer {
                    Ok(Response::FunctionUrl(http)) => {
                        format!("HTTP {} in {size} bytes", http.status_code)
                    }
                    Ok(_) => format!("{size} bytes"),
                    Err(e) => format!("refused: {e}"),
                }
            );
            drop(bytes);
        }
    }
    let Some(peak) = high_water_mark() else {
        eprintln!("no /proc/self/status: peak memory not measured");
        return;
    };
    eprintln!("peak RSS {} MiB", peak / (1024 * 1024));
    assert!(peak < MEMORY_LIMIT, "peak RSS {peak} bytes");
}
