//! One invocation: tell the event's shape, check the caller, enrich, answer.
//!
//! | shape | recognised by | answered with |
//! |---|---|---|
//! | Function URL (v2) | `requestContext` or `rawPath` | HTTP 200 + the DoubleCloud response as JSON body; 401, 500 or 503 otherwise |
//! | DoubleCloud batch (direct invocation) | `Records` | the bare DoubleCloud response, or a Lambda error |
//! | Firehose transformation | `records` + `deliveryStreamArn` or `invocationId` | the Firehose response, or a Lambda error |
//!
//! Whole-call failures (the engine or Firehose retries the whole call):
//! * the body or event cannot be parsed, or `Records` is absent, `null` or
//!   not a list (nothing can be answered per record): HTTP 500 with
//!   `{"error": …}`, or a Lambda error;
//! * the enrichment IP cannot be had, or the caller token cannot be read
//!   from Secrets Manager: HTTP 503, or a Lambda error;
//! * a Firehose record without a `recordId`, or with a repeated one;
//! * an answer that would pass Lambda's 6 MB response limit
//!   ([`crate::budget`]): for Transferia the whole call (the operator is told
//!   to lower the transfer's buffer size), for Firehose only when not even
//!   a bare `ProcessingFailed` per record fits;
//! * with `ENRICHER_ON_FAILURE=fail-call`, a change item that cannot be
//!   transformed.
//!
//! The probe `{"Records":[]}` is answered `{"Records":[]}` without needing
//! the IP.
//!
//! The event arrives as raw JSON. Its shape is told from its top-level
//! members ([`Fields`], looked up as in a `Value` map: present, even as
//! `null`; the last of repeated keys), and the record lists are handed on
//! as raw JSON per record, for [`doublecloud`] and [`firehose`] to read one
//! record at a time. No `serde_json::Value` tree of the event is built.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::firehose::KinesisFirehoseResponse;
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use base64::Engine as _;
use http::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use lambda_runtime::LambdaEvent;
use lambda_stream_kit::redact::json_error;
use lambda_stream_kit::result::ResultKind;
use lambda_stream_kit::runtime_api::FunctionError;
use lambda_stream_kit::telemetry::metrics::{self, names};
use lambda_stream_kit::tls::TlsError;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::auth::{SecretReader, TokenGuard, TokenUnavailable};
use crate::budget::{Budget, Framing, LAMBDA_RESPONSE_LIMIT};
use crate::config::Config;
use crate::doublecloud::{
    self, BatchError, ChangeItem, DoubleCloudResponse, Enrichment, SharedStr, TransformError,
};
use crate::firehose::{self, FirehoseError};
use crate::ip::{IpError, IpSource};
use crate::json::{self, Fields};

/// Time kept back from the invocation deadline to send the answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct App {
    config: Config,
    ips: IpSource,
    guard: TokenGuard,
    /// Lambda's response limit; smaller in tests that probe the boundary.
    response_limit: usize,
}

impl App {
    /// Builds the state once per execution environment; no I/O happens here.
    pub fn new(config: Config, read_secret: SecretReader) -> Result<Self, TlsError> {
        Ok(Self {
            ips: IpSource::new(&config)?,
            guard: TokenGuard::new(config.token.clone(), read_secret),
            config,
            response_limit: LAMBDA_RESPONSE_LIMIT,
        })
    }

    /// The same enricher answering within `limit` bytes instead of
    /// Lambda's limit, so tests can reach the boundary with small batches.
    #[cfg(test)]
    pub(crate) fn with_response_limit(mut self, limit: usize) -> Self {
        self.response_limit = limit;
        self
    }
}

/// Any of the three answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// Direct invocation with a DoubleCloud batch.
    DoubleCloud(DoubleCloudResponse),
    /// Firehose transformation.
    Firehose(KinesisFirehoseResponse),
    /// A Function-URL call (any status).
    FunctionUrl(LambdaFunctionUrlResponse),
}

