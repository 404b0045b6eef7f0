use super::*;
use serde_json::json;

/// The units CloudWatch accepts (the `MetricDatum` reference).
const CLOUDWATCH_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks `document` against the EMF specification and returns what it
/// says: per metric name, its unit and values.
pub(crate) fn check_emf(document: &Value) -> Vec<(String, String, Vec<f64>)> {
    let root = document
        .as_object()
        .expect("an EMF document is a JSON object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let timestamp = aws["Timestamp"]
        .as_i64()
        .expect("_aws.Timestamp is an integer");
    assert!(
        timestamp > 1_500_000_000_000,
        "Timestamp is in milliseconds"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics is an array");
    assert!(!directives.is_empty());
    let mut seen = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"]
            .as_str()
            .expect("Namespace is a string");
        assert!((1..=255).contains(&namespace.len()) && !namespace.starts_with("AWS/"));
        for set in directive["Dimensions"]
            .as_array()
            .expect("Dimensions is an array")
        {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= MAX_DIMENSIONS, "at most 30 dimensions");
            for name in set {
                let name = name.as_str().expect("a dimension is named by a string");
                assert!(
                    root.get(name).is_some_and(Value::is_string),
                    "dimension {name} is a top-level string"
                );
            }
        }
        let metrics = directive["Metrics"]
            .as_array()
            .expect("Metrics is an array");
        assert!(
            metrics.len() <= MAX_METRICS_PER_DOCUMENT,
            "at most 100 metrics"
        );
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric has a Name");
            assert!((1..=255).contains(&name.len()));
            let unit = metric["Unit"].as_str().unwrap_or("None");
            assert!(CLOUDWATCH_UNITS.contains(&unit), "unit {unit}");
            let values = match &root[name] {
                Value::Number(n) => vec![n.as_f64().expect("a finite number")],
                Value::Array(values) => {
                    assert!(values.len() <= MAX_VALUES_PER_METRIC, "at most 100 values");
                    values
                        .iter()
                        .map(|v| v.as_f64().expect("values are numbers"))
                        .collect()
                }
                other => panic!("metric {name} is {other}, not a number or an array"),
            };
            assert!(
                !seen.iter().any(|(n, _, _)| n == name),
                "{name} defined twice"
            );
            seen.push((name.to_owned(), unit.to_owned(), values));
        }
    }
    seen
}

fn config(pairs: &[(&str, &str)]) -> Result<MetricsConfig, ConfigError> {
    MetricsConfig::from_env(&Env::from_pairs(pairs), "orders")
}

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(1_764_633_600_000).unwrap()
}

#[test]
fn counts_are_summed_and_durations_keep_every_value() {
    let mut metrics = Metrics::default();
    metrics.add("RecordsPublished", Unit::Count, 3.0);
    metrics.add("ProduceLatency", Unit::Milliseconds, 12.5);
    metrics.add("RecordsPublished", Unit::Count, 2.0);
    metrics.add("ProduceLatency", Unit::Milliseconds, 7.0);
    metrics.add("RecordsDeadLettered", Unit::Count, 0.0);
    let config = config(&[("AWS_LAMBDA_FUNCTION_NAME", "producer-fn")]).unwrap();
    let documents = metrics.documents(&config, at(), &[("requestId", json!("req-1"))]);
    assert_eq!(documents.len(), 1);
    let document = &documents[0];
    assert_eq!(
        check_emf(document),
        [
            ("RecordsPublished".to_owned(), "Count".to_owned(), vec![5.0]),
            (
                "ProduceLatency".to_owned(),
                "Milliseconds".to_owned(),
                vec![12.5, 7.0]
            ),
            (
                "RecordsDeadLettered".to_owned(),
                "Count".to_owned(),
                vec![0.0]
            ),
        ]
    );
    assert_eq!(document["_aws"]["Timestamp"], 1_764_633_600_000_i64);
    assert_eq!(
        document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        DEFAULT_NAMESPACE
    );
    assert_eq!(
        document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["service", "function"]])
    );
    assert_eq!(document["service"], "orders");
    assert_eq!(document["function"], "producer-fn");
    assert_eq!(document["requestId"], "req-1");
    assert_eq!(document["timestamp"], "2025-12-02T00:00:00.000Z");
}

