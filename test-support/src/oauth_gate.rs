//! A stand-in for MSK's IAM check, in front of a plaintext broker.
//!
//! tansu does not offer OAUTHBEARER, so [`OauthBearerGate`] does the SASL
//! part of the Kafka protocol itself and relays everything else. Like MSK it
//! refuses a request made before authentication, refuses a token that is
//! malformed or past its lifetime, and closes an authenticated connection
//! when the token it was opened with expires. Tests shorten the lifetime so
//! that expiry happens in seconds rather than 15 minutes.
//!
//! It can stand in for a SASL/PLAIN listener too ([`OauthBearerGate::start_plain`]),
//! with a password that a test rotates: then every open session is closed,
//! as a broker restart or a dropped connection would, and only the new
//! password opens new ones. (tansu cannot authenticate users in its
//! in-memory mode; PLAIN reads its credentials on the same path as SCRAM.)

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use tokio::net::TcpStream;

use super::kafka_wire::api_key::{API_VERSIONS, SASL_AUTHENTICATE, SASL_HANDSHAKE};
use super::kafka_wire::{put_string, put_uvarint, read_frame, response, write_frame, Reader};

const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const MECHANISM: &str = "OAUTHBEARER";
const PLAIN: &str = "PLAIN";

/// What an [`OauthBearerGate`] has seen so far.
#[derive(Debug, Clone, Default)]
pub struct GateLog {
    /// Every token that opened a session, in order.
    pub accepted_tokens: Vec<String>,
    /// Why each refused authentication was refused.
    pub refusals: Vec<String>,
    /// Sessions the gate closed because their token expired.
    pub expired_sessions: usize,
}

/// What the gate checks.
#[derive(Debug, Clone)]
enum Check {
    /// MSK IAM tokens, valid for at most this long.
    OauthBearer(Duration),
    /// A user and a password, which a test may change.
    Plain(Arc<Mutex<(String, String)>>),
}

/// A Kafka SASL/OAUTHBEARER (or PLAIN) front for a broker that has no SASL
/// of its own.
#[derive(Debug, Clone)]
pub struct OauthBearerGate {
    log: Arc<Mutex<GateLog>>,
    check: Check,
    /// Bumped to close every open session.
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    /// The port the gate listens on.
    pub port: u16,
}

impl OauthBearerGate {
    /// Listens on `port` and relays authenticated connections to
    /// `upstream`. A token is valid until its `X-Amz-Date` plus the shorter
    /// of its `X-Amz-Expires` and `lifetime`.
    #[allow(clippy::panic)]
    pub async fn start(port: u16, upstream: String, lifetime: Duration) -> Self {
        Self::listen(port, upstream, Check::OauthBearer(lifetime)).await
    }

    /// Listens on `port` as a SASL/PLAIN listener that accepts `username`
    /// with `password` (see [`OauthBearerGate::rotate_password`]).
    pub async fn start_plain(port: u16, upstream: String, username: &str, password: &str) -> Self {
        let expected = Arc::new(Mutex::new((username.to_owned(), password.to_owned())));
        Self::listen(port, upstream, Check::Plain(expected)).await
    }

    /// Accepts only `password` from now on and closes every open session.
    pub fn rotate_password(&self, password: &str) {
        if let Check::Plain(expected) = &self.check {
            if let Ok(mut expected) = expected.lock() {
                expected.1 = password.to_owned();
            }
        }
        self.generation.send_modify(|g| *g += 1);
    }

