//! What each `KAFKA_COMPRESSION` codec costs and saves: CPU per record and
//! bytes on the wire per record, producing a JSON-lines sample through
//! [`KafkaProducer`] to a real broker.
//!
//! Each line of `--records` is `{"key": "...", "value": {...}}`; the value
//! goes out as compact JSON. For every codec the producer (a fresh one, so
//! each codec pays its own connection) sends the whole sample once untimed,
//! then `--runs` times timed. CPU is this thread's time on CPU
//! (`/proc/thread-self/schedstat`, in nanoseconds), and the runtime is
//! single-threaded, so it covers encoding, compression and the producer's
//! I/O, relay included. Bytes on the wire come from the delay line the
//! broker is reached through (`--stats`, the file `delay-line --stats`
//! keeps), read before and after the timed runs.
//!
//! `scripts/bench.sh` runs it:
//!
//! ```text
//! cargo bench -p lambda-stream-kit --bench codecs -- --records FILE.jsonl \
//!     --broker 127.0.0.1:PORT --topic T --stats STATS.json --runs N --out RESULT.json
//! ```
//!
//! Without `--records` it does nothing, so `cargo bench` and
//! `cargo test --benches` need no broker.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line bench reports on the terminal"
)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::{KafkaConfig, KafkaProducer, OutgoingRecord};
use serde_json::{json, Value};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

struct Args {
    records: String,
    broker: String,
    topic: String,
    stats: String,
    runs: usize,
    out: String,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut records = None;
    let mut broker = None;
    let mut topic = None;
    let mut stats = None;
    let mut runs = 10usize;
    let mut out = "/dev/stdout".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--records" => records = Some(value()?),
            "--broker" => broker = Some(value()?),
            "--topic" => topic = Some(value()?),
            "--stats" => stats = Some(value()?),
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--out" => out = value()?,
            // cargo bench passes --bench; filters and other flags are not ours.
            _ => {}
        }
    }
    let Some(records) = records else {
        return Ok(None);
    };
    Ok(Some(Args {
        records,
        broker: broker.ok_or("--broker is needed")?,
        topic: topic.ok_or("--topic is needed")?,
        stats: stats.ok_or("--stats is needed")?,
        runs,
        out,
    }))
}

fn read_sample(path: &str) -> Result<Vec<OutgoingRecord>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let line: Value = serde_json::from_str(line).map_err(|e| format!("{path}: {e}"))?;
            Ok(OutgoingRecord {
                key: line["key"].as_str().map(|k| k.as_bytes().to_vec()),
                value: Some(line["value"].to_string().into_bytes()),
                ..Default::default()
            })
        })
        .collect()
}

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_ns() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .map_err(|e| format!("/proc/thread-self/schedstat: {e}"))?;
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("/proc/thread-self/schedstat: unexpected {text:?}"))
}

/// Client-to-broker bytes the delay line has relayed so far. The file is
/// rewritten within 200 ms of a change, so callers wait before reading.
fn bytes_to_broker(stats: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(stats).map_err(|e| format!("{stats}: {e}"))?;
    let stats: Value = serde_json::from_str(&text).map_err(|e| format!("{stats}: {e}"))?;
    stats["bytes_to_broker"]
        .as_u64()
        .ok_or_else(|| "the stats file has no bytes_to_broker".to_owned())
}

async fn settled_bytes(stats: &str) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(600)).await;
    bytes_to_broker(stats)
}

async fn send(
    producer: &KafkaProducer,
    topic: &str,
    sample: &[OutgoingRecord],
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let outcomes = producer.produce(topic, sample.to_vec(), deadline).await;
    match outcomes.iter().find_map(|o| o.as_ref().err()) {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}

async fn bench_codec(args: &Args, codec: &str, sample: &[OutgoingRecord]) -> Result<Value, String> {
    let env = Env::from_pairs(&[
        ("KAFKA_BOOTSTRAP_SERVERS", args.broker.as_str()),
        ("KAFKA_COMPRESSION", codec),
    ]);
    let config = KafkaConfig::from_env(&env).map_err(|e| e.to_string())?;
    let producer = KafkaProducer::new(config);
    send(&producer, &args.topic, sample).await?;
    let bytes_before = settled_bytes(&args.stats).await?;
    let mut cpu_ms = Vec::with_capacity(args.runs);
    let mut wall_ms = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let (cpu, wall) = (thread_cpu_ns()?, Instant::now());
        send(&producer, &args.topic, sample).await?;
        wall_ms.push(wall.elapsed().as_secs_f64() * 1e3);
        cpu_ms.push((thread_cpu_ns()? - cpu) as f64 / 1e6);
    }
    let bytes = settled_bytes(&args.stats).await? - bytes_before;
    let sent = (sample.len() * args.runs) as f64;
    Ok(json!({
        "codec": codec,
        "records_per_call": sample.len(),
        "cpu_ms": cpu_ms,
        "wall_ms": wall_ms,
        "wire_bytes_per_record": bytes as f64 / sent,
    }))
}

async fn bench(args: &Args) -> Result<Value, String> {
    let sample = read_sample(&args.records)?;
    if sample.is_empty() {
        return Err(format!("{}: no records", args.records));
    }
    let payload: usize = sample.iter().map(OutgoingRecord::size).sum();
    let mut codecs = Vec::new();
    for codec in CODECS {
        codecs.push(bench_codec(args, codec, &sample).await?);
    }
    Ok(json!({
        "records": args.records,
        "payload_bytes_per_record": payload as f64 / sample.len() as f64,
        "runs": args.runs,
        "codecs": codecs,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!(
                "codecs: skipped (needs --records FILE and a broker; scripts/bench.sh runs it)"
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("codecs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("codecs: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(&args)) {
        Ok(result) => match std::fs::write(&args.out, result.to_string()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("codecs: {}: {e}", args.out);
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("codecs: {e}");
            ExitCode::FAILURE
        }
    }
}
