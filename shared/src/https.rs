//! A small HTTPS client for the few calls a function makes outside its
//! event: hyper's HTTP/1.1 client over rustls, with the project's one
//! crypto provider (`ring`) and the Mozilla roots ([`crate::tls`]).
//!
//! It serves the Secrets Manager reads of [`crate::aws::SecretsManager`]
//! and the functions' own lookups (the enricher's public IP), so they
//! share one HTTP stack and one TLS set-up. Plain `http://` URLs work too,
//! for tests and private endpoints. Nothing connects until a request is
//! sent; callers bound each request by their own deadline.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::telemetry::error_chain;
use crate::tls::{client_config, TlsError};

/// The HTTPS client. Cloning is cheap and shares the client.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpsClient {
    /// Builds the client; no I/O.
    pub fn new() -> Result<Self, TlsError> {
        let tls = client_config(None)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            // A function makes one such request per execution environment
            // (then caches the answer): no connection is worth keeping.
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(Self { client })
    }

    /// Sends `request`; the answer's body is still to be read (see
    /// [`read_body`]). The error names every cause, since hyper's own
    /// message ("client error (Connect)") does not say what went wrong.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<Incoming>, String> {
        self.client
            .request(request)
            .await
            .map_err(|e| error_chain(&e))
    }
}

/// Reads a response body of at most `max_bytes`.
pub async fn read_body(response: Response<Incoming>, max_bytes: usize) -> Result<Bytes, String> {
    Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map(|body| body.to_bytes())
        .map_err(|e| format!("body unreadable or over {max_bytes} bytes: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_support::{free_port, HttpStub};

    #[tokio::test]
    async fn a_request_gets_its_answer_and_an_oversized_body_is_refused() {
        let stub = HttpStub::start(vec![(200, "hello".into()), (200, "0123456789".into())]).await;
        let url = format!("{}/x", stub.url());
        let client = HttpsClient::new().unwrap();
        let get = || Request::get(url.as_str()).body(Full::default()).unwrap();
        let response = client.send(get()).await.unwrap();
        assert_eq!(read_body(response, 8).await.unwrap(), "hello");
        let response = client.send(get()).await.unwrap();
        assert!(read_body(response, 8)
            .await
            .unwrap_err()
            .contains("over 8 bytes"));
    }

    #[tokio::test]
    async fn a_failed_connection_names_its_cause() {
        let port = free_port();
        let request = Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Full::default())
            .unwrap();
        let err = HttpsClient::new().unwrap().send(request).await.unwrap_err();
        assert!(err.contains("onnect"), "{err}");
        assert!(err.contains(": "), "the cause is named: {err}");
    }
}