    #[allow(clippy::panic)]
    async fn listen(port: u16, upstream: String, check: Check) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("cannot bind gate port {port}: {e}"));
        let gate = Self {
            log: Arc::default(),
            check,
            generation: Arc::new(tokio::sync::watch::channel(0).0),
            port,
        };
        let log = Arc::clone(&gate.log);
        let check = gate.check.clone();
        let generation = Arc::clone(&gate.generation);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                let upstream = upstream.clone();
                let check = check.clone();
                let closed = generation.subscribe();
                tokio::spawn(async move {
                    // A connection that breaks ends here, as it would at MSK.
                    let _ = serve(client, &upstream, &check, closed, &log).await;
                });
            }
        });
        gate
    }

    /// A copy of what the gate has seen.
    pub fn log(&self) -> GateLog {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

async fn serve(
    client: TcpStream,
    upstream: &str,
    check: &Check,
    mut closed: tokio::sync::watch::Receiver<u64>,
    log: &Mutex<GateLog>,
) -> io::Result<()> {
    let mechanism_name = match check {
        Check::OauthBearer(_) => MECHANISM,
        Check::Plain(_) => PLAIN,
    };
    let server = TcpStream::connect(upstream).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();

    let session_end = loop {
        let frame = read_frame(&mut client_read).await?;
        let mut request = Reader::new(&frame);
        let api_key = request.i16()?;
        let api_version = request.i16()?;
        let correlation_id = request.i32()?;
        match api_key {
            // Clients ask for versions before authenticating.
            API_VERSIONS => {
                write_frame(&mut server_write, &frame).await?;
                let answer = read_frame(&mut server_read).await?;
                write_frame(&mut client_write, &answer).await?;
            }
            SASL_HANDSHAKE => {
                request.skip_nullable_string()?;
                let mechanism = request.string()?;
                let error = if mechanism == mechanism_name {
                    0
                } else {
                    UNSUPPORTED_SASL_MECHANISM
                };
                let mut body = error.to_be_bytes().to_vec();
                body.extend(1i32.to_be_bytes());
                put_string(&mut body, mechanism_name);
                write_frame(&mut client_write, &response(correlation_id, false, &body)).await?;
            }
            SASL_AUTHENTICATE => {
                let flexible = api_version >= 2;
                request.skip_nullable_string()?;
                if flexible {
                    request.skip_tagged_fields()?;
                }
                let auth_bytes = if flexible {
                    request.compact_bytes()?
                } else {
                    request.bytes()?
                };
                let verdict = match check {
                    Check::OauthBearer(lifetime) => {
                        check_token(auth_bytes, *lifetime, SystemTime::now())
                    }
                    Check::Plain(expected) => check_plain(auth_bytes, expected),
                };
                let answer = authenticate_response(api_version, &verdict);
                write_frame(
                    &mut client_write,
                    &response(correlation_id, flexible, &answer),
                )
                .await?;
                let mut log = log.lock().map_err(|_| io::ErrorKind::Other)?;
                match verdict {
                    Ok((token, expiry)) => {
                        log.accepted_tokens.push(token);
                        break expiry;
                    }
                    Err(reason) => {
                        log.refusals.push(reason);
                        // A broker closes the connection after a failed authentication.
                        return Ok(());
                    }
                }
            }
            _ => return Err(io::Error::other("request before authentication")),
        }
    };

    let remaining = session_end
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::select! {
        _ = tokio::io::copy(&mut client_read, &mut server_write) => {}
        _ = tokio::io::copy(&mut server_read, &mut client_write) => {}
        _ = closed.changed() => {}
        () = tokio::time::sleep(remaining) => {
            if let Ok(mut log) = log.lock() {
                log.expired_sessions += 1;
            }
        }
    }
    Ok(())
}

/// Checks a PLAIN message (`authzid NUL user NUL password`); a session it
/// opens lasts until the gate closes it.
fn check_plain(
    message: &[u8],
    expected: &Mutex<(String, String)>,
) -> Result<(String, SystemTime), String> {
    let text = std::str::from_utf8(message).map_err(|_| "message is not UTF-8")?;
    let mut parts = text.split('\0');
    let (_, user, password) = (parts.next(), parts.next(), parts.next());
    let expected = expected.lock().map_err(|_| "gate state poisoned")?.clone();
    match (user, password) {
        (Some(user), Some(password))
            if (user, password) == (expected.0.as_str(), expected.1.as_str()) =>
        {
            Ok((
                format!("{user}:{password}"),
                SystemTime::now() + Duration::from_secs(86_400),
            ))
        }
        (Some(user), Some(_)) => Err(format!("wrong password for {user}")),
        _ => Err("malformed PLAIN message".into()),
    }
}

/// Checks an OAUTHBEARER client message carrying an MSK IAM token, and
/// gives back the token and when its session must end.
fn check_token(
    message: &[u8],
    lifetime: Duration,
    now: SystemTime,
) -> Result<(String, SystemTime), String> {
    let message = std::str::from_utf8(message).map_err(|_| "message is not UTF-8")?;
    let token = message
        .split('\x01')
        .find_map(|pair| pair.strip_prefix("auth=Bearer "))
        .ok_or("no bearer token in the message")?;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| "token is not base64url")?;
    let url = String::from_utf8(url).map_err(|_| "token is not a URL")?;
    let (_, query) = url.split_once('?').ok_or("token URL has no query")?;
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    };
    if !matches!(
        param("Action"),
        Some("kafka-cluster%3AConnect" | "kafka-cluster:Connect")
    ) {
        return Err("token is not for kafka-cluster:Connect".into());
    }
    if param("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256")
        || param("X-Amz-Credential").is_none()
        || param("X-Amz-Signature").is_none_or(str::is_empty)
    {
        return Err("token is not SigV4-signed".into());
    }
    let signed_at = param("X-Amz-Date")
        .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
        .map(|d| SystemTime::from(d.and_utc()))
        .ok_or("token has no valid X-Amz-Date")?;
    let expires = param("X-Amz-Expires")
        .and_then(|e| e.parse().ok())
        .map(Duration::from_secs)
        .ok_or("token has no valid X-Amz-Expires")?;
    let expiry = signed_at + expires.min(lifetime);
    if now >= expiry {
        let age = now.duration_since(signed_at).unwrap_or_default();
        return Err(format!(
            "token expired: signed {:.1} s ago",
            age.as_secs_f64()
        ));
    }
    Ok((token.to_owned(), expiry))
}

