//! The enrichment IP: configured, or fetched once per execution environment.
//!
//! The reference asked `https://ifconfig.me/ip` on every call. Here the
//! answer is fetched on the first call that needs it and kept for the life
//! of the execution environment (its public IP does not change while it
//! lives). A failed fetch is not cached, so the next call tries again. The
//! answer must parse as an IP address once trimmed: a proxy's error page or
//! an empty body never ends up in the data.
//!
//! The HTTP client is the shared library's ([`lambda_stream_kit::https`]):
//! hyper over rustls with the project's `ring` provider and the Mozilla
//! roots, the same one that reads the token secret. Plain `http://` URLs
//! are allowed so that tests and private endpoints work.

use std::net::IpAddr;
use std::time::Duration;

use http::{Request, Uri};
use http_body_util::Full;
use lambda_stream_kit::https::{read_body, HttpsClient};
use lambda_stream_kit::tls::TlsError;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::Config;

/// Largest answer accepted: an IPv6 address with some whitespace fits
/// many times over, an HTML page does not.
const MAX_BODY: usize = 256;

/// Why the IP could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpError {
    /// No answer before the deadline.
    #[error("no answer from {url} within the time allowed")]
    Timeout {
        /// The lookup URL.
        url: String,
    },
    /// The request failed (connection, TLS, protocol).
    #[error("request to {url} failed: {reason}")]
    Request {
        /// The lookup URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The service answered with a non-success status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The lookup URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer is not an IP address.
    #[error("{url} did not answer with an IP address ({reason})")]
    NotAnAddress {
        /// The lookup URL.
        url: String,
        /// A description of the answer (never the answer itself beyond its size).
        reason: String,
    },
}

/// The enrichment IP for this execution environment.
#[derive(Debug)]
pub struct IpSource {
    fixed: Option<IpAddr>,
    url: String,
    timeout: Duration,
    fetched: OnceCell<IpAddr>,
    client: HttpsClient,
}

impl IpSource {
    /// Builds the source; no I/O happens until [`IpSource::get`].
    pub fn new(config: &Config) -> Result<Self, TlsError> {
        let client = HttpsClient::new()?;
        Ok(Self {
            fixed: config.enrich_ip,
            url: config.enrich_ip_url.clone(),
            timeout: config.ip_timeout,
            fetched: OnceCell::new(),
            client,
        })
    }

    /// The IP: the configured one, the cached one, or a fresh fetch that
    /// gives up at the configured timeout or `stop_by`, whichever is first.
    pub async fn get(&self, stop_by: Instant) -> Result<IpAddr, IpError> {
        if let Some(ip) = self.fixed {
            return Ok(ip);
        }
        let deadline = stop_by.min(Instant::now() + self.timeout);
        self.fetched
            .get_or_try_init(|| async {
                let ip = self.fetch(deadline).await?;
                tracing::info!(%ip, url = %self.url, "enrichment IP fetched");
                Ok(ip)
            })
            .await
            .copied()
    }

    async fn fetch(&self, deadline: Instant) -> Result<IpAddr, IpError> {
        let url = &self.url;
        let request_error = |reason: String| IpError::Request {
            url: url.clone(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|e| request_error(format!("{e}")))?;
        let request = Request::get(uri)
            .header(http::header::ACCEPT, "text/plain")
            .header(http::header::USER_AGENT, "cdc-enricher")
            .body(Full::default())
            .map_err(|e| request_error(e.to_string()))?;
        let exchange = async {
            let response = self.client.send(request).await.map_err(request_error)?;
            let status = response.status();
            if !status.is_success() {
                return Err(IpError::Status {
                    url: url.clone(),
                    status: status.as_u16(),
                });
            }
            read_body(response, MAX_BODY)
                .await
                .map_err(|reason| IpError::NotAnAddress {
                    url: url.clone(),
                    reason,
                })
        };
        let body = tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| IpError::Timeout { url: url.clone() })??;
        parse_ip(&body).ok_or_else(|| IpError::NotAnAddress {
            url: url.clone(),
            reason: format!("{} bytes that do not parse as an address", body.len()),
        })
    }
}