/// A call that cannot be answered record by record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The event matches none of the accepted shapes.
    #[error("unrecognised event: expected a DoubleCloud batch (Records), a Function URL request or a Firehose transformation event")]
    UnrecognisedEvent,
    /// The Function-URL body is missing, not base64 when it says so, or not JSON.
    #[error("request body {0}")]
    Body(String),
    /// The DoubleCloud batch has no record list.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The DoubleCloud batch cannot be answered: too large an answer, or a
    /// failed record under `ENRICHER_ON_FAILURE=fail-call`.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The Firehose event cannot be answered per record.
    #[error(transparent)]
    Firehose(#[from] FirehoseError),
    /// The enrichment IP cannot be had; retrying later may work.
    #[error("enrichment IP unavailable: {0}")]
    Ip(#[from] IpError),
    /// The caller token cannot be loaded; retrying later may work.
    #[error(transparent)]
    Token(#[from] TokenUnavailable),
}

impl CallError {
    /// The HTTP status for a Function-URL caller.
    pub fn status(&self) -> u16 {
        match self {
            Self::Ip(_) | Self::Token(_) => 503,
            _ => 500,
        }
    }

    /// The `errorType` Lambda records for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnrecognisedEvent => "Event.Unrecognised",
            Self::Body(_) => "Event.BadBody",
            Self::Batch(_) => "Event.BadDoubleCloudBatch",
            Self::Transform(TransformError::TooLarge { .. })
            | Self::Firehose(FirehoseError::TooLarge { .. }) => "Response.TooLarge",
            Self::Transform(_) => "Record.Failed",
            Self::Firehose(_) => "Event.BadFirehoseBatch",
            Self::Ip(_) => "Enrichment.IpUnavailable",
            Self::Token(_) => "Auth.TokenUnavailable",
        }
    }

    /// What a Function-URL caller is told: its own input's faults in full,
    /// internal ones without detail.
    fn public_message(&self) -> String {
        match self {
            Self::Ip(_) => "enrichment IP unavailable".into(),
            Self::Token(_) => "service unavailable".into(),
            other => other.to_string(),
        }
    }
}

