//! What Lambda is told when a function cannot start or an invocation fails.
//!
//! Lambda shows a failure as an `errorType` and an `errorMessage`: in the
//! invoke response, in the `Init Duration` report of a failed start, and in
//! CloudWatch metrics filters. `lambda_runtime` derives the type of a boxed
//! error from its Rust type name (`&alloc::boxed::Box<dyn core::error::Error
//! + Send + Sync>`), which says nothing, and it logs the error with `{:?}`.
//! [`FunctionError`] carries a chosen type such as `Config.Missing` or
//! `Event.Unrecognised`, and its `Debug` is the same plain sentence as its
//! `Display`, so no Rust debug text reaches a user.
//!
//! A configuration error stops `main` before the runtime loop starts, where
//! `lambda_runtime` reports nothing, and a `main` that returns `Err` prints
//! `Error: <Debug>` to stderr, outside the log format. [`init_failed`] logs
//! one line in the function's log format instead and posts the error to the
//! Runtime API's `/runtime/init/error` endpoint (the "Runtime API" page of the
//! Lambda developer guide), so Lambda records a `Runtime.InitError`-style
//! failure with our type and message.
//!
//! [`serve`] is every function's `main`: [`crate::init`], the function's
//! set-up once, then `run(service_fn(…))`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_runtime::{run, service_fn, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{ConfigError, Env};
use crate::telemetry::{error_chain, Telemetry};
#[cfg(feature = "tls")]
use crate::tls::TlsError;

/// How long the init-error report may take: the function is exiting anyway,
/// and Lambda's own init phase is capped at 10 s.
const REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// A failure answered to Lambda, with a stable `errorType`.
pub struct FunctionError {
    error_type: Cow<'static, str>,
    message: String,
}

impl FunctionError {
    /// A failure of kind `error_type` (dot-separated, e.g. `Kafka.Unpublished`)
    /// described by `message`.
    pub fn new(error_type: impl Into<Cow<'static, str>>, message: impl fmt::Display) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.to_string(),
        }
    }

    /// The `errorType` Lambda is given.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The `errorMessage` Lambda is given.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The runtime logs handler errors with `{:?}`: keep that readable.
impl fmt::Debug for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for FunctionError {}

impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(error: FunctionError) -> Self {
        Self {
            error_type: error.error_type.into_owned(),
            error_message: error.message,
        }
    }
}

impl From<ConfigError> for FunctionError {
    fn from(error: ConfigError) -> Self {
        let error_type = match error {
            ConfigError::Missing { .. } | ConfigError::MissingOneOf { .. } => "Config.Missing",
            ConfigError::Invalid { .. } => "Config.Invalid",
            ConfigError::LocalOnly { .. } => "Config.LocalOnly",
            _ => "Config.Conflict",
        };
        Self::new(error_type, error)
    }
}

#[cfg(feature = "tls")]
impl From<TlsError> for FunctionError {
    fn from(error: TlsError) -> Self {
        Self::new("Config.Tls", error)
    }
}

