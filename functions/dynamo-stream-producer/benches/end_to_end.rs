//! End to end against a real broker: DynamoDB stream batches through
//! [`function_handler`] to a Kafka topic, timed in process.
//!
//! Each timed call parses the event from its JSON text (as the runtime does
//! before calling the handler) and runs the handler on a producer that is
//! already connected, as in a warm execution environment; one untimed call
//! comes first. Logging goes to a sink through the same text formatter the
//! runtime installs, so the per-record acknowledgement lines are formatted
//! but not written.
//!
//! `scripts/bench.sh` runs it:
//!
//! ```text
//! cargo bench -p dynamo-stream-producer --bench end_to_end -- \
//!     --event FILE --broker 127.0.0.1:19092 --topic T --runs N --out RESULT.json \
//!     [--set KAFKA_TCP_NODELAY=false ...]
//! ```
//!
//! `--set NAME=VALUE` adds a variable to the function's environment.
//!
//! Without `--event` it does nothing, so `cargo bench` and
//! `cargo test --benches` need no broker.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line bench reports on the terminal"
)]

use std::process::ExitCode;
use std::time::Instant;

use dynamo_stream_producer::config::Config;
use dynamo_stream_producer::handler::{function_handler, App, StreamBatch};
use lambda_runtime::{Context, LambdaEvent};
use lambda_stream_kit::config::Env;

struct Args {
    event: String,
    broker: String,
    topic: String,
    runs: usize,
    out: String,
    settings: Vec<(String, String)>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut event = None;
    let mut broker = "127.0.0.1:19092".to_owned();
    let mut topic = "bench-producer".to_owned();
    let mut runs = 5usize;
    let mut out = None;
    let mut settings = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--event" => event = Some(value()?),
            "--broker" => broker = value()?,
            "--topic" => topic = value()?,
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--out" => out = Some(value()?),
            "--set" => {
                let setting = value()?;
                let (name, value) = setting
                    .split_once('=')
                    .ok_or(format!("--set {setting}: expected NAME=VALUE"))?;
                settings.push((name.to_owned(), value.to_owned()));
            }
            // cargo bench passes --bench; filters and other flags are not ours.
            _ => {}
        }
    }
    let Some(event) = event else { return Ok(None) };
    Ok(Some(Args {
        event,
        broker,
        topic,
        runs,
        out: out.unwrap_or_else(|| "/dev/stdout".to_owned()),
        settings,
    }))
}

async fn call(app: &App, text: &[u8]) -> Result<(), String> {
    let batch: StreamBatch = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let answer = function_handler(app, LambdaEvent::new(batch, Context::default()))
        .await
        .map_err(|e| e.to_string())?;
    if answer.batch_item_failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} batch item failure(s)",
            answer.batch_item_failures.len()
        ))
    }
}

async fn bench(args: &Args) -> Result<serde_json::Value, String> {
    let text = std::fs::read(&args.event).map_err(|e| format!("{}: {e}", args.event))?;
    let records = serde_json::from_slice::<StreamBatch>(&text)
        .map_err(|e| e.to_string())?
        .records
        .map_or(0, |r| r.len());
    let mut pairs = vec![
        ("KAFKA_BOOTSTRAP_SERVERS", args.broker.as_str()),
        ("TOPIC_NAME", args.topic.as_str()),
    ];
    pairs.extend(args.settings.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let env = Env::from_pairs(&pairs);
    let config = Config::from_env(&env).map_err(|e| e.to_string())?;
    let app = App::new(config);
    call(&app, &text).await?;
    let mut runs_ms = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        call(&app, &text).await?;
        runs_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(serde_json::json!({
        "impl": "rust",
        "event": args.event,
        "event_records": records,
        "records": records,
        "runs_ms": runs_ms,
        "sent": records * (args.runs + 1),
        "topic": args.topic,
        "settings": args.settings.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>(),
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!(
                "end_to_end: skipped (needs --event FILE and a broker; scripts/bench.sh runs it)"
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("end_to_end: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sink = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(sink);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("end_to_end: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(&args)) {
        Ok(result) => match std::fs::write(&args.out, result.to_string()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("end_to_end: {}: {e}", args.out);
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("end_to_end: {e}");
            ExitCode::FAILURE
        }
    }
}
