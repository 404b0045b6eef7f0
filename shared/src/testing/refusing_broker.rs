//! A broker front that refuses some produce requests the way a real broker
//! refuses records it will never take (`MESSAGE_TOO_LARGE`,
//! `INVALID_RECORD`, …), which tansu never does: it accepts records of any
//! size and shape. Every other request is relayed unchanged.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;

use super::oauth_gate::{put_string, read_frame, response, write_frame, Reader};

const PRODUCE: i16 = 0;

/// Refuses, with `error_code`, every produce request to a topic whose name
/// starts with `topic` and whose records contain `marker`, for every
/// partition in it.
#[derive(Debug, Clone)]
pub struct RefusingBroker {
    refused: Arc<AtomicUsize>,
    /// The port it listens on.
    pub port: u16,
}

impl RefusingBroker {
    /// Listens on `port` in front of `upstream`.
    #[allow(clippy::panic)]
    pub async fn start(
        port: u16,
        upstream: String,
        topic: &str,
        marker: &'static [u8],
        error_code: i16,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("cannot bind port {port}: {e}"));
        let refused = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&refused);
        let topic = topic.to_owned();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, topic, counter) =
                    (upstream.clone(), topic.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let _ = relay(client, &upstream, &topic, marker, error_code, &counter).await;
                });
            }
        });
        Self { refused, port }
    }

    /// How many produce requests it refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

async fn relay(
    client: TcpStream,
    upstream: &str,
    topic: &str,
    marker: &[u8],
    error_code: i16,
    refused: &AtomicUsize,
) -> io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    loop {
        let frame = read_frame(&mut client_read).await?;
        if let Some(answer) = refusal(&frame, topic, marker, error_code)? {
            refused.fetch_add(1, Ordering::SeqCst);
            write_frame(&mut client_write, &answer).await?;
            continue;
        }
        write_frame(&mut server_write, &frame).await?;
        let answer = read_frame(&mut server_read).await?;
        write_frame(&mut client_write, &answer).await?;
    }
}

/// The refusing answer to a produce request (v3 to v7, the versions
/// rskafka 0.6 sends) for `topic` with `marker` in its records.
fn refusal(
    frame: &[u8],
    topic: &str,
    marker: &[u8],
    error_code: i16,
) -> io::Result<Option<Vec<u8>>> {
    let mut request = Reader::new(frame);
    let api_key = request.i16()?;
    let version = request.i16()?;
    let correlation_id = request.i32()?;
    if api_key != PRODUCE || !(3..=7).contains(&version) {
        return Ok(None);
    }
    request.skip_nullable_string()?; // client id
    request.skip_nullable_string()?; // transactional id
    request.i16()?; // acks
    request.i32()?; // timeout
    let topics = request.i32()?;
    let mut answer_topics = Vec::new();
    let mut refuse = false;
    for _ in 0..topics.max(0) {
        let name = request.string()?;
        let partitions = request.i32()?;
        let mut indexes = Vec::new();
        for _ in 0..partitions.max(0) {
            indexes.push(request.i32()?);
            let records = request.bytes()?;
            if name.starts_with(topic) && records.windows(marker.len()).any(|w| w == marker) {
                refuse = true;
            }
        }
        answer_topics.push((name, indexes));
    }
    if !refuse {
        return Ok(None);
    }
    let mut body = i32::try_from(answer_topics.len())
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    for (name, indexes) in answer_topics {
        put_string(&mut body, &name);
        body.extend(i32::try_from(indexes.len()).unwrap_or(0).to_be_bytes());
        for index in indexes {
            body.extend(index.to_be_bytes());
            body.extend(error_code.to_be_bytes());
            body.extend((-1i64).to_be_bytes()); // base offset
            body.extend((-1i64).to_be_bytes()); // log append time (v2+)
            if version >= 5 {
                body.extend((-1i64).to_be_bytes()); // log start offset
            }
        }
    }
    body.extend(0i32.to_be_bytes()); // throttle time
    Ok(Some(response(correlation_id, false, &body)))
}