/// The Lambda entry point: answers, or returns the whole-call error.
pub async fn function_handler(
    enricher: &App,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Response, FunctionError> {
    handle(enricher, event).await.map_err(|e| {
        tracing::error!(error = %e, error_type = e.error_type(), "call failed");
        FunctionError::new(e.error_type(), e)
    })
}

/// [`function_handler`] with the error typed.
pub async fn handle(
    enricher: &App,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Response, CallError> {
    let stop_by = lambda_stream_kit::deadline::stop_by(&event.context, ANSWER_MARGIN);
    let payload = &event.payload;
    let Some(fields) = Fields::of(payload) else {
        return Err(CallError::UnrecognisedEvent);
    };
    if fields.has("requestContext") || fields.has("rawPath") {
        Ok(Response::FunctionUrl(
            function_url(enricher, &fields, stop_by).await,
        ))
    } else if fields.has("Records") {
        let budget = Budget::new(enricher.response_limit, 0, Framing::Bare);
        doublecloud_batch(enricher, payload, stop_by, budget)
            .await
            .map(Response::DoubleCloud)
    } else if fields.has("records")
        && (fields.has("deliveryStreamArn") || fields.has("invocationId"))
    {
        let records = firehose::take_records(payload)?;
        firehose::check_record_ids(&records)?;
        if records.is_empty() {
            return Ok(Response::Firehose(KinesisFirehoseResponse::default()));
        }
        let ip = enricher.ips.get(stop_by).await?.to_string();
        let total = records.len();
        let response = firehose::transform(records, &ip, enricher.response_limit)?;
        let failed = response
            .records
            .iter()
            .filter(|r| r.result.as_deref() == Some("ProcessingFailed"))
            .count();
        count_results(
            total,
            response
                .records
                .iter()
                .map(|r| r.result.as_deref().unwrap_or("Ok")),
            0,
        );
        tracing::info!(records = total, failed, "firehose batch transformed");
        Ok(Response::Firehose(response))
    } else {
        Err(CallError::UnrecognisedEvent)
    }
}

/// `budget` is what the answer may take, `None` when nothing fits.
async fn doublecloud_batch(
    enricher: &App,
    batch: &RawValue,
    stop_by: Instant,
    budget: Option<Budget>,
) -> Result<DoubleCloudResponse, CallError> {
    let records = doublecloud::take_records(batch)?;
    if records.is_empty() {
        // The engine's schema probe: no IP needed to answer it.
        return Ok(DoubleCloudResponse { records: vec![] });
    }
    let ip = enricher.ips.get(stop_by).await?;
    let enrichment = Enrichment {
        ip: SharedStr(Arc::from(ip.to_string())),
        output_table: enricher.config.output_table.as_deref(),
        on_failure: enricher.config.on_failure,
    };
    let total = records.len();
    let too_large = TransformError::TooLarge {
        fitted: 0,
        records: total,
    };
    let mut budget = budget.ok_or(too_large)?;
    let response = doublecloud::transform(&records, &enrichment, &mut budget)?;
    let failed = response
        .records
        .iter()
        .filter(|r| r.result == lambda_stream_kit::result::ResultKind::ProcessingFailed)
        .count();
    let dead_letters = response
        .records
        .iter()
        .filter(|r| matches!(r.cdc, Some(ChangeItem::DeadLetter(_))))
        .count();
    count_results(
        total,
        response.records.iter().map(|r| r.result.as_str()),
        dead_letters,
    );
    tracing::info!(
        records = total,
        failed,
        dead_letters,
        "doublecloud batch transformed"
    );
    Ok(response)
}

/// Adds a transformed batch to the invocation's metrics: the records in,
/// the results by kind (as spelled on the wire) and the dead-letter items.
fn count_results<'a>(received: usize, results: impl Iterator<Item = &'a str>, dead_letters: usize) {
    let mut by_kind = [0_usize; 4];
    let kinds = [
        ResultKind::Ok,
        ResultKind::Dropped,
        ResultKind::ProcessingFailed,
        ResultKind::Split,
    ];
    for result in results {
        if let Some(i) = kinds.iter().position(|k| k.as_str() == result) {
            by_kind[i] += 1;
        }
    }
    let [ok, dropped, processing_failed, split] = by_kind;
    metrics::count_each(&[
        (names::RECORDS_RECEIVED, received),
        (names::BATCH_SIZE, received),
        (names::RESULTS_OK, ok),
        (names::RESULTS_DROPPED, dropped),
        (names::RESULTS_PROCESSING_FAILED, processing_failed),
        (names::RESULTS_SPLIT, split),
        (names::RECORDS_DEAD_LETTERED, dead_letters),
    ]);
}

/// A Function-URL call: never a Lambda error, always an HTTP answer, so the
/// engine sees a status it retries on rather than a generic 502.
async fn function_url(
    enricher: &App,
    request: &Fields<'_>,
    stop_by: Instant,
) -> LambdaFunctionUrlResponse {
    match enricher
        .guard
        .check(header(request, "authorization").as_deref(), stop_by)
        .await
    {
        Ok(None) => {}
        Ok(Some(refusal)) => {
            let http = member(request.get("requestContext"), "http");
            let text = |name: &str| member(http, name).and_then(json::text);
            tracing::warn!(
                reason = refusal.as_str(),
                source_ip = text("sourceIp").as_deref().unwrap_or_default(),
                user_agent = text("userAgent").as_deref().unwrap_or_default(),
                "Function URL call refused"
            );
            let mut response = json_response(401, r#"{"error":"unauthorized"}"#.into());
            response
                .headers
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        Err(e) => return error_response(&CallError::from(e)),
    }
    // The body is a JSON string inside the envelope: priced escaped, with
    // the envelope's own bytes set aside.
    let envelope = serde_json::to_vec(&json_response(200, String::new())).map_or(0, |e| e.len());
    let budget = Budget::new(enricher.response_limit, envelope, Framing::JsonString);
    let answer = match body_json(request) {
        Ok(batch) => doublecloud_batch(enricher, &batch, stop_by, budget).await,
        Err(e) => Err(e),
    };
    match answer.and_then(|response| {
        serde_json::to_string(&response)
            .map_err(|e| CallError::Body(format!("answer cannot be serialized: {e}")))
    }) {
        Ok(body) => json_response(200, body),
        Err(e) => error_response(&e),
    }
}

/// The member `name` of `object`, when it is an object.
fn member<'a>(object: Option<&'a RawValue>, name: &str) -> Option<&'a RawValue> {
    Fields::of(object?)?.get(name)
}

/// A header of a Function-URL request; names are matched case-insensitively
/// (Lambda lower-cases them, a hand-made event may not). Of several
/// spellings, the one that sorts first wins, as it did in a `Value` map.
fn header<'a>(request: &Fields<'a>, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    let headers = Fields::of(request.get("headers")?)?;
    let (key, _) = headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .min_by(|(a, _), (b, _)| a.cmp(b))?;
    headers.get(key).and_then(json::text)
}

/// The request body as JSON, base64-decoded first when the envelope says so.
fn body_json(request: &Fields<'_>) -> Result<Box<RawValue>, CallError> {
    let encoded = request
        .get("isBase64Encoded")
        .and_then(|flag| serde_json::from_str::<bool>(flag.get()).ok())
        .unwrap_or(false);
    let body = match request.get("body").and_then(json::text) {
        Some(body) if !body.is_empty() => body,
        _ => return Err(CallError::Body("is empty".into())),
    };
    let parsed = if encoded {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| CallError::Body(format!("is marked base64 but is not: {e}")))?;
        serde_json::from_slice(&bytes)
    } else {
        serde_json::from_str(&body)
    };
    // The caller is told where, not what: the message goes to the log too.
    parsed.map_err(|e| CallError::Body(format!("is not JSON: {}", json_error(&e))))
}

fn error_response(error: &CallError) -> LambdaFunctionUrlResponse {
    tracing::error!(error = %error, status = error.status(), "call failed");
    let body = serde_json::json!({ "error": error.public_message() }).to_string();
    json_response(error.status(), body)
}

fn json_response(status: u16, body: String) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status);
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(body);
    response
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod transferia;
