//! A plain-HTTP/1.1 stand-in for the endpoints a function calls outside
//! Kafka (the Lambda Runtime API, AWS services, the IP lookup): it answers
//! each request with a canned status and body and keeps what it was sent.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the stub received.
#[derive(Debug, Clone, Default)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target, e.g. `/2018-06-01/runtime/init/error`.
    pub path: String,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as sent.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The stub server on 127.0.0.1. Request `n` gets `answers[n]`; once they
/// run out, the last answer is repeated. A [`HttpStub::silent`] stub keeps
/// each request and never answers. Each connection is served on its own
/// task; every request is kept before it is answered. It stops, and drops
/// every connection, when dropped.
#[derive(Debug)]
pub struct HttpStub {
    address: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpStub {
    /// Starts the stub with `(status, body)` answers.
    pub async fn start(answers: Vec<(u16, String)>) -> Self {
        Self::serve(Some(answers)).await
    }

    /// Starts a stub that reads each request, keeps it, and then says
    /// nothing: an endpoint that hangs.
    pub async fn silent() -> Self {
        Self::serve(None).await
    }

    #[allow(clippy::unwrap_used, clippy::expect_used)]
    async fn serve(answers: Option<Vec<(u16, String)>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            // Dropped with this task when the stub is, which ends every
            // connection still open.
            let mut connections = tokio::task::JoinSet::new();
            let mut served = 0usize;
            while let Ok((socket, _)) = listener.accept().await {
                let answer = answers.as_ref().map(|answers| {
                    answers
                        .get(served)
                        .or(answers.last())
                        .cloned()
                        .unwrap_or((200, String::new()))
                });
                served += 1;
                let seen = Arc::clone(&seen);
                connections.spawn(async move {
                    let Some((mut socket, request)) = read_request(socket).await else {
                        return;
                    };
                    seen.lock().unwrap().push(request);
                    match answer {
                        Some(answer) => write_answer(&mut socket, answer).await,
                        None => std::future::pending().await,
                    }
                });
            }
        });
        Self {
            address,
            requests,
            task,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request received so far.
    pub async fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request: its head and its `content-length` body.
async fn read_request(mut socket: TcpStream) -> Option<(TcpStream, RecordedRequest)> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_len, content_length) = loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while seen.len() < head_len + content_length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&seen[..head_len - 4]).into_owned();
    let mut lines = head.lines();
    let mut start = lines.next().unwrap_or_default().split_whitespace();
    let request = RecordedRequest {
        method: start.next().unwrap_or_default().to_owned(),
        path: start.next().unwrap_or_default().to_owned(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect(),
        body: seen[head_len..].to_vec(),
    };
    Some((socket, request))
}

/// Writes `(status, body)` as the answer, and closes the connection.
async fn write_answer(socket: &mut TcpStream, (status, body): (u16, String)) {
    let answer = format!(
        "HTTP/1.1 {status} Stub\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(answer.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// What a function binary did when started with a bad configuration.
#[derive(Debug)]
pub struct FailedStart {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Every line it wrote to stdout (its log).
    pub stdout: Vec<String>,
    /// What it wrote to stderr.
    pub stderr: String,
    /// The requests it made to the stand-in Runtime API.
    pub runtime_api_requests: Vec<RecordedRequest>,
}

/// Starts the function binary `program` the way Lambda would, with only
/// `env` (plus `AWS_LAMBDA_RUNTIME_API` pointing at an [`HttpStub`] and
/// JSON logs), waits for it to exit (at most 20 s), and reports what it did.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn start_expecting_failure(program: &str, env: &[(&str, &str)]) -> FailedStart {
    let api = HttpStub::start(vec![(202, r#"{"status":"OK"}"#.into())]).await;
    let child = tokio::process::Command::new(program)
        .env_clear()
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_FUNCTION_NAME", "start-up-test")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the function binary starts");
    let output = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the function exits on a bad configuration instead of waiting for events")
        .expect("output");
    FailedStart {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        runtime_api_requests: api.requests().await,
    }
}

impl FailedStart {
    /// Asserts what every function must do on a bad configuration: exit
    /// non-zero, write exactly one log line (JSON, level ERROR) whose
    /// `error` contains each of `words`, print no Rust debug text, and post
    /// one init error of type `error_type` with the same message.
    #[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    pub fn assert_reported(&self, error_type: &str, words: &[&str]) {
        assert!(!self.status.success(), "exit status {:?}", self.status);
        assert_eq!(self.stdout.len(), 1, "one log line: {:#?}", self.stdout);
        let line: serde_json::Value =
            serde_json::from_str(&self.stdout[0]).expect("the line is JSON");
        assert_eq!(line["level"], "ERROR", "{line}");
        assert_eq!(
            crate::lambda_reads_level(&line),
            "ERROR",
            "Lambda's log filter keeps it an ERROR: {line}"
        );
        let message = line["error"].as_str().unwrap_or_default();
        for word in words {
            assert!(message.contains(word), "{word:?} missing from {message:?}");
        }
        assert!(
            !self.stderr.contains("Error: ") && !self.stderr.contains(" { "),
            "no Rust debug text on stderr: {}",
            self.stderr
        );
        let [request] = self.runtime_api_requests.as_slice() else {
            panic!("one Runtime API request: {:#?}", self.runtime_api_requests);
        };
        assert_eq!(request.path, "/2018-06-01/runtime/init/error");
        assert_eq!(
            request.header("lambda-runtime-function-error-type"),
            Some(error_type)
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON body");
        assert_eq!(body["errorType"], error_type);
        assert_eq!(body["errorMessage"], message);
    }
}
