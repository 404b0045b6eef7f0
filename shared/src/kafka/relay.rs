//! A loopback relay that gives rskafka's broker connections `TCP_NODELAY`.
//!
//! rskafka 0.6 writes every request in two writes, the 4-byte length and
//! then the body, on a socket without `TCP_NODELAY`. Nagle's algorithm then
//! holds the body back until the length is acknowledged, and the broker's
//! kernel may delay that acknowledgement by up to 40 ms (Linux's shortest
//! delayed-ACK time), since 4 bytes are not yet a request it can answer. On
//! loopback this rarely shows; on a real network an invocation that sends
//! requests one after another can stall that long more than once.
//!
//! rskafka offers no hook on its sockets, but it can reach the brokers
//! through a SOCKS5 proxy (its `transport-socks5` feature), and a proxy's
//! onward connection is a socket of our own. So each producer session runs
//! a [`BrokerRelay`] on `127.0.0.1` and hands its address to rskafka:
//! - the relay's socket to the broker has `TCP_NODELAY`, so each chunk
//!   rskafka writes leaves at once;
//! - on the loopback leg the relay acknowledges every read at once
//!   (`TCP_QUICKACK`), so rskafka's own Nagle never waits on a delayed ACK.
//!
//! TLS and SASL pass through untouched: rskafka still speaks them end to
//! end with the broker, and names the broker's host for TLS.
//!
//! Weighed and not chosen:
//! - Setting `TCP_NODELAY` on rskafka's own sockets from outside. The only
//!   safe route to a socket another library owns is copying its descriptor
//!   with `pidfd_getfd`, which sandboxes commonly refuse (it is gated like
//!   `ptrace`), and a sweep for new sockets would still miss connections
//!   opened in the middle of an invocation.
//! - Sending each request in one write. That is a change inside rskafka's
//!   frame writer, and no released version has it (0.6.0 is the newest).
//!
//! The relay listens on loopback only, on a port the kernel picks, for as
//! long as its session lives, and connects to whichever broker rskafka
//! names: rskafka learns the brokers from the cluster's metadata. In Lambda
//! no other process shares the execution environment's loopback. Each
//! onward connect is bounded by the deadline of the produce call it serves.
//!
//! A broker given as an IPv6 literal (`[::1]:9092`) cannot be named through
//! rskafka's SOCKS5 path; such clusters set `KAFKA_TCP_NODELAY=false`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

/// Largest chunk relayed in one write; a read never waits to fill it.
const CHUNK_BYTES: usize = 64 * 1024;

/// A SOCKS5 relay on loopback whose onward sockets have `TCP_NODELAY`.
/// Stops accepting when dropped; open connections end when rskafka closes
/// them.
#[derive(Debug)]
pub struct BrokerRelay {
    address: SocketAddr,
    deadline: Arc<Mutex<Instant>>,
    listener: JoinHandle<()>,
}

impl BrokerRelay {
    /// Starts listening on a free loopback port. New connections may take
    /// until `deadline` to reach their broker; see [`BrokerRelay::set_deadline`].
    pub async fn start(deadline: Instant) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let deadline = Arc::new(Mutex::new(deadline));
        let shared = Arc::clone(&deadline);
        let listener = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((client, _)) => {
                        let deadline = *shared.lock().unwrap_or_else(PoisonError::into_inner);
                        tokio::spawn(serve(client, deadline));
                    }
                    Err(e) => {
                        // Out of descriptors, typically: rskafka sees the
                        // refused connection and retries within its budget.
                        tracing::warn!(error = %e, "the broker relay could not accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(Self {
            address,
            deadline,
            listener,
        })
    }

    /// The `host:port` to give rskafka as its SOCKS5 proxy.
    pub fn proxy_address(&self) -> String {
        self.address.to_string()
    }

    /// Bounds the broker connects of the produce call starting now.
    pub fn set_deadline(&self, deadline: Instant) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }
}

