//! `mapping-runner`: Lambda's event source mappings and the Transferia
//! transfer engine, run locally against moto, the local broker and the
//! functions under `cargo lambda watch` (README, "The local pipeline").
//!
//! ```text
//! mapping-runner run [options] --map LOGICAL_ID=FUNCTION=SOURCE ...
//!     Polls each SOURCE (dynamodb:<stream-arn>, kinesis:<stream-name>,
//!     kafka:<topic>) and invokes FUNCTION with the batches the template's
//!     mapping LOGICAL_ID would make, acting on each answer as Lambda does.
//!     Runs until stopped; one JSON line per settled invocation on stdout.
//! mapping-runner transfer [options] --function NAME --records FILE
//!         [--buffer-bytes N] [--request FILE]
//!     One transfer-engine run: FILE's `Records` sent to NAME's Function URL
//!     (the request shaped like --request, default
//!     events/cdc-function-url.json) in buffer-sized calls, retried as the engine retries; prints where
//!     every change item went as one JSON line.
//!
//! options:
//!   --template PATH          template.yaml (default: ./template.yaml)
//!   --parameter KEY=VALUE    a template parameter (repeatable)
//!   --lambda HOST:PORT       cargo lambda watch (default 127.0.0.1:9000)
//!   --aws HOST:PORT          moto (default 127.0.0.1:5000)
//!   --broker HOST:PORT       Kafka (default 127.0.0.1:19092)
//!   --region NAME            (default us-east-1)
//!   --failure-bucket NAME    the bucket an S3 destination stands for
//!   --offsets PATH           Kafka offsets per consumer group (default .tmp/mapping-offsets.json)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use test_support::live::{self, Endpoints, LiveMapping, Source};
use test_support::stream_mapping::Template;
use test_support::transfer_engine::{self, CallAnswer};

#[derive(Debug)]
struct Options {
    command: String,
    template: PathBuf,
    parameters: Vec<(String, String)>,
    endpoints: Endpoints,
    offsets: PathBuf,
    maps: Vec<LiveMapping>,
    function: String,
    records: Option<PathBuf>,
    request: PathBuf,
    buffer_bytes: usize,
}

fn usage() -> String {
    let doc = include_str!("mapping_runner.rs");
    doc.lines()
        .skip_while(|l| !l.starts_with("//! ```text"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut args = args.into_iter();
    let command = args.next().ok_or("no command: run or transfer")?;
    if command != "run" && command != "transfer" {
        return Err(format!("unknown command {command:?}: run or transfer"));
    }
    let mut options = Options {
        command,
        template: PathBuf::from("template.yaml"),
        parameters: Vec::new(),
        endpoints: Endpoints {
            lambda: "127.0.0.1:9000".into(),
            aws: "127.0.0.1:5000".into(),
            broker: "127.0.0.1:19092".into(),
            region: "us-east-1".into(),
            failure_bucket: "stream-failures".into(),
        },
        offsets: PathBuf::from(".tmp/mapping-offsets.json"),
        maps: Vec::new(),
        function: String::new(),
        records: None,
        request: PathBuf::from("events/cdc-function-url.json"),
        buffer_bytes: 1 << 20,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--template" => options.template = value()?.into(),
            "--parameter" => {
                let v = value()?;
                let (k, v) = v
                    .split_once('=')
                    .ok_or(format!("--parameter {v}: KEY=VALUE"))?;
                options.parameters.push((k.into(), v.into()));
            }
            "--lambda" => options.endpoints.lambda = value()?,
            "--aws" => options.endpoints.aws = value()?,
            "--broker" => options.endpoints.broker = value()?,
            "--region" => options.endpoints.region = value()?,
            "--failure-bucket" => options.endpoints.failure_bucket = value()?,
            "--offsets" => options.offsets = value()?.into(),
            "--map" => {
                let v = value()?;
                let mut parts = v.splitn(3, '=');
                let (Some(id), Some(function), Some(source)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(format!("--map {v}: LOGICAL_ID=FUNCTION=SOURCE"));
                };
                options.maps.push(LiveMapping {
                    logical_id: id.into(),
                    function: function.into(),
                    source: Source::parse(source)?,
                });
            }
            "--function" => options.function = value()?,
            "--records" => options.records = Some(value()?.into()),
            "--request" => options.request = value()?.into(),
            "--buffer-bytes" => {
                let v = value()?;
                options.buffer_bytes = v.parse().map_err(|_| format!("--buffer-bytes {v}"))?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn read_json(path: &std::path::Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

async fn transfer(options: &Options) -> Result<Value, String> {
    let path = options
        .records
        .as_ref()
        .ok_or("transfer needs --records FILE")?;
    let batch = read_json(path)?;
    let records = batch["Records"]
        .as_array()
        .ok_or_else(|| format!("{}: no Records array", path.display()))?;
    if options.function.is_empty() {
        return Err("transfer needs --function NAME".into());
    }
    let request = read_json(&options.request)?;
    let endpoints = &options.endpoints;
    let target = format!("/2015-03-31/functions/{}/invocations", options.function);
    let result = transfer_engine::run_buffered(records, options.buffer_bytes, |body| {
        let target = target.clone();
        let request = &request;
        async move { call_function_url(endpoints, &target, request, body).await }
    })
    .await;
    Ok(json!({
        "transfer": options.function,
        "records": records.len(),
        "attempts": result.attempts,
        "emitted": result.emitted.len(),
        "tables": result.tables(),
        "dropped": result.dropped,
        "skipped": result.skipped,
        "failed": result.failed,
    }))
}

/// A Function URL call as Lambda hands it to the function (`request`
/// with the engine's body), and the HTTP answer the engine would get.
async fn call_function_url(
    endpoints: &Endpoints,
    target: &str,
    request: &Value,
    body: String,
) -> CallAnswer {
    let mut event = request.clone();
    event["body"] = json!(body);
    event["isBase64Encoded"] = json!(false);
    let answer = test_support::http_client::request(
        &endpoints.lambda,
        "POST",
        target,
        &[("Content-Type", "application/json")],
        event.to_string().as_bytes(),
        Duration::from_secs(35),
    )
    .await;
    match answer {
        Ok(answer) if answer.status == 200 => {
            let response: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            CallAnswer {
                status: response["statusCode"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(502),
                body: response["body"].as_str().unwrap_or_default().to_owned(),
            }
        }
        Ok(answer) => CallAnswer {
            status: 502,
            body: answer.text(),
        },
        Err(error) => CallAnswer {
            status: 504,
            body: error,
        },
    }
}

async fn main_result() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{}", usage());
        return Ok(());
    }
    let options = parse(args)?;
    if options.command == "transfer" {
        live::emit(&transfer(&options).await?);
        return Ok(());
    }
    let mut template = Template::read(&options.template)?;
    for (key, value) in &options.parameters {
        template = template.with_parameter(key, value);
    }
    if options.maps.is_empty() {
        return Err("run needs at least one --map".into());
    }
    if let Some(dir) = options.offsets.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let run = live::run(template, options.endpoints, options.maps, options.offsets);
    tokio::select! {
        ended = run => ended,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match main_result().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mapping-runner: {error}\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}
