use super::*;
use crate::telemetry::capture;

fn telemetry(pairs: &[(&str, &str)]) -> Telemetry {
    Telemetry::from_env(&Env::from_pairs(pairs)).unwrap()
}

fn context(request_id: &str, trace: Option<&str>) -> Context {
    let mut context = Context::default();
    context.request_id = request_id.into();
    context.xray_trace_id = trace.map(str::to_owned);
    context
}

#[tokio::test]
async fn every_line_of_an_invocation_carries_the_powertools_fields() {
    let telemetry = telemetry(&[
        ("AWS_LAMBDA_FUNCTION_NAME", "orders-producer"),
        ("POWERTOOLS_SERVICE_NAME", "orders"),
    ]);
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let first = context("req-1", Some(trace));
    let second = context("req-2", None);
    let ((), logs) = capture(async {
        let ((), metrics) = telemetry
            .observe(&first, async {
                tracing::warn!(reason = "bad", "record set aside")
            })
            .await;
        assert_eq!(metrics.total(names::COLD_START), Some(1.0));
        let ((), metrics) = telemetry
            .observe(&second, async { tracing::info!("batch done") })
            .await;
        assert_eq!(metrics.total(names::COLD_START), Some(0.0));
    })
    .await;
    let lines = logs.lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["service"], "orders");
    assert_eq!(lines[0]["function_name"], "orders-producer");
    assert_eq!(lines[0]["function_request_id"], "req-1");
    assert_eq!(lines[0]["xray_trace_id"], trace);
    assert_eq!(lines[0]["cold_start"], true);
    assert_eq!(lines[0]["reason"], "bad");
    assert_eq!(lines[1]["function_request_id"], "req-2");
    assert_eq!(lines[1]["cold_start"], false);
    assert!(lines[1].get("xray_trace_id").is_none());
    assert!(lines[1].get("sampling_rate").is_none());
}

#[test]
fn the_service_defaults_to_the_function_name() {
    let telemetry = telemetry(&[("AWS_LAMBDA_FUNCTION_NAME", "tagger")]);
    assert_eq!(telemetry.service, "tagger");
    assert_eq!(
        telemetry.metrics.dimensions[0],
        ("service".into(), "tagger".into())
    );
}

#[tokio::test]
async fn debug_lines_are_sampled_for_the_share_of_invocations_the_rate_says() {
    let ids: Vec<String> = (0..2_000).map(|i| format!("{i:08x}-request")).collect();
    let sampled_share = |rate: &str| {
        let telemetry = telemetry(&[(SAMPLE_RATE_VARIABLE, rate)]);
        ids.iter().filter(|id| telemetry.samples(id)).count() as f64 / ids.len() as f64
    };
    assert_eq!(sampled_share("0"), 0.0);
    assert_eq!(sampled_share("1"), 1.0);
    let share = sampled_share("0.1");
    assert!((0.07..0.13).contains(&share), "{share}");

    // The choice holds for the invocation's work, and ends with it.
    let telemetry = telemetry(&[(SAMPLE_RATE_VARIABLE, "1")]);
    let ((sampled_inside, _), _) = capture(telemetry.observe(&context("r", None), async {
        tracing::info!("work");
        debug_sampled()
    }))
    .await;
    assert!(sampled_inside);
    assert!(!debug_sampled());
}

#[test]
fn a_rate_outside_zero_to_one_stops_start_up() {
    for rate in ["1.5", "-0.1", "often"] {
        let error = Telemetry::from_env(&Env::from_pairs(&[(SAMPLE_RATE_VARIABLE, rate)]))
            .unwrap_err()
            .to_string();
        assert!(error.contains(SAMPLE_RATE_VARIABLE), "{error}");
    }
}

#[test]
fn the_metrics_document_names_the_request_and_the_trace() {
    let telemetry = telemetry(&[]);
    let mut metrics = Metrics::default();
    metrics.add(names::RECORDS_RECEIVED, Unit::Count, 2.0);
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let context = context("req-9", Some(trace));
    // `emit` writes to stdout; the document it writes is this one.
    let properties = [
        ("function_request_id", Value::from("req-9")),
        ("xray_trace_id", Value::from(trace)),
    ];
    let document = &metrics.documents(&telemetry.metrics, chrono::Utc::now(), &properties)[0];
    assert_eq!(document["function_request_id"], context.request_id.as_str());
    assert_eq!(document["xray_trace_id"], trace);
    assert_eq!(document["RecordsReceived"], 2.0);
}
