//! A broker front that refuses some produce requests the way a real broker
//! refuses records it will never take (`MESSAGE_TOO_LARGE`,
//! `INVALID_RECORD`, …), which tansu never does: it accepts records of any
//! size and shape. Every other request is relayed unchanged.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;

use super::kafka_wire::{read_frame, write_frame, ProduceRequest};

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

/// The refusing answer to a produce request for `topic` with `marker` in
/// its records.
fn refusal(
    frame: &[u8],
    topic: &str,
    marker: &[u8],
    error_code: i16,
) -> io::Result<Option<Vec<u8>>> {
    let Some(request) = ProduceRequest::parse(frame)? else {
        return Ok(None);
    };
    let refuse = request.topics.iter().any(|(name, partitions)| {
        name.starts_with(topic)
            && partitions
                .iter()
                .any(|(_, records)| records.windows(marker.len()).any(|w| w == marker))
    });
    Ok(refuse.then(|| request.refusal(error_code)))
}
