//! The template's operating side (tracing, metrics settings, alarms and the
//! dashboard) against what the functions write: an alarm or a widget that
//! names a metric, a namespace or a dimension the code does not write would
//! watch nothing, silently.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use lambda_stream_kit::config::Env;
use lambda_stream_kit::telemetry::metrics::names;
use lambda_stream_kit::telemetry::Telemetry;
use serde_json::Value;
use test_support::stream_mapping::Template;

const FUNCTIONS: [&str; 4] = [
    "DynamoStreamProducerFunction",
    "KinesisEventLoggerFunction",
    "CdcEnricherFunction",
    "KafkaTagHandlerFunction",
];

fn template() -> Template {
    Template::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap()
}

/// The telemetry settings function `logical_id` starts with, deployed from
/// `template`: its environment plus the name Lambda gives it (what `!Ref`
/// of the function gives, here its logical id).
fn telemetry_of(template: &Template, logical_id: &str) -> Telemetry {
    let mut env = template.function_environment(logical_id).unwrap();
    env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), logical_id.into()));
    Telemetry::from_env(&Env::from_pairs(&env)).unwrap()
}

fn dimensions(alarm: &Value) -> Vec<(String, String)> {
    alarm["Dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["Name"].as_str().unwrap().to_owned(),
                d["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_function_is_traced_and_its_role_may_send_the_trace() {
    let template = template();
    for function in FUNCTIONS {
        let properties = template.properties(function).unwrap();
        assert_eq!(properties["Tracing"], "Active", "{function}");
        let role = properties["Role"].as_str().unwrap();
        let role = role.trim_start_matches("getatt:").trim_end_matches(".Arn");
        let policies = template.properties(role).unwrap()["Policies"].to_string();
        assert!(policies.contains("xray:PutTraceSegments"), "{role}");
    }
}

#[test]
fn the_dead_letter_alarms_read_the_metric_each_function_writes() {
    let template = template().with_parameter("Monitoring", "enabled");
    for (alarm, function) in [
        (
            "DynamoStreamProducerDeadLetteredAlarm",
            "DynamoStreamProducerFunction",
        ),
        ("CdcEnricherDeadLetteredAlarm", "CdcEnricherFunction"),
        (
            "KafkaTagHandlerDeadLetteredAlarm",
            "KafkaTagHandlerFunction",
        ),
    ] {
        assert!(template.deploys(alarm), "{alarm}");
        let telemetry = telemetry_of(&template, function);
        assert!(telemetry.metrics.enabled);
        let alarm = template.properties(alarm).unwrap();
        assert_eq!(alarm["Namespace"], telemetry.metrics.namespace.as_str());
        assert_eq!(alarm["MetricName"], names::RECORDS_DEAD_LETTERED);
        assert_eq!(dimensions(&alarm), telemetry.metrics.dimensions);
    }
}

#[test]
fn with_metrics_off_the_functions_write_none_and_no_alarm_waits_for_them() {
    let template = template()
        .with_parameter("Monitoring", "enabled")
        .with_parameter("Metrics", "disabled");
    for function in FUNCTIONS {
        assert!(
            !telemetry_of(&template, function).metrics.enabled,
            "{function}"
        );
    }
    assert!(!template.deploys("KafkaTagHandlerDeadLetteredAlarm"));
    assert!(template.deploys("KafkaTagHandlerErrorsAlarm"));
}

#[test]
fn monitoring_is_off_by_default_and_notifies_the_topic_when_given() {
    let template = template();
    let alarms = template.resources_of_type("AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 14, "{alarms:?}");
    assert!(alarms.iter().all(|alarm| !template.deploys(alarm)));
    assert!(!template.deploys("OperationsDashboard"));

    let topic = "arn:aws:sns:us-east-1:123456789012:on-call";
    let template = template
        .with_parameter("Monitoring", "enabled")
        .with_parameter("AlarmTopicArn", topic);
    for alarm in &alarms {
        if !template.deploys(alarm) {
            continue;
        }
        let properties = template.properties(alarm).unwrap();
        assert_eq!(
            properties["AlarmActions"],
            serde_json::json!([topic]),
            "{alarm}"
        );
        assert_eq!(
            properties["OKActions"],
            serde_json::json!([topic]),
            "{alarm}"
        );
    }
    // The offset lag alarm needs a Kafka trigger.
    assert!(!template.deploys("KafkaTagHandlerOffsetLagAlarm"));
    let with_trigger = template
        .with_parameter("TagSourceTopic", "page-visits")
        .with_parameter(
            "MskClusterArn",
            "arn:aws:kafka:us-east-1:123456789012:cluster/c/0a1b2c3d-4e5f",
        );
    assert!(with_trigger.deploys("KafkaTagHandlerOffsetLagAlarm"));
}

#[test]
fn the_dashboard_shows_only_metrics_that_are_written() {
    let template = template().with_parameter("Monitoring", "enabled");
    let body = template.properties("OperationsDashboard").unwrap()["DashboardBody"]
        .as_str()
        .unwrap()
        .to_owned();
    let body: Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    let telemetry = telemetry_of(&template, "KafkaTagHandlerFunction");
    let mut ours = 0;
    for widget in body["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().unwrap() {
            let row = metric.as_array().unwrap();
            let text = |i: usize| row[i].as_str().unwrap_or_default();
            match text(0) {
                "AWS/Lambda" => assert!(FUNCTIONS.contains(&text(3)), "{metric}"),
                "AWS/S3" => assert_eq!(text(1), "PutRequests"),
                namespace => {
                    ours += 1;
                    assert_eq!(namespace, telemetry.metrics.namespace);
                    assert!(names::ALL.contains(&text(1)), "{metric}");
                    assert_eq!(text(2), "service");
                    assert_eq!(text(3), telemetry.service);
                    assert_eq!(text(4), "function");
                    assert!(FUNCTIONS.contains(&text(5)), "{metric}");
                }
            }
        }
    }
    assert!(ours > 0);
}