fn authenticate_response(version: i16, verdict: &Result<(String, SystemTime), String>) -> Vec<u8> {
    let flexible = version >= 2;
    let (error, message, lifetime_ms) = match verdict {
        Ok((_, expiry)) => {
            let left = expiry.duration_since(SystemTime::now()).unwrap_or_default();
            (0, None, i64::try_from(left.as_millis()).unwrap_or(i64::MAX))
        }
        Err(reason) => (SASL_AUTHENTICATION_FAILED, Some(reason.as_str()), 0),
    };
    let mut body = i16::to_be_bytes(error).to_vec();
    match (message, flexible) {
        (None, true) => body.push(0),
        (None, false) => body.extend((-1i16).to_be_bytes()),
        (Some(m), true) => {
            put_uvarint(&mut body, m.len() + 1);
            body.extend(m.as_bytes());
        }
        (Some(m), false) => put_string(&mut body, m),
    }
    // OAUTHBEARER success carries no server data.
    if flexible {
        put_uvarint(&mut body, 1);
    } else {
        body.extend(0i32.to_be_bytes());
    }
    if version >= 1 {
        body.extend(lifetime_ms.to_be_bytes());
    }
    if flexible {
        body.push(0);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_for(url: &str) -> Vec<u8> {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url);
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    const SIGNED: &str = "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect\
        &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261123%2Fus-east-1%2Fkafka-cluster%2Faws4_request\
        &X-Amz-Date=20261123T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=abc";

    fn at(seconds_after_signing: u64) -> SystemTime {
        let signed = chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|d| SystemTime::from(d.and_utc()))
            .unwrap();
        signed + Duration::from_secs(seconds_after_signing)
    }

    #[test]
    fn a_fresh_token_opens_a_session_until_the_shorter_lifetime() {
        let (_, expiry) = check_token(&message_for(SIGNED), Duration::from_secs(3), at(1)).unwrap();
        assert_eq!(expiry, at(3));
        let (_, expiry) =
            check_token(&message_for(SIGNED), Duration::from_secs(3600), at(1)).unwrap();
        assert_eq!(expiry, at(900));
    }

    #[test]
    fn an_expired_or_malformed_token_is_refused() {
        let refused = |message: &[u8]| check_token(message, Duration::from_secs(3), at(1));
        assert!(
            check_token(&message_for(SIGNED), Duration::from_secs(3), at(3))
                .unwrap_err()
                .contains("expired")
        );
        assert!(refused(b"n,,\x01auth=Basic x\x01\x01").is_err());
        assert!(refused(&message_for(&SIGNED.replace("Connect", "WriteData"))).is_err());
        assert!(refused(&message_for(&SIGNED.replace("X-Amz-Signature=abc", ""))).is_err());
        assert!(refused(&message_for(
            &SIGNED.replace("20261123T120000Z", "yesterday")
        ))
        .is_err());
    }

    #[test]
    fn responses_parse_back_in_every_version() {
        let ok = Ok(("t".to_owned(), SystemTime::now() + Duration::from_secs(5)));
        let refused = Err("expired".to_owned());
        for version in 0..=2 {
            for verdict in [&ok, &refused] {
                let body = authenticate_response(version, verdict);
                let mut r = Reader::new(&body);
                let error = r.i16().unwrap();
                assert_eq!(error == 0, verdict.is_ok());
                if version >= 2 {
                    let n = r.uvarint().unwrap();
                    r.take(n.saturating_sub(1)).unwrap();
                    assert!(r.compact_bytes().unwrap().is_empty());
                } else {
                    r.skip_nullable_string().unwrap();
                    assert!(r.bytes().unwrap().is_empty());
                }
                if version >= 1 {
                    r.take(8).unwrap();
                }
                if version >= 2 {
                    r.skip_tagged_fields().unwrap();
                }
                assert!(r.is_empty(), "version {version}: trailing bytes");
            }
        }
    }
}