/// Runs a function for the life of its execution environment: logging and
/// the TLS provider ([`crate::init`]); the [`Telemetry`] settings and
/// `setup` once, which reads the function's settings and builds its clients
/// (a failure goes to [`init_failed`]); then the Runtime API loop, calling
/// `handler` with what `setup` built for every invocation, under the
/// invocation's log fields, and writing its metrics when it has answered.
///
/// ```no_run
/// # use lambda_runtime::LambdaEvent;
/// # use lambda_stream_kit::config::Env;
/// # use lambda_stream_kit::runtime_api::{self, FunctionError};
/// # struct App { greeting: String }
/// # async fn function_handler(app: &App, event: LambdaEvent<serde_json::Value>) -> Result<String, FunctionError> {
/// #     Ok(format!("{} {}", app.greeting, event.payload))
/// # }
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::process::ExitCode {
///     runtime_api::serve(setup, function_handler).await
/// }
///
/// fn setup(env: &Env<'_>) -> Result<App, FunctionError> {
///     Ok(App { greeting: env.required("GREETING")? })
/// }
/// ```
pub async fn serve<App, Event, Response, Handled>(
    setup: impl FnOnce(&Env<'_>) -> Result<App, FunctionError>,
    handler: impl Fn(&'static App, LambdaEvent<Event>) -> Handled,
) -> ExitCode
where
    App: 'static,
    Event: DeserializeOwned,
    Response: Serialize,
    Handled: Future<Output = Result<Response, FunctionError>>,
{
    crate::init();
    let env = Env::process();
    let telemetry = match Telemetry::from_env(&env) {
        Ok(telemetry) => telemetry,
        Err(error) => return init_failed(&env, error.into()).await,
    };
    let app = match setup(&env) {
        // What set-up builds is kept until the execution environment ends,
        // so every invocation's future may borrow it.
        Ok(app) => Box::leak(Box::new(app)),
        Err(error) => return init_failed(&env, error).await,
    };
    let telemetry = &telemetry;
    loop_ended(
        run(service_fn(|event: LambdaEvent<Event>| {
            let context = event.context.clone();
            let work = handler(app, event);
            async move {
                let (answer, metrics) = telemetry.observe(&context, work).await;
                telemetry.emit(&metrics, &context);
                answer
            }
        }))
        .await,
    )
}

/// Logs `error` as one ERROR line, reports it to the Runtime API's
/// init-error endpoint when there is one (`AWS_LAMBDA_RUNTIME_API`), and
/// gives the exit code `main` returns.
pub async fn init_failed(env: &Env<'_>, error: FunctionError) -> ExitCode {
    tracing::error!(
        error_type = error.error_type(),
        error = error.message(),
        "cannot start"
    );
    if let Some(api) = env.optional("AWS_LAMBDA_RUNTIME_API") {
        if let Err(reason) = report_init_error(&api, &error).await {
            tracing::warn!(%reason, runtime_api = %api, "the start-up error was not reported to the Runtime API");
        }
    }
    ExitCode::FAILURE
}

/// Posts `error` to `<api>/2018-06-01/runtime/init/error`, where `api` is
/// `AWS_LAMBDA_RUNTIME_API` (`host:port`, or a base URL).
pub async fn report_init_error(api: &str, error: &FunctionError) -> Result<(), String> {
    let body = serde_json::json!({
        "errorType": error.error_type(),
        "errorMessage": error.message(),
    });
    // Lambda gives `host:port`; `cargo lambda watch` gives a URL with a
    // path of its own (`http://[::]:9000/.rt/<function>`).
    let base = if api.starts_with("http://") || api.starts_with("https://") {
        api.trim_end_matches('/').to_owned()
    } else {
        format!("http://{api}")
    };
    let request = Request::post(format!("{base}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", error.error_type())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    // The Runtime API is plain HTTP on the local host: a bare hyper client,
    // so a function that needs no TLS (the logger) links none for this.
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = tokio::time::timeout(REPORT_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("no answer within {REPORT_TIMEOUT:?}"))?
        .map_err(|e| error_chain(&e))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the Runtime API answered {status}"))
    }
}

/// The exit code for `main` once the runtime loop has ended: it ends only
/// when the Runtime API cannot be reached, which is logged in plain words.
pub fn loop_ended(result: Result<(), lambda_runtime::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::capture;
    use test_support::HttpStub;

    #[test]
    fn config_errors_get_a_type_per_kind_and_a_plain_message() {
        let missing = FunctionError::from(ConfigError::Missing { name: "TOPIC_NAME" });
        assert_eq!(missing.error_type(), "Config.Missing");
        assert_eq!(missing.to_string(), "TOPIC_NAME must be set");
        assert_eq!(
            format!("{missing:?}"),
            "Config.Missing: TOPIC_NAME must be set"
        );
        let diagnostic = lambda_runtime::Diagnostic::from(missing);
        assert_eq!(diagnostic.error_type, "Config.Missing");
        assert_eq!(diagnostic.error_message, "TOPIC_NAME must be set");
    }

    #[tokio::test]
    async fn a_failed_start_is_logged_once_and_posted_to_the_init_error_endpoint() {
        let api = HttpStub::start(vec![(202, "{}".into())]).await;
        let env = Env::from_pairs(&[("AWS_LAMBDA_RUNTIME_API", api.address())]);
        let error = FunctionError::new("Config.Missing", "TOPIC_NAME must be set");
        let (code, logs) = capture(init_failed(&env, error)).await;
        assert_eq!(code, ExitCode::FAILURE);

        let requests = api.requests().await;
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/2018-06-01/runtime/init/error");
        assert_eq!(
            request.header("lambda-runtime-function-error-type"),
            Some("Config.Missing")
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"errorType": "Config.Missing", "errorMessage": "TOPIC_NAME must be set"})
        );

        let lines = above_debug(&logs);
        assert_eq!(lines.len(), 1, "{}", logs.text());
        assert_eq!(lines[0]["level"], "ERROR");
        assert_eq!(lines[0]["error"], "TOPIC_NAME must be set");
        assert_eq!(lines[0]["error_type"], "Config.Missing");
    }

    #[tokio::test]
    async fn a_runtime_api_given_as_a_url_keeps_its_path() {
        // What `cargo lambda watch` sets.
        let api = HttpStub::start(vec![(202, "{}".into())]).await;
        let base = format!("{}/.rt/my-function/", api.url());
        report_init_error(&base, &FunctionError::new("X.Y", "z"))
            .await
            .unwrap();
        let requests = api.requests().await;
        assert_eq!(
            requests[0].path,
            "/.rt/my-function/2018-06-01/runtime/init/error"
        );
    }

    #[tokio::test]
    async fn an_unreachable_runtime_api_is_a_warning_not_a_hang() {
        let port = test_support::free_port();
        let env = Env::from_pairs(&[("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))]);
        let started = std::time::Instant::now();
        let (code, logs) = capture(init_failed(&env, FunctionError::new("X.Y", "z"))).await;
        assert_eq!(code, ExitCode::FAILURE);
        assert!(started.elapsed() < REPORT_TIMEOUT + Duration::from_secs(1));
        let levels: Vec<_> = above_debug(&logs)
            .iter()
            .map(|l| l["level"].clone())
            .collect();
        assert_eq!(levels, ["ERROR", "WARN"], "{}", logs.text());
    }

    #[tokio::test]
    async fn outside_lambda_nothing_is_posted() {
        let (code, logs) = capture(init_failed(
            &Env::from_pairs::<&str, &str>(&[]),
            FunctionError::new("X.Y", "z"),
        ))
        .await;
        assert_eq!(code, ExitCode::FAILURE);
        assert_eq!(above_debug(&logs).len(), 1);
    }

    /// The lines a function's default level (INFO) lets through; the HTTP
    /// client's own DEBUG lines are not ours to count.
    fn above_debug(logs: &crate::telemetry::CapturedLogs) -> Vec<serde_json::Value> {
        logs.lines()
            .into_iter()
            .filter(|l| l["level"] != "DEBUG" && l["level"] != "TRACE")
            .collect()
    }
}