#[test]
fn more_than_a_document_holds_goes_into_further_documents() {
    let mut metrics = Metrics::default();
    for i in 0..150 {
        // Metric names are `'static`; a test may leak a few.
        let name: &'static str = Box::leak(format!("Metric{i}").into_boxed_str());
        metrics.add(name, Unit::Count, 1.0);
    }
    for i in 0..250 {
        metrics.add("ProduceLatency", Unit::Milliseconds, f64::from(i));
    }
    let config = config(&[]).unwrap();
    let documents = metrics.documents(&config, at(), &[]);
    let read: Vec<_> = documents.iter().flat_map(check_emf).collect();
    // 100 counts; the other 50 with the first 100 durations; then the
    // other 150 durations, 100 at a time.
    assert_eq!(documents.len(), 4);
    let counted = read.iter().filter(|(_, unit, _)| unit == "Count").count();
    assert_eq!(counted, 150);
    let latencies: Vec<f64> = read
        .iter()
        .filter(|(name, _, _)| name == "ProduceLatency")
        .flat_map(|(_, _, values)| values.clone())
        .collect();
    assert_eq!(latencies, (0..250).map(f64::from).collect::<Vec<_>>());
}

#[test]
fn nothing_counted_writes_nothing() {
    let config = config(&[]).unwrap();
    assert!(Metrics::default().documents(&config, at(), &[]).is_empty());
}

#[test]
fn settings_choose_namespace_dimensions_and_the_switch() {
    let defaults = config(&[]).unwrap();
    assert!(defaults.enabled);
    assert_eq!(defaults.namespace, DEFAULT_NAMESPACE);
    assert_eq!(
        defaults.dimensions,
        [
            ("service".to_owned(), "orders".to_owned()),
            ("function".to_owned(), "local".to_owned())
        ]
    );
    let chosen = config(&[
        ("POWERTOOLS_METRICS_NAMESPACE", "Shop/Streams"),
        ("METRICS_DIMENSIONS", "service, stage=prod"),
    ])
    .unwrap();
    assert_eq!(chosen.namespace, "Shop/Streams");
    assert_eq!(
        chosen.dimensions,
        [
            ("service".to_owned(), "orders".to_owned()),
            ("stage".to_owned(), "prod".to_owned())
        ]
    );
    assert!(config(&[("METRICS_DIMENSIONS", "none")])
        .unwrap()
        .dimensions
        .is_empty());
    assert!(
        !config(&[("POWERTOOLS_METRICS_DISABLED", "true")])
            .unwrap()
            .enabled
    );
}

#[test]
fn settings_cloudwatch_would_refuse_stop_start_up() {
    let too_many: Vec<String> = (0..31).map(|i| format!("d{i}=v")).collect();
    let too_many = too_many.join(",");
    for (name, value, says) in [
        ("POWERTOOLS_METRICS_NAMESPACE", "AWS/Lambda", "AWS/"),
        ("METRICS_DIMENSIONS", "region", "neither"),
        ("METRICS_DIMENSIONS", "stage=", "1 to 1024"),
        ("METRICS_DIMENSIONS", "service,service", "twice"),
        ("METRICS_DIMENSIONS", too_many.as_str(), "at most 30"),
        ("POWERTOOLS_METRICS_DISABLED", "maybe", "true or false"),
    ] {
        let error = config(&[(name, value)]).unwrap_err().to_string();
        assert!(error.contains(name) && error.contains(says), "{error}");
    }
}

/// Lambda's log-level filter, as its guide describes it: a line's `level`
/// decides, and a line without a known one counts as INFO.
fn passes_lambda_filter(line: &Value, application_log_level: &str) -> bool {
    let rank = |level: &str| LEVELS.iter().position(|l| l.eq_ignore_ascii_case(level));
    let level = line["level"].as_str().and_then(rank).or(rank("INFO"));
    level >= rank(application_log_level)
}

#[test]
fn the_metrics_line_passes_the_log_filter_the_function_runs_under() {
    let mut metrics = Metrics::default();
    metrics.add("RecordsDeadLettered", Unit::Count, 1.0);
    for level in LEVELS {
        let config = config(&[("AWS_LAMBDA_LOG_LEVEL", &level.to_ascii_lowercase())]).unwrap();
        let document = &metrics.documents(&config, at(), &[])[0];
        assert!(passes_lambda_filter(document, level), "{level}: {document}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(document["timestamp"].as_str().unwrap()).is_ok()
        );
    }
    // Without the level, WARN would drop it: the test can tell.
    let mut bare = metrics.documents(&config(&[]).unwrap(), at(), &[])[0].clone();
    bare.as_object_mut().unwrap().remove("level");
    assert!(!passes_lambda_filter(&bare, "WARN"));
}

#[tokio::test]
async fn counts_go_to_the_invocation_being_handled_and_nowhere_else() {
    count("RecordsReceived", 4);
    let ((), metrics) = collect(async {
        count("RecordsReceived", 2);
        tokio::task::yield_now().await;
        record("ProduceLatency", Unit::Milliseconds, 3.0);
        count("RecordsReceived", 1);
    })
    .await;
    assert_eq!(metrics.total("RecordsReceived"), Some(3.0));
    assert_eq!(metrics.values("ProduceLatency"), [3.0]);
    let ((), again) = collect(async {}).await;
    assert!(again.is_empty());
}
