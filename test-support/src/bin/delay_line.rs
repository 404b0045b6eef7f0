//! A delay line in front of a broker, for the benchmarks: every byte each
//! way arrives a fixed time after it was sent, so that peers in any
//! language (the Node.js producers too) cross the same network as the
//! Rust tests do. It is the tests' [`FaultProxy`] under
//! [`Fault::Latency`], counting as it goes.
//!
//! ```text
//! delay-line --listen 127.0.0.1:PORT --upstream HOST:PORT --one-way-ms F [--stats FILE]
//! ```
//!
//! It runs until SIGTERM or SIGINT. With `--stats` it keeps FILE up to date
//! (replaced whole, at most every 200 ms and only when something changed,
//! and once more on exit) with
//! `{"bytes_to_broker": N, "bytes_to_client": N, "requests": {"0": n, "3": n, …}, "connections": n}`,
//! requests counted by Kafka API key.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use test_support::{Fault, FaultProxy, Traffic};

const USAGE: &str =
    "usage: delay-line --listen HOST:PORT --upstream HOST:PORT --one-way-ms F [--stats FILE]";

/// How often the stats file may be rewritten.
const STATS_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct Args {
    listen: String,
    upstream: String,
    one_way: Duration,
    stats: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut upstream, mut one_way, mut stats) = (None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?),
            "--upstream" => upstream = Some(value()?),
            "--one-way-ms" => {
                let text = value()?;
                let ms: f64 = text
                    .parse()
                    .map_err(|_| format!("--one-way-ms {text}: not a number"))?;
                let delay = Duration::try_from_secs_f64(ms / 1000.0)
                    .map_err(|_| format!("--one-way-ms {text}: not a duration"))?;
                one_way = Some(delay);
            }
            "--stats" => stats = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let missing = |name: &str| format!("{name} is required\n{USAGE}");
    Ok(Args {
        listen: listen.ok_or_else(|| missing("--listen"))?,
        upstream: upstream.ok_or_else(|| missing("--upstream"))?,
        one_way: one_way.ok_or_else(|| missing("--one-way-ms"))?,
        stats,
    })
}

/// Replaces `path` with `traffic`, through a temporary file so that a
/// reader never sees half of it.
fn write_stats(path: &Path, traffic: &Traffic) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let json = serde_json::to_vec(traffic).map_err(std::io::Error::other)?;
    std::fs::write(&temporary, json)?;
    std::fs::rename(&temporary, path)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let proxy = match FaultProxy::bind(args.listen.as_str(), args.upstream.clone()).await {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("delay-line: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    proxy.set(Fault::Latency(args.one_way));
    eprintln!(
        "delay-line: {} -> {}, {:?} each way",
        args.listen, args.upstream, args.one_way
    );

    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                eprintln!("delay-line: cannot wait for SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
        };
    let mut written: Option<Traffic> = None;
    let mut tick = tokio::time::interval(STATS_EVERY);
    let mut failed = false;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = terminate.recv() => true,
            _ = tokio::signal::ctrl_c() => true,
        };
        if let Some(path) = &args.stats {
            let traffic = proxy.traffic();
            if stopping || written.as_ref() != Some(&traffic) {
                if let Err(e) = write_stats(path, &traffic) {
                    eprintln!("delay-line: cannot write {}: {e}", path.display());
                    failed = true;
                }
                written = Some(traffic);
            }
        }
        if stopping {
            return if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_command_line_reads_addresses_a_fractional_delay_and_a_stats_file() {
        let parsed = args(
            "--listen 127.0.0.1:4000 --upstream localhost:9092 --one-way-ms 0.5 --stats s.json",
        )
        .unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:4000");
        assert_eq!(parsed.upstream, "localhost:9092");
        assert_eq!(parsed.one_way, Duration::from_micros(500));
        assert_eq!(parsed.stats, Some(PathBuf::from("s.json")));
        let parsed = args("--one-way-ms 2 --upstream b:1 --listen a:1").unwrap();
        assert_eq!(parsed.one_way, Duration::from_millis(2));
        assert_eq!(parsed.stats, None);
    }

    #[test]
    fn a_bad_command_line_says_what_is_wrong() {
        assert!(args("--listen a:1 --upstream b:1")
            .unwrap_err()
            .contains("--one-way-ms is required"));
        assert!(args("--listen a:1 --upstream b:1 --one-way-ms fast")
            .unwrap_err()
            .contains("not a number"));
        assert!(args("--listen a:1 --upstream b:1 --one-way-ms -1")
            .unwrap_err()
            .contains("not a duration"));
        assert!(args("--listen").unwrap_err().contains("needs a value"));
        assert!(args("--bogus 1").unwrap_err().contains("unknown argument"));
    }

    #[test]
    fn stats_are_json_with_requests_by_api_key() {
        let traffic = Traffic {
            bytes_to_broker: 10,
            bytes_to_client: 20,
            requests: [(0, 2), (3, 1)].into(),
            connections: 1,
        };
        let dir = std::env::temp_dir().join(format!("delay-line-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.json");
        write_stats(&path, &traffic).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "bytes_to_broker": 10,
                "bytes_to_client": 20,
                "requests": {"0": 2, "3": 1},
                "connections": 1
            })
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