/// The trimmed body as an IP address, if it is one.
fn parse_ip(body: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(body).ok()?.trim().parse().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use lambda_stream_kit::config::Env;
    use test_support::{free_port, HttpStub};

    /// The URL of the IP service that `stub` stands in for.
    pub(crate) fn ip_url(stub: &HttpStub) -> String {
        format!("{}/ip", stub.url())
    }

    fn source(url: &str, timeout_ms: &str) -> IpSource {
        let env = Env::from_pairs(&[
            ("ENRICH_IP_URL", url),
            ("ENRICH_IP_TIMEOUT_MS", timeout_ms),
            ("ENRICHER_AUTH", "none"),
        ]);
        IpSource::new(&Config::from_env(&env).unwrap()).unwrap()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn the_fetched_ip_is_trimmed_and_fetched_only_once() {
        let stub = HttpStub::start(vec![(200, " 44.201.33.239\n".into())]).await;
        let url = ip_url(&stub);
        let ips = source(&url, "2000");
        assert_eq!(
            ips.get(later()).await.unwrap(),
            "44.201.33.239".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            ips.get(later()).await.unwrap(),
            "44.201.33.239".parse::<IpAddr>().unwrap()
        );
        assert_eq!(stub.requests().await.len(), 1);
    }

    #[tokio::test]
    async fn an_ipv6_answer_is_accepted() {
        let stub = HttpStub::start(vec![(200, "2001:db8::7\n".into())]).await;
        let url = ip_url(&stub);
        assert_eq!(
            source(&url, "2000").get(later()).await.unwrap(),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn a_configured_ip_is_used_without_any_request() {
        let stub = HttpStub::start(vec![(200, "1.1.1.1".into())]).await;
        let url = ip_url(&stub);
        let env = Env::from_pairs(&[
            ("ENRICH_IP_URL", url.as_str()),
            ("ENRICH_IP", "10.0.0.1"),
            ("ENRICHER_AUTH", "none"),
        ]);
        let ips = IpSource::new(&Config::from_env(&env).unwrap()).unwrap();
        assert_eq!(
            ips.get(later()).await.unwrap(),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(stub.requests().await.len(), 0);
    }

    #[tokio::test]
    async fn a_garbage_answer_is_never_used() {
        let stub = HttpStub::start(vec![(200, "<html>rate limited</html>".into())]).await;
        let url = ip_url(&stub);
        let err = source(&url, "2000").get(later()).await.unwrap_err();
        assert!(matches!(err, IpError::NotAnAddress { .. }), "{err}");
        assert!(!err.to_string().contains("rate limited"), "{err}");
    }

    #[tokio::test]
    async fn an_oversized_answer_is_rejected() {
        let stub = HttpStub::start(vec![(200, include_str!("ip.rs").into())]).await;
        let url = ip_url(&stub);
        let err = source(&url, "2000").get(later()).await.unwrap_err();
        assert!(matches!(err, IpError::NotAnAddress { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_error_status_is_reported() {
        let stub = HttpStub::start(vec![(503, String::new())]).await;
        let url = ip_url(&stub);
        let err = source(&url, "2000").get(later()).await.unwrap_err();
        assert!(matches!(err, IpError::Status { status: 503, .. }), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_at_the_configured_bound() {
        let stub = HttpStub::silent().await;
        let url = ip_url(&stub);
        let started = std::time::Instant::now();
        let err = source(&url, "200").get(later()).await.unwrap_err();
        assert!(matches!(err, IpError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_invocation_deadline_bounds_the_fetch_too() {
        let stub = HttpStub::silent().await;
        let url = ip_url(&stub);
        let started = std::time::Instant::now();
        let err = source(&url, "60000")
            .get(Instant::now() + Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, IpError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_failed_fetch_is_retried_on_the_next_call() {
        let stub =
            HttpStub::start(vec![(200, "FILL_ME".into()), (200, "44.201.33.239".into())]).await;
        let url = ip_url(&stub);
        let ips = source(&url, "2000");
        assert!(ips.get(later()).await.is_err());
        assert_eq!(
            ips.get(later()).await.unwrap(),
            "44.201.33.239".parse::<IpAddr>().unwrap()
        );
        assert_eq!(stub.requests().await.len(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_service_is_a_request_error() {
        let port = free_port();
        let err = source(&format!("http://127.0.0.1:{port}/ip"), "2000")
            .get(later())
            .await
            .unwrap_err();
        assert!(matches!(err, IpError::Request { .. }), "{err}");
    }
}