impl Drop for BrokerRelay {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Where rskafka asked to be connected.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Address(SocketAddr),
    Host(String, u16),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(address) => write!(f, "{address}"),
            Self::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// SOCKS5 reply codes (RFC 1928 §6) the relay answers with.
mod reply {
    pub const SUCCEEDED: u8 = 0;
    pub const GENERAL_FAILURE: u8 = 1;
    pub const HOST_UNREACHABLE: u8 = 4;
    pub const CONNECTION_REFUSED: u8 = 5;
    pub const COMMAND_NOT_SUPPORTED: u8 = 7;
    pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 8;
}

const SOCKS_VERSION: u8 = 5;
const NO_AUTHENTICATION: u8 = 0;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const CONNECT: u8 = 1;

/// Why a connection could not be relayed.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not an unauthenticated SOCKS5 CONNECT; the reply code to answer
    /// with, if the exchange has got that far.
    #[error("not a SOCKS5 CONNECT: {0}")]
    Protocol(&'static str, Option<u8>),
}

async fn serve(mut client: TcpStream, deadline: Instant) {
    let target = match timeout_at(deadline, read_request(&mut client)).await {
        Ok(Ok(target)) => target,
        Ok(Err(RelayError::Protocol(what, code))) => {
            tracing::warn!(what, "the broker relay refused a connection");
            if let Some(code) = code {
                let _ = send_reply(&mut client, code).await;
            }
            return;
        }
        Ok(Err(RelayError::Io(_))) | Err(_) => return,
    };
    let connected = timeout_at(deadline, connect(&target)).await;
    let broker = match connected {
        Ok(Ok(broker)) => broker,
        Ok(Err(e)) => {
            tracing::warn!(broker = %target, error = %e, "cannot reach the broker");
            let code = match e.kind() {
                io::ErrorKind::ConnectionRefused => reply::CONNECTION_REFUSED,
                io::ErrorKind::TimedOut
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable => reply::HOST_UNREACHABLE,
                _ => reply::GENERAL_FAILURE,
            };
            let _ = send_reply(&mut client, code).await;
            return;
        }
        Err(_) => {
            tracing::warn!(broker = %target, "no connection to the broker before the deadline");
            let _ = send_reply(&mut client, reply::HOST_UNREACHABLE).await;
            return;
        }
    };
    if send_reply(&mut client, reply::SUCCEEDED).await.is_err() {
        return;
    }
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();
    tokio::join!(
        relay(client_read, broker_write, Acknowledge::AtOnce),
        relay(broker_read, client_write, Acknowledge::AsTheKernelLikes),
    );
}

async fn connect(target: &Target) -> io::Result<TcpStream> {
    let broker = match target {
        Target::Address(address) => TcpStream::connect(address).await?,
        Target::Host(host, port) => TcpStream::connect((host.as_str(), *port)).await?,
    };
    broker.set_nodelay(true)?;
    Ok(broker)
}

/// Reads the SOCKS5 greeting and CONNECT request, answering the greeting.
async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
) -> Result<Target, RelayError> {
    let [version, method_count] = read_array(client).await?;
    if version != SOCKS_VERSION {
        return Err(RelayError::Protocol("SOCKS version", None));
    }
    let mut methods = vec![0; usize::from(method_count)];
    client.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTHENTICATION) {
        client
            .write_all(&[SOCKS_VERSION, NO_ACCEPTABLE_METHOD])
            .await?;
        return Err(RelayError::Protocol("no acceptable method", None));
    }
    client
        .write_all(&[SOCKS_VERSION, NO_AUTHENTICATION])
        .await?;

    let [_, command, _, address_type] = read_array(client).await?;
    if command != CONNECT {
        return Err(RelayError::Protocol(
            "command",
            Some(reply::COMMAND_NOT_SUPPORTED),
        ));
    }
    let target = match address_type {
        1 => {
            let ip: [u8; 4] = read_array(client).await?;
            let port = u16::from_be_bytes(read_array(client).await?);
            Target::Address(SocketAddr::from((Ipv4Addr::from(ip), port)))
        }
        3 => {
            let [length] = read_array(client).await?;
            let mut host = vec![0; usize::from(length)];
            client.read_exact(&mut host).await?;
            let port = u16::from_be_bytes(read_array(client).await?);
            let host = String::from_utf8(host).map_err(|_| {
                RelayError::Protocol("host name", Some(reply::ADDRESS_TYPE_NOT_SUPPORTED))
            })?;
            Target::Host(host, port)
        }
        4 => {
            let ip: [u8; 16] = read_array(client).await?;
            let port = u16::from_be_bytes(read_array(client).await?);
            Target::Address(SocketAddr::from((Ipv6Addr::from(ip), port)))
        }
        _ => {
            return Err(RelayError::Protocol(
                "address type",
                Some(reply::ADDRESS_TYPE_NOT_SUPPORTED),
            ))
        }
    };
    Ok(target)
}

async fn read_array<const N: usize, S: AsyncRead + Unpin>(from: &mut S) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    from.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// The reply's bound address is left empty: rskafka does not use it.
async fn send_reply<S: AsyncWrite + Unpin>(client: &mut S, code: u8) -> io::Result<()> {
    client
        .write_all(&[SOCKS_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0])
        .await
}

/// Whether the relay acknowledges what it reads before the kernel would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acknowledge {
    /// rskafka's side: its Nagle waits for this ACK.
    AtOnce,
    /// The broker's side: the broker's own socket settings decide.
    AsTheKernelLikes,
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    acknowledge: Acknowledge,
) {
    let mut chunk = vec![0; CHUNK_BYTES];
    loop {
        let read = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if acknowledge == Acknowledge::AtOnce {
            // Linux leaves quick-ACK mode by itself, so it is asked for
            // after every read; a failure only brings the stall back.
            let _ = SockRef::from(from.as_ref()).set_tcp_quickack(true);
        }
        if to.write_all(&chunk[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn request(bytes: &[u8]) -> (Result<Target, RelayError>, Vec<u8>) {
        let (mut ours, mut theirs) = tokio::io::duplex(1024);
        theirs.write_all(bytes).await.unwrap();
        let target = read_request(&mut ours).await;
        drop(ours);
        let mut answered = Vec::new();
        theirs.read_to_end(&mut answered).await.unwrap();
        (target, answered)
    }

    #[tokio::test]
    async fn a_connect_by_host_name_is_read_and_the_greeting_answered() {
        let mut bytes = vec![5, 1, 0, 5, 1, 0, 3, 9];
        bytes.extend_from_slice(b"b-1.kafka");
        bytes.extend_from_slice(&9098u16.to_be_bytes());
        let (target, answered) = request(&bytes).await;
        assert_eq!(target.unwrap(), Target::Host("b-1.kafka".into(), 9098));
        assert_eq!(answered, [5, 0]);
    }

    #[tokio::test]
    async fn connects_by_ipv4_and_ipv6_address_are_read() {
        let (target, _) = request(&[5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 7, 0x23, 0x84]).await;
        assert_eq!(
            target.unwrap(),
            Target::Address("10.0.0.7:9092".parse().unwrap())
        );
        let mut bytes = vec![5, 1, 0, 5, 1, 0, 4];
        bytes.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        bytes.extend_from_slice(&9092u16.to_be_bytes());
        let (target, _) = request(&bytes).await;
        assert_eq!(
            target.unwrap(),
            Target::Address("[::1]:9092".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn bytes_go_both_ways_through_the_relay() {
        let echo = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let mut bytes = [0; 5];
            socket.read_exact(&mut bytes).await.unwrap();
            socket.write_all(&bytes).await.unwrap();
        });
        let relay = BrokerRelay::start(Instant::now() + std::time::Duration::from_secs(5))
            .await
            .unwrap();
        let mut client = TcpStream::connect(relay.proxy_address()).await.unwrap();
        let mut request = vec![5, 1, 0, 5, 1, 0, 3, 9];
        request.extend_from_slice(b"localhost");
        request.extend_from_slice(&echo_port.to_be_bytes());
        client.write_all(&request).await.unwrap();
        let mut answer = [0; 12];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer[..4], [5, 0, 5, reply::SUCCEEDED]);
        client.write_all(b"hello").await.unwrap();
        let mut echoed = [0; 5];
        client.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"hello");
    }

    #[tokio::test]
    async fn a_refused_broker_is_answered_as_refused() {
        let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let relay = BrokerRelay::start(Instant::now() + std::time::Duration::from_secs(5))
            .await
            .unwrap();
        let mut client = TcpStream::connect(relay.proxy_address()).await.unwrap();
        let mut request = vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
        request.extend_from_slice(&port.to_be_bytes());
        client.write_all(&request).await.unwrap();
        let mut answer = [0; 12];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer[..4], [5, 0, 5, reply::CONNECTION_REFUSED]);
    }

    #[tokio::test]
    async fn anything_but_an_unauthenticated_connect_is_refused() {
        let (target, answered) = request(&[5, 1, 2]).await;
        assert!(matches!(target, Err(RelayError::Protocol(..))));
        assert_eq!(answered, [5, NO_ACCEPTABLE_METHOD]);

        let (target, _) = request(&[5, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0]).await;
        assert!(matches!(
            target,
            Err(RelayError::Protocol(_, Some(reply::COMMAND_NOT_SUPPORTED)))
        ));

        let (target, _) = request(&[4, 1, 0]).await;
        assert!(matches!(target, Err(RelayError::Protocol(..))));
    }
}
